"""`export_run`: a training run → `saved_models/<name>/<version>/`, a SavedModel TF Serving loads.

Built with `keras.export.ExportArchive` (TF_NOTES: a `tf.Module` saved with
`tf.saved_model.save` breaks TF Serving's C++ loader). Signatures (DESIGN.md §3):

- `serving_default`: `images` float32 `[N, H, W, 1]` (0..1, any N, H, W) →
  `skeleton` uint8 `[N, H, W, 1]`, `probability` float32 `[N, H, W, 1]`;
- `predict_png`: `image_bytes` string `[N]` → `skeleton_png_bytes` string `[N]`.

Binarization, padding to the network stride, cropping back, the validation threshold and
thinning are graph ops inside; the SavedModel runs where only TensorFlow is installed.
`assets.extra/model_card.json` describes it.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from keras_skel.errors import ModelNotFoundError

__all__ = ["export_run", "ExportResult", "MODEL_CARD", "read_model_card", "archive_from_card", "build_archive",
           "build_volumes_archive"]

MODEL_CARD = Path("assets.extra") / "model_card.json"
# Variables are written in files of at most this size (a larger model gets several
# `variables.data-0000K-of-0000N` shards, which TF Serving and `tf.saved_model.load` read as one).
MAX_VARIABLES_SHARD_BYTES = 16 * 2**20


def _write_archive(archive, path: Path) -> None:
    """`archive.write_out` with the variables split into shards of `MAX_VARIABLES_SHARD_BYTES`."""
    import tensorflow as tf

    policy = tf.train.experimental.MaxShardSizePolicy(MAX_VARIABLES_SHARD_BYTES)
    archive.write_out(str(path), options=tf.saved_model.SaveOptions(experimental_sharding_callback=policy),
                      verbose=False)


@dataclass(frozen=True)
class ExportResult:
    """Paths an export wrote and the model card it recorded."""

    saved_model: Path
    tflite: tuple[Path, ...]
    card: dict


def read_model_card(saved_model_dir: str | Path) -> dict:
    """The model card of an exported SavedModel ({} if it has none)."""
    path = Path(saved_model_dir) / MODEL_CARD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        from keras_skel.errors import DataError

        raise DataError(f"{path} is not a readable model card (JSON): {err}") from None


def load_run(run_dir: str | Path):
    """`(model, model_info, metrics)` of a finished training run or folds directory (ensemble)."""
    from keras_skel.ensemble import is_ensemble_dir, load_ensemble
    from keras_skel.inference import load_keras_model, read_model_info

    run_dir = Path(run_dir)
    if is_ensemble_dir(run_dir):
        model, info = load_ensemble(run_dir)
        members = {}
        for member in info["members"]:
            path = Path(member) / "metrics.json"
            members[Path(member).name] = json.loads(path.read_text()).get("val") if path.is_file() else None
        return model, info, {"val": None, "members_val": members}
    best = run_dir / "best.keras"
    info = read_model_info(run_dir)
    if not best.is_file() or "threshold" not in info:
        raise ModelNotFoundError(
            f"{run_dir} is not a finished training run (expected best.keras and model.json with a "
            "threshold, written by `keras-skel train`)"
        )
    model = load_keras_model(best)
    try:
        metrics = _read_metrics(run_dir)
    except (OSError, ValueError) as err:  # unreadable or not JSON
        raise ModelNotFoundError(f"{run_dir / 'metrics.json'}: could not read the run's metrics: {err}") from None
    return model, info, metrics


def _read_metrics(run_dir: Path) -> dict:
    """A run's `metrics.json` ({} if it has none)."""
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _version_target(root, name: str, version: int | None, force: bool) -> tuple[str, Path, int]:
    """`(name, model folder, version)` of a new export: the name validated, the version one above
    the highest existing unless given; an existing version is refused without `force`."""
    from keras_skel.errors import ConfigError
    from keras_skel.export.layout import next_version, validate_name

    name = validate_name(name)
    model_dir = Path(root) / name
    version = int(version) if version is not None else next_version(model_dir)
    if (model_dir / str(version)).exists() and not force:
        raise ConfigError(f"{model_dir / str(version)} exists already; pass --force to replace it or "
                          "choose another --version")
    return name, model_dir, version


