"""Object-skeleton detection in natural images (task `natural`, DeepFlux): loading a model,
predicting, scoring, and the natural-task parts of a training run.

A natural model maps an RGB image (float 0..1, any size) to a context flux field (DeepFlux) or a
skeleton probability (the classification baseline); `export.graph.detect_skeletons` turns that
into a 1-px skeleton with TF ops, the same graph in `keras-skel predict`, in exported
SavedModels and in TF Serving.

Scores: skeleton F1 of the `skeleton` output with a pixel tolerance, dataset-level (counts
summed over images) beside the per-image mean; and the skeleton benchmarks' protocol on the
score map (confidence or probability): ODS / OIS F-measure and the PR curve
(`metrics.benchmark`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_skel.errors import ConfigError, DataError, ModelNotFoundError

__all__ = ["SkeletonDetector", "model_task", "load_detector", "evaluate_detector", "evaluate_natural_folder",
           "format_natural_report", "predict_natural_files", "flux_picture", "natural_run_record",
           "classical_natural_skeleton"]

K1, K2 = 3, 4  # DeepFlux's Algorithm 1 disks (paper §3.4)


class SkeletonDetector:
    """Skeletons of RGB images from a function `images [N, H, W, 3] -> dict of tensors`.

    Args:
        fn: the detection function (`export.graph.detect_skeletons` around a Keras model, a
            SavedModel's `serving_default`, ...).
        output: `flux` or `binary` (what the model predicts).
        threshold: the flux magnitude threshold λ, or the probability threshold (None when
            it is not known here: a model served over REST, whose graph has it baked in).
        name: shown in reports.
        fixed_size: `(H, W)` a fixed-size model (TFLite) takes; other sizes are refused.
    """

    task = "natural"

    def __init__(self, fn, output: str, threshold: float | None, name: str = "model",
                 fixed_size: tuple[int, int] | None = None):
        self.fn = fn
        self.output = output
        self.threshold = None if threshold is None else float(threshold)
        self.name = name
        self.fixed_size = fixed_size

    def detect(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """`{"skeleton": uint8 (H, W), "score": float32 (H, W), "flux": (H, W, 2) or None}` of one
        RGB image (H, W, 3) in [0, 1]; `score` is the confidence (flux) or the probability."""
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise DataError(f"{self.name} takes RGB images (H, W, 3); got an array of shape {image.shape}")
        if self.fixed_size is not None and image.shape[:2] != tuple(self.fixed_size):
            raise DataError(f"{self.name} is a fixed-size model for {self.fixed_size[0]}x{self.fixed_size[1]} "
                            f"images; got {image.shape[0]}x{image.shape[1]} (use the SavedModel or .keras model "
                            "for other sizes)")
        out = {k: np.asarray(v) for k, v in self.fn(image[None]).items()}
        score = out["confidence"] if "confidence" in out else out["probability"]
        return {"skeleton": out["skeleton"][0, ..., 0].astype(np.uint8), "score": score[0, ..., 0],
                "flux": out["flux"][0] if "flux" in out else None}

    def skeletonize(self, image: np.ndarray) -> np.ndarray:
        """uint8 0/1 skeleton `(H, W)` of an RGB image (uint8, or floats in 0..1)."""
        image = np.asarray(image)
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        return self.detect(image)["skeleton"]


def _keras_detector(keras_file: Path, info: dict, threshold: float | None) -> SkeletonDetector:
    import keras
    import tensorflow as tf

    import keras_skel.layers  # noqa: F401  (custom layers for deserialization)
    from keras_skel.export.graph import detect_skeletons

    model = keras.saving.load_model(keras_file, compile=False)
    output = info.get("output", "flux")
    lam = float(info.get("threshold", 0.4) if threshold is None else threshold)
    stride = int(info.get("stride", 16))

    tta = bool(info.get("tta", False))
    scales = tuple(float(s) for s in info.get("scales") or (1.0,))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], autograph=False)
    def fn(images):
        return detect_skeletons(model, images, stride, lam, output, int(info.get("k1", K1)), int(info.get("k2", K2)),
                                tta, scales)

    suffix = (" +TTA" if tta else "") + (f" scales {','.join(f'{s:g}' for s in scales)}" if scales != (1.0,) else "")
    return SkeletonDetector(fn, output, lam, name=str(keras_file) + suffix)


def _saved_model_detector(folder: Path, card: dict, threshold: float | None) -> SkeletonDetector:
    import tensorflow as tf

    if threshold is not None:
        raise ConfigError(f"{folder} is an exported model: its threshold is baked in ({card.get('threshold')}); "
                          "use the training run to try another")
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures["serving_default"]

    def fn(images):
        return signature(images=tf.constant(images))

    return SkeletonDetector(fn, card.get("output", "flux"), card.get("threshold", 0.4), name=str(folder))


def _tflite_detector(path: Path, card: dict) -> SkeletonDetector:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()["images"]
    size = tuple(int(s) for s in details["shape"][1:3])

    def fn(images):
        return runner(images=np.ascontiguousarray(images, np.float32))

    return SkeletonDetector(fn, card.get("output", "flux"), card.get("threshold", 0.4), name=str(path),
                            fixed_size=size)


def _rest_detector(url: str, threshold: float | None) -> SkeletonDetector:
    from keras_skel.serving.client import RestClient

    if threshold is not None:
        raise ConfigError(f"{url} is a served model: its threshold is baked into the exported graph; evaluate the "
                          "training run to try another")
    client = RestClient(url)
    _, outputs = client.signature("serving_default")

    def fn(images):
        # Columnar format: the whole batch as one tensor; every output comes back as an array.
        return client.predict(inputs=np.asarray(images, np.float32), signature_name="serving_default")

    return SkeletonDetector(fn, "flux" if "flux" in outputs else "binary", None, name=client.base_url)


def model_task(spec: Any) -> str | None:
    """The task (`shapes`, `thin`, `natural`, ...) a model spec's record names, or None when
    it names none or the spec is no model file (classical, loaded objects). For a TF Serving
    URL the served signature tells (`natural`, `volumes`, else None); an unreachable server
    raises `ServingError`."""
    from keras_skel.inference import model_record, resolve_model
    from keras_skel.serving.client import served_task

    if not isinstance(spec, (str, os.PathLike)) or str(spec) == "classical":
        return None
    if str(spec).startswith(("http://", "https://")):
        return served_task(str(spec))
    try:
        kind, path = resolve_model(spec)
        return model_record(kind, path).get("task")
    except (ModelNotFoundError, DataError):
        return None


def load_detector(spec: str | Path, threshold: float | None = None) -> SkeletonDetector:
    """A `SkeletonDetector` from a natural run dir, `.keras` file (beside its `model.json`),
    exported SavedModel, `.tflite` file, shipped model name or TF Serving REST URL
    (`http://HOST:PORT/v1/models/NAME`: the served graph does all the work).

    Raises:
        ModelNotFoundError: the spec is no model.
        ConfigError: the model is not a natural-image one.
        ServingError: the server of a URL cannot be reached.
    """
    from keras_skel.inference import model_record, resolve_model
    from keras_skel.serving.client import served_task

    if str(spec).startswith(("http://", "https://")):
        if served_task(str(spec)) != "natural":
            raise ConfigError(f"{spec} serves no natural-image (DeepFlux) model: its serving_default does not take "
                              "RGB images to a skeleton")
        return _rest_detector(str(spec), threshold)
    kind, path = resolve_model(spec)
    info = model_record(kind, path)
    if info.get("task") != "natural":
        raise ConfigError(f"{spec} is a {info.get('task') or 'binary-shape'} model, not a natural-image "
                          "(DeepFlux) one")
    if kind == "keras":
        return _keras_detector(path, info, threshold)
    if kind == "saved_model":
        return _saved_model_detector(path, info, threshold)
    if threshold is not None:
        raise ConfigError("a .tflite model has its threshold baked in")
    return _tflite_detector(path, info)


# ------------------------------------------------------------------------------ scoring


def evaluate_detector(detector: SkeletonDetector, samples: Sequence[tuple[str, np.ndarray, np.ndarray]],
                      tolerance: float = 4.0, pr_levels: int = 99, progress: bool = False) -> dict:
    """Scores `detector` on `(id, image, skeleton)` samples.

    Returns:
        `{"skeleton": {precision, recall, f1, mean_image_f1}` within `tolerance` px (dataset
        level, and the per-image mean), `"benchmark": {ods_f, ods_precision, ods_recall,
        ods_threshold, ois_f}` of `BenchmarkAccumulator` on the score maps, `"pr_curve"` (its
        thresholds, precision, recall, f for `plot_pr_curve`), `"count"`, `"model"`,
        `"tolerance_px"}`.
    """
    from keras_skel.metrics.benchmark import BenchmarkAccumulator
    from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator

    f1 = SkeletonF1Accumulator(tolerance)
    bench = BenchmarkAccumulator(pr_levels)
    for i, (sample_id, image, skeleton) in enumerate(samples):
        out = detector.detect(image)
        f1.update(out["skeleton"], skeleton, image_id=sample_id)
        bench.update(out["score"], skeleton, image_id=sample_id)
        if progress and (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(samples)}", flush=True)
    result = f1.result()
    bench_result = bench.result()
    return dict(model=detector.name, count=len(samples), tolerance_px=tolerance,
                skeleton={k: result[k] for k in ("precision", "recall", "f1", "mean_image_f1")},
                benchmark={k: bench_result[k] for k in ("ods_f", "ods_precision", "ods_recall", "ods_threshold",
                                                        "ois_f")},
                pr_curve={k: bench_result[k] for k in ("thresholds", "precision", "recall", "f", "ods_f",
                                                       "ods_precision", "ods_recall")})


def classical_natural_skeleton(image: np.ndarray, prune_length: float = 10.0) -> np.ndarray:
    """The classical baseline on an RGB image: Otsu threshold of the grey image (the minority
    side as foreground), skeletonize, prune terminal branches under `prune_length` px (the
    ground-truth rule)."""
    from skimage.filters import threshold_otsu

    from keras_skel.data.targets import skeleton_target

    grey = np.asarray(image, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if np.ptp(grey) == 0:
        return np.zeros(grey.shape, np.uint8)
    mask = grey > threshold_otsu(grey)
    if mask.mean() > 0.5:  # the object is the smaller side
        mask = ~mask
    return skeleton_target(mask.astype(np.uint8), prune_length)


class _ClassicalDetector(SkeletonDetector):
    def __init__(self):
        super().__init__(None, "binary", 0.5, name="classical (Otsu + skeletonize + prune)")

    def detect(self, image):
        skeleton = classical_natural_skeleton(image)
        return {"skeleton": skeleton, "score": skeleton.astype(np.float32), "flux": None}


def evaluate_natural_folder(model: str | Path, data_dir: str | Path, tolerance: float = 4.0,
                            report_dir: str | Path | None = None, overwrite: bool = False,
                            threshold: float | None = None, progress: bool = False) -> dict:
    """Scores a natural model (or `classical`) on a folder with images/ and skeletons/ and
    writes `report.json` (+ `pr_curve.png`) to `report_dir` when given."""
    from keras_skel.data.natural import load_natural_folder

    report_path = Path(report_dir) / "report.json" if report_dir is not None else None
    if report_path is not None and report_path.exists() and not overwrite:
        raise DataError(f"{report_path} exists already; pass --overwrite to replace it")
    detector = _ClassicalDetector() if str(model) == "classical" else load_detector(model, threshold)
    samples = load_natural_folder(data_dir)
    report = evaluate_detector(detector, samples, tolerance, progress=progress)
    report["data"] = str(data_dir)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        curve = report.pop("pr_curve", None)
        tmp = report_path.with_name("report.json.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(report_path)
        if curve:
            from keras_skel.metrics.benchmark import plot_pr_curve

            plot_pr_curve({detector.name: curve}, report_path.parent / "pr_curve.png")
    return report


def format_natural_report(report: dict) -> str:
    s, b = report["skeleton"], report["benchmark"]
    return (f"{report['model']} on {report['count']} images: skeleton F1 {s['f1']:.4f} "
            f"(P {s['precision']:.4f}, R {s['recall']:.4f}, per-image mean {s['mean_image_f1']:.4f}) within "
            f"{report['tolerance_px']:g} px; benchmark protocol (0.01 x diagonal) ODS {b['ods_f']:.4f}, "
            f"OIS {b['ois_f']:.4f}")


# ------------------------------------------------------------------------------ pictures


def flux_picture(flux: np.ndarray) -> np.ndarray:
    """RGB uint8 picture of a flux field: hue = direction, value = magnitude (clipped at 1),
    full saturation; zero flux is black.

    Example:
        >>> flux_picture(np.array([[[0.0, 1.0], [0.0, 0.0]]])).tolist()
        [[[255, 0, 0], [0, 0, 0]]]
    """
    import cv2

    flux = np.asarray(flux, np.float32)
    dy, dx = flux[..., 0], flux[..., 1]
    angle = (np.degrees(np.arctan2(dy, dx)) % 360.0) / 2.0  # OpenCV hue is 0..180
    value = np.clip(np.hypot(dy, dx), 0, 1) * 255
    hsv = np.stack([angle, np.full_like(angle, 255), value], axis=-1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _skeleton_overlay(image: np.ndarray, skeleton: np.ndarray) -> np.ndarray:
    import cv2

    picture = (np.clip(image, 0, 1) * 255).astype(np.uint8).copy()
    halo = cv2.dilate(skeleton, np.ones((3, 3), np.uint8)) > 0
    picture[halo] = (0, 0, 0)
    picture[skeleton > 0] = (255, 230, 0)
    return picture


def predict_natural_files(model: str | Path, inputs: Sequence[str | Path], out_dir: str | Path,
                          overlay_pictures: bool = False, overwrite: bool = False,
                          threshold: float | None = None) -> list[Path]:
    """Skeletons of image files with a natural model: `OUT/<stem>.png` (white 1-px skeleton);
    `overlay_pictures` adds `<stem>_overlay.png` (skeleton over the image) and, for flux
    models, `<stem>_flux.png` (`flux_picture`). Existing outputs are refused unless
    `overwrite`.

    Returns:
        The skeleton paths written.
    """
    from keras_skel.data.natural import read_rgb
    from keras_skel.segmentation import _input_files

    detector = load_detector(model, threshold)
    files = _input_files(inputs, 2)
    out_dir = Path(out_dir)
    planned = []
    for f in files:
        planned.append(out_dir / f"{f.stem}.png")
        if overlay_pictures:
            planned.append(out_dir / f"{f.stem}_overlay.png")
            if detector.output == "flux":
                planned.append(out_dir / f"{f.stem}_flux.png")
    inputs_resolved = {f.resolve() for f in files}
    clash = [p for p in planned if p.resolve() in inputs_resolved]
    if clash:
        raise DataError(f"{clash[0]} is an input image: writing the skeletons into the input folder would replace "
                        "it; choose another --out")
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        raise DataError(f"{existing[0]} exists already; pass --overwrite to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(path: Path, rgb_or_grey: np.ndarray) -> None:
        from keras_skel.data.thin import _atomic_write, _png_writer

        array = rgb_or_grey[..., ::-1] if rgb_or_grey.ndim == 3 else rgb_or_grey
        _atomic_write(path, _png_writer(np.ascontiguousarray(array), path))

    written = []
    for f in files:
        image = read_rgb(f)
        out = detector.detect(image)
        write(out_dir / f"{f.stem}.png", out["skeleton"] * 255)
        written.append(out_dir / f"{f.stem}.png")
        if overlay_pictures:
            write(out_dir / f"{f.stem}_overlay.png", _skeleton_overlay(image, out["skeleton"]))
            if out["flux"] is not None:
                write(out_dir / f"{f.stem}_flux.png", flux_picture(out["flux"]))
    return written


# ------------------------------------------------------------------------------ training runs


def natural_run_record(cfg: Any, run_dir: Path, model, splits, command: str | None) -> tuple[dict, dict]:
    """Chooses the threshold (λ for flux, probability for binary) among `eval.thresholds` by
    the dataset-level skeleton F1 within `eval.tolerance` px on the validation samples (with
    D4 test-time augmentation when `eval.tta` and averaged over `eval.scales`, which the record
    then asks for), scores
    the best checkpoint there, and returns `(model_info, val_scores)`."""
    import tensorflow as tf

    from keras_skel.export.graph import natural_raw_outputs, skeletons_from_outputs
    from keras_skel.inference import infer_stride
    from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator

    stride = infer_stride(model)
    output = cfg.data.target
    scales = tuple(float(s) for s in cfg.eval.scales)
    raw_fn = tf.function(lambda images: natural_raw_outputs(model, images, stride, cfg.eval.tta, scales),
                         autograph=False,
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    channels = 2 if output == "flux" else 1
    post_fn = tf.function(lambda raw, lam: skeletons_from_outputs(raw, lam, output, K1, K2)["skeleton"],
                          autograph=False, input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32),
                                                            tf.TensorSpec([], tf.float32)])
    raws = [raw_fn(image[None]) for _, image, _ in splits.val]
    table = []
    for lam in cfg.eval.thresholds:
        acc = SkeletonF1Accumulator(cfg.eval.tolerance)
        for raw, (sample_id, _, skeleton) in zip(raws, splits.val):
            acc.update(post_fn(raw, float(lam)).numpy()[0, ..., 0], skeleton, image_id=sample_id)
        table.append(dict(threshold=float(lam), f1=acc.result()["f1"]))
    best = max(table, key=lambda row: row["f1"])
    info = dict(task="natural", output=output, threshold=best["threshold"], k1=K1, k2=K2, stride=stride,
                flux_radius=cfg.data.flux_radius, tta=bool(cfg.eval.tta), scales=list(scales), input_channels=3,
                image_size=list(cfg.data.image_size),
                model=cfg.model.name, data=splits.description, command=command)
    detector = _keras_detector(run_dir / "best.keras", info, None)
    scores = evaluate_detector(detector, splits.val, cfg.eval.tolerance, pr_levels=25)
    scores.pop("pr_curve", None)
    scores["threshold_table"] = table
    return info, scores