def build_archive(model, threshold: float, stride: int, tta: bool = False, prune_length: int = 0,
                  max_size: int | None = None, gate_radius: int = 0):
    """An `ExportArchive` with the `serving_default` and `predict_png` endpoints."""
    import keras
    import tensorflow as tf

    from keras_skel.export.graph import make_png_fn, skeletonize_images

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoints track the variables they use, and tracking the model
    # as well stores every variable a second time (twice the SavedModel size, same outputs).
    archive.add_endpoint(
        "serving_default",
        lambda images: skeletonize_images(model, images, threshold, stride, tta, prune_length, max_size,
                                          gate_radius),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="images")],
    )
    archive.add_endpoint(
        "predict_png",
        make_png_fn(model, threshold, stride, tta, prune_length, max_size, gate_radius),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    return archive


def build_natural_archive(model, stride: int, threshold: float, output: str = "flux", k1: int = 3, k2: int = 4,
                          tta: bool = False, scales: tuple[float, ...] = (1.0,)):
    """An `ExportArchive` with the `serving_default` (RGB `images` → `skeleton`, `flux` and
    `confidence`, or `probability` for a binary model) and `predict_png` endpoints of a
    natural-image (DeepFlux) model (`tta`, `scales`: see `natural_raw_outputs`)."""
    import keras
    import tensorflow as tf

    from keras_skel.export.graph import detect_skeletons, make_natural_png_fn

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoints track the variables they use, and tracking the model
    # as well stores every variable a second time (twice the SavedModel size, same outputs).
    archive.add_endpoint(
        "serving_default",
        lambda images: detect_skeletons(model, images, stride, threshold, output, k1, k2, tta, scales),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
    )
    archive.add_endpoint(
        "predict_png",
        make_natural_png_fn(model, stride, threshold, output, k1, k2, tta, scales),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    return archive


def archive_from_card(model, card: dict):
    """The serving archive a model card describes: `build_natural_archive` for `task: natural`,
    `build_archive` otherwise, with the card's threshold, stride, test-time augmentation and
    post-processing settings. `export_run` writes a card's settings this way, and
    `tools/resave_shipped.py` rebuilds a shipped version's graph from its card the same way."""
    tta = bool(card.get("tta", False))
    if card.get("task") == "natural":
        scales = tuple(float(s) for s in card.get("scales") or (1.0,))
        return build_natural_archive(model, int(card["stride"]), float(card["threshold"]), card.get("output", "flux"),
                                     int(card.get("k1", 3)), int(card.get("k2", 4)), tta, scales)
    return build_archive(model, float(card["threshold"]), int(card["stride"]), tta, int(card.get("prune_length", 0)),
                         card.get("max_size"), int(card.get("gate_radius", 0)))


def _natural_io(output: str) -> tuple[dict, dict]:
    inputs = {
        "serving_default": {"images": "float32 [N, H, W, 3], RGB values 0..1; any N, H, W"},
        "predict_png": {"image_bytes": "string [N]: PNG/JPEG/BMP/GIF bytes (grey, RGB or RGBA)"},
    }
    extra = ({"flux": "float32 [N, H, W, 2] context flux (dy, dx)",
              "confidence": "float32 [N, H, W, 1], (v_max - |flux|) / v_max on the skeleton, 0 elsewhere"}
             if output == "flux" else {"probability": "float32 [N, H, W, 1]"})
    outputs = {
        "serving_default": {"skeleton": "uint8 [N, H, W, 1] 0/1 (1 px wide)", **extra},
        "predict_png": {"skeleton_png_bytes": "string [N]: 8-bit PNG, 255 = skeleton"},
    }
    return inputs, outputs


def export_run(
    run_dir: str | Path,
    name: str,
    root: str | Path = "saved_models",
    version: int | None = None,
    force: bool = False,
    tflite: bool = False,
    quantize: Sequence[str] = ("none",),
    tflite_size: tuple[int, int] | None = None,
    eval_dirs: Sequence[str | Path] = (),
    command: str | None = None,
    tta: bool = False,
    notes: Sequence[str] = (),
) -> ExportResult:
    """Exports a training run as `root/name/version/` (and optionally `.tflite` files).

    Args:
        run_dir: a finished run of `keras-skel train`.
        name: model name (folder and TF Serving model name).
        root: the models folder.
        version: version number; default: one above the highest existing.
        force: replace an existing version / `.tflite` file.
        tflite: also write TFLite models (`root/name.tflite`, and `name_<quantize>.tflite`).
        quantize: TFLite variants: `none`, `float16`, `dynamic` (dynamic-range int8),
            `int8` (full-integer, calibrated on synthetic training-like shapes).
        tflite_size: fixed `(H, W)` of the TFLite input (default 256×256).
        eval_dirs: dataset folders the exported model (and the classical baseline) are scored
            on; the scores go into the model card.
        command: the command line, recorded in the card.
        tta: bake D4 test-time augmentation into every graph (8× compute; recorded in the card).
        notes: free-text lines for the card's `notes` (e.g. a multi-step training history).

    Returns:
        An `ExportResult`.

    Example:
        >>> export_run("runs/unet", "unet_shapes", tflite=True)  # doctest: +SKIP
    """
    from keras_skel.errors import ConfigError
    from keras_skel.export.layout import atomic_directory, atomic_file

    from keras_skel.inference import read_model_info

    task = read_model_info(Path(run_dir)).get("task")
    if task == "thin":
        if tta:
            raise ConfigError("thin-structure models export without test-time augmentation: drop --tta")
        return _export_thin(Path(run_dir), name, root, version, force, tflite, tuple(tflite_size or (256, 256)),
                            quantize, eval_dirs, command, notes)
    if task == "volumes":
        if tflite or tta:
            raise ConfigError("SkeletonNet models export as SavedModels only: drop --tflite / --quantize / --tta")
        return _export_volumes(Path(run_dir), name, root, version, force, eval_dirs, command, notes)
    model, info, metrics = load_run(run_dir)
    name, model_dir, version = _version_target(root, name, version, force)
    threshold = float(info["threshold"])
    prune_length = int(info.get("prune_length", 0))
    gate_radius = int(info.get("gate_radius", 0))
    stride = int(info.get("stride", 1))
    tflite_size = tuple(tflite_size or (256, 256))
    natural = info.get("task") == "natural"
    if natural and tta and not info.get("tta"):
        raise ConfigError(f"{run_dir}: test-time augmentation shortens a flux where the 8 views disagree, so λ must "
                          f"be chosen with it: `keras-skel train --reselect {run_dir} --set eval.tta=true` does that, "
                          "and the run's exports then run it (no --tta needed)")
    if info.get("tta"):  # the threshold was chosen with TTA (eval.tta): the graph must run it too
        tta = True
    scales = tuple(float(s) for s in info.get("scales") or (1.0,))  # natural runs: eval.scales, recorded
    if tflite_size[0] % stride or tflite_size[1] % stride:
        raise ConfigError(f"TFLite size {tflite_size} must be a multiple of the model stride {stride}")
    if tflite and info.get("max_size") and max(tflite_size) > int(info["max_size"]):
        raise ConfigError(f"TFLite size {tflite_size} exceeds the model's largest whole input {info['max_size']} "
                          "(context attention memory); choose a smaller --tflite-size (larger images are tiled)")

    card = dict(
        name=name,
        version=version,
        task=info.get("task", "shapes"),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        threshold=threshold,
        prune_length=prune_length,
        gate_radius=gate_radius,
        target=info.get("target", "skeleton"),
        stride=stride,
        tta=tta,
        # The largest side run whole (context attention memory); None = no limit. Larger
        # inputs are tiled by the Python skeletonizers and refused by the graph.
        max_size=info.get("max_size"),
        training_image_size=info.get("image_size"),
        inputs={
            "serving_default": {"images": "float32 [N, H, W, 1], values 0..1, binarized at 0.5; any N, H, W"},
            "predict_png": {"image_bytes": "string [N]: PNG/JPEG/BMP/GIF bytes (8/16-bit grey, RGB, RGBA)"},
        },
        outputs={
            "serving_default": {"skeleton": "uint8 [N, H, W, 1] 0/1", "probability": "float32 [N, H, W, 1]"},
            "predict_png": {"skeleton_png_bytes": "string [N]: 8-bit PNG, 255 = skeleton"},
        },
        tflite_input_size=list(tflite_size),
        **(dict(output=info.get("output", "flux"), k1=info.get("k1", 3), k2=info.get("k2", 4),
                flux_radius=info.get("flux_radius"), scales=list(scales)) if natural else {}),
        model=info.get("model"),
        training_data=info.get("data"),
        training_command=info.get("command"),
        validation=metrics.get("val"),
        members=info.get("members"),
        members_validation=metrics.get("members_val"),
        export_command=command,
        notes=list(notes),
        run_dir=str(Path(run_dir).resolve()),
        versions={"tensorflow": _tf_version(), "keras_skel": _package_version()},
        scores={},
    )

    # Everything is converted before anything becomes visible: a failure leaves no files.
    flatbuffers: dict[Path, bytes] = {}
    if tflite:
        from keras_skel.export.tflite import QUANTIZATIONS, convert_natural_tflite, convert_tflite

        for variant in quantize:
            if variant not in QUANTIZATIONS:
                raise ConfigError(f"unknown quantization {variant!r}; choose from {', '.join(QUANTIZATIONS)}")
            suffix = "" if variant == "none" else f"_{variant}"
            target = Path(root) / f"{name}{suffix}.tflite"
            if target.exists() and not force:
                raise ConfigError(f"{target} exists already; pass --force to replace it")
            if natural:
                flatbuffers[target] = convert_natural_tflite(model, stride, threshold, card["output"], tflite_size,
                                                             variant, card["k1"], card["k2"], tta, scales)
            else:
                flatbuffers[target] = convert_tflite(model, threshold, stride, tflite_size, variant, tta,
                                                    prune_length, gate_radius)
        card["tflite"] = {path.name: quantization for path, quantization in zip(flatbuffers, quantize)}

    if natural:
        card["inputs"], card["outputs"] = _natural_io(card["output"])
    archive = archive_from_card(model, card)
    with atomic_directory(model_dir / str(version), force=force) as tmp:
        _write_archive(archive, tmp)
        (tmp / MODEL_CARD).parent.mkdir(parents=True, exist_ok=True)
        (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
        if eval_dirs:  # scored as exported, before it becomes visible
            card["scores"] = _natural_scores(tmp, eval_dirs) if natural else _scores(tmp, eval_dirs)
            (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
    saved_model = model_dir / str(version)
    for target, flatbuffer in flatbuffers.items():
        with atomic_file(target, force=force) as tmp_path:
            tmp_path.write_bytes(flatbuffer)
    return ExportResult(saved_model, tuple(flatbuffers), card)


def build_volumes_archive(model, image_size: int, point_labels, threshold: float | None):
    """An `ExportArchive` whose `serving_default` maps RGB `images` to a SkeletonNet's
    `points`, `point_labels` (and `volume`, `volume_mask` for a refining model)."""
    import keras
    import tensorflow as tf

    from keras_skel.export.graph import skeletal_outputs

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        "serving_default",
        lambda images: skeletal_outputs(model, images, image_size, point_labels, threshold),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
    )
    return archive


def build_thin_archive(model, stride: int, ndim: int):
    """An `ExportArchive` for a thin-structure model: `serving_default` (grey `images` →
    `labels`, `probability`) and, for 2-D models, `predict_png` (`image_bytes` →
    `labels_png_bytes`)."""
    import keras
    import tensorflow as tf

    from keras_skel.export.graph import make_thin_png_fn, segment_images

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        "serving_default",
        lambda images: segment_images(model, images, stride),
        input_signature=[tf.TensorSpec([None] * (ndim + 1) + [1], tf.float32, name="images")],
    )
    if ndim == 2:
        archive.add_endpoint("predict_png", make_thin_png_fn(model, stride),
                             input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    return archive


def _thin_io(ndim: int, channels: int) -> tuple[dict, dict]:
    """The card's `inputs` / `outputs` of a thin-structure SavedModel."""
    axes = "H, W" if ndim == 2 else "D, H, W"
    rule = "0.5 threshold of the sigmoid" if channels == 1 else "argmax; channel 0 = background"
    inputs = {"serving_default": {"images": f"float32 [N, {axes}, 1], grey values 0..1; any N, {axes}"}}
    outputs = {"serving_default": {"labels": f"uint8 [N, {axes}, 1]: 0 background, 1..K class ({rule})",
                                   "probability": f"float32 [N, {axes}, {channels}]"}}
    if ndim == 2:
        inputs["predict_png"] = {"image_bytes": "string [N]: PNG/JPEG/BMP/GIF bytes (8/16-bit grey or RGB: "
                                                "luminance)"}
        outputs["predict_png"] = {"labels_png_bytes": "string [N]: 8-bit PNG, value = class"}
    return inputs, outputs


def _export_thin(run_dir: Path, name: str, root, version, force: bool, tflite: bool, tflite_size: tuple[int, int],
                 quantize: Sequence[str], eval_dirs, command, notes) -> ExportResult:
    """`export_run` of a thin-structure (segmentation) run: SavedModel, and for 2-D models
    optionally TFLite at `tflite_size`."""
    from keras_skel.errors import ConfigError
    from keras_skel.export.layout import atomic_directory, atomic_file
    from keras_skel.inference import read_model_info
    from keras_skel.segmentation import load_segmenter

    segmenter = load_segmenter(run_dir)  # checks best.keras and model.json
    model, ndim, stride = segmenter.model, segmenter.ndim, segmenter.stride
    info = read_model_info(run_dir)
    metrics = _read_metrics(run_dir)
    name, model_dir, version = _version_target(root, name, version, force)
    channels = int(model.output_shape[-1])
    inputs, outputs = _thin_io(ndim, channels)
    card = dict(
        name=name, version=version, task="thin",
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        classes=int(info["classes"]), ndim=ndim, stride=stride, training_image_size=info.get("image_size"),
        inputs=inputs, outputs=outputs, model=info.get("model"), training_data=info.get("data"),
        training_command=info.get("command"), validation=metrics.get("val"), export_command=command,
        notes=list(notes), run_dir=str(run_dir.resolve()),
        versions={"tensorflow": _tf_version(), "keras_skel": _package_version()}, scores={},
    )
    flatbuffers: dict[Path, bytes] = {}
    if tflite:
        if ndim != 2:
            raise ConfigError("3-D thin-structure models export as SavedModels only: drop --tflite / --quantize")
        if tflite_size[0] % stride or tflite_size[1] % stride:
            raise ConfigError(f"TFLite size {tflite_size} must be a multiple of the model stride {stride}")
        from keras_skel.export.tflite import QUANTIZATIONS, convert_thin_tflite

        for variant in quantize:
            if variant not in QUANTIZATIONS:
                raise ConfigError(f"unknown quantization {variant!r}; choose from {', '.join(QUANTIZATIONS)}")
            target = Path(root) / f"{name}{'' if variant == 'none' else '_' + variant}.tflite"
            if target.exists() and not force:
                raise ConfigError(f"{target} exists already; pass --force to replace it")
            flatbuffers[target] = convert_thin_tflite(model, stride, tflite_size, variant, card["classes"])
        card["tflite_input_size"] = list(tflite_size)
        card["tflite"] = {path.name: variant for path, variant in zip(flatbuffers, quantize)}
    archive = build_thin_archive(model, stride, ndim)
    with atomic_directory(model_dir / str(version), force=force) as tmp:
        _write_archive(archive, tmp)
        (tmp / MODEL_CARD).parent.mkdir(parents=True, exist_ok=True)
        (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
        if eval_dirs:  # scored as exported, before it becomes visible
            from keras_skel.segmentation import evaluate_folder

            card["scores"] = {}
            for folder in eval_dirs:
                report = evaluate_folder(tmp, folder)
                card["scores"][Path(folder).name] = {k: v for k, v in report.items() if k not in ("model", "data")}
            (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
    for target, flatbuffer in flatbuffers.items():
        with atomic_file(target, force=force) as tmp_path:
            tmp_path.write_bytes(flatbuffer)
    return ExportResult(model_dir / str(version), tuple(flatbuffers), card)


def _export_volumes(run_dir: Path, name: str, root, version, force: bool, eval_dirs, command, notes) -> ExportResult:
    """`export_run` of a SkeletonNet run (SavedModel only)."""
    import keras
    import numpy as np

    import keras_skel.layers  # noqa: F401  (custom layers for deserialization)
    import keras_skel.models.skeletonnet  # noqa: F401
    from keras_skel.export.layout import atomic_directory
    from keras_skel.inference import read_model_info
    from keras_skel.skeletal_points import _expand_labels, _label_runs_of

    info = read_model_info(run_dir)
    best = run_dir / "best.keras"
    if not best.is_file():
        raise ModelNotFoundError(f"{run_dir} is not a finished training run (expected best.keras and model.json)")
    try:
        model = keras.saving.load_model(best, compile=False)
    except Exception as err:  # Keras raises many types for a damaged archive
        raise ModelNotFoundError(f"{best}: could not load the run's model: {err}") from None
    metrics = _read_metrics(run_dir)
    name, model_dir, version = _version_target(root, name, version, force)
    runs = info.get("point_labels") or _label_runs_of(model, info)
    size = int(model.input_shape[1])
    refined = "volume" in model.output
    threshold = info.get("threshold") if refined else None
    volume_outputs = {"volume": "float32 [N, r, r, r] skeletal-volume probability (axes x, y, z)",
                      "volume_mask": "uint8 [N, r, r, r] 0/1, volume >= threshold"} if refined else {}
    card = dict(
        name=name, version=version, task="volumes",
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        threshold=threshold, resolution=info.get("resolution"), image_size=[size, size],
        decoders=info.get("decoders"), refinement=info.get("refinement", "none"), stage=info.get("stage"),
        point_labels=runs,
        coordinates="unit cube [-0.5, 0.5]^3, y up; volume axes x, y, z",
        inputs={"serving_default": {"images": f"float32 [N, H, W, 3], RGB 0..1; resized to {size}x{size} inside "
                                              "(the model saw square renderings of one centred object)"}},
        outputs={"serving_default": {"points": "float32 [N, P, 3] skeletal points in the unit cube",
                                     "point_labels": "int32 [N, P]: 0 curve, 1 sheet, -1 unknown", **volume_outputs}},
        model=info.get("model"), training_data=info.get("data"), training_command=info.get("command"),
        validation={k: v for k, v in (metrics.get("val") or {}).items() if k != "iou_by_threshold"},
        export_command=command, notes=list(notes), run_dir=str(run_dir.resolve()),
        versions={"tensorflow": _tf_version(), "keras_skel": _package_version()}, scores={},
    )
    archive = build_volumes_archive(model, size, _expand_labels(runs).astype(np.int32), threshold)
    with atomic_directory(model_dir / str(version), force=force) as tmp:
        _write_archive(archive, tmp)
        (tmp / MODEL_CARD).parent.mkdir(parents=True, exist_ok=True)
        (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
        if eval_dirs:  # scored as exported, before it becomes visible
            card["scores"] = _volume_scores(tmp, eval_dirs)
            (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
    return ExportResult(model_dir / str(version), (), card)


def _volume_scores(saved_model_dir: Path, eval_dirs: Sequence[str | Path]) -> dict:
    """Chamfer distance, volume IoU and the quantize-and-dilate IoU of an exported SkeletonNet
    on each volumes folder."""
    from keras_skel.data.volumes import load_volumes_folder
    from keras_skel.skeletal_points import evaluate_predictor, load_points_predictor

    predictor = load_points_predictor(saved_model_dir)
    return {Path(folder).name: evaluate_predictor(predictor, load_volumes_folder(folder)[1]) for folder in eval_dirs}


def _scores(saved_model_dir: Path, eval_dirs: Sequence[str | Path]) -> dict:
    """Exact and 2-px F1 of the exported model and of the classical baseline on each folder."""
    from keras_skel.evaluation import evaluate
    from keras_skel.inference import load

    exported = load(saved_model_dir)
    scores = {}
    for folder in eval_dirs:
        entry = {}
        for label, model in (("model", exported), ("classical", "classical")):
            report = evaluate(model, folder, tolerance=2.0)
            entry[label] = {"exact_f1": report["exact"]["f1"], "f1_2px": report["tolerant"]["f1"]}
            entry["count"], entry["dataset"] = report["count"], report["dataset"]
        scores[Path(folder).name] = entry
    return scores


def _natural_scores(saved_model_dir: Path, eval_dirs: Sequence[str | Path]) -> dict:
    """Skeleton F1 within 4 px and benchmark ODS of an exported natural model and of the
    classical baseline (Otsu + skeletonize + prune) on each folder."""
    from keras_skel.detection import evaluate_natural_folder

    scores = {}
    for folder in eval_dirs:
        entry = {}
        for label, model in (("model", saved_model_dir), ("classical", "classical")):
            report = evaluate_natural_folder(model, folder, tolerance=4.0)
            entry[label] = {"f1_4px": report["skeleton"]["f1"], "precision": report["skeleton"]["precision"],
                            "recall": report["skeleton"]["recall"], "ods_f": report["benchmark"]["ods_f"]}
            entry["count"] = report["count"]
        scores[Path(folder).name] = entry
    return scores


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _package_version() -> str:
    from keras_skel import __version__

    return __version__
