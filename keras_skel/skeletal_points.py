"""SkeletonNet's skeletal point sets and volumes (task `volumes`): losses, scoring, run record.

Point scores are Chamfer distances (`metrics.chamfer`, means of squared nearest-neighbour
distances, coordinates in the unit cube [-0.5, 0.5]³) between predicted and ground-truth
meso-skeleton points, averaged over every view of every object: `cd` for all points (the
union of curve and sheet outputs for the two-decoder model), and `cd_curve` / `cd_sheet` for
the two decoders against their own ground-truth subsets. Volume scores are IoUs with V*
(`metrics.volumes.volume_iou`, averaged over views): `iou` of the refined volume thresholded at
the run's threshold (chosen on the validation split), and `iou_quantize`, the Table 2 baseline
(the predicted points quantized and dilated, `metrics.volumes.quantize_dilate`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_skel.errors import ConfigError

__all__ = ["SkeletalPointsPredictor", "load_points_predictor", "predict_volume_files", "ply_text", "obj_text",
           "mesh_of", "fit_viewpoint", "model_outputs", "volume_losses", "predict_points", "evaluate_points",
           "skeletonnet_run_record",
           "model_params", "union_points", "VOLUME_THRESHOLDS", "evaluate_predictor"]

VOLUME_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.91, 0.05))


def model_params(cfg: Any) -> dict:
    """The `build_skeletonnet` arguments of a recipe (its defaults filled in)."""
    from keras_skel.models.skeletonnet import build_skeletonnet

    defaults = {name: p.default for name, p in inspect.signature(build_skeletonnet).parameters.items()}
    return {**defaults, **dict(cfg.model.params)}


def model_outputs(cfg: Any) -> list[str]:
    """The output names of the SkeletonNet a recipe builds."""
    params = model_params(cfg)
    names = ["curve", "sheet"] if params["decoders"] == "both" else ["points"]
    if params["refinement"] != "none":
        names += ["volume"] + (["coarse"] if params["refinement"] == "guided" else [])
    return names


def volume_losses(cfg: Any) -> tuple[dict, dict]:
    """`(losses, loss_weights)` per model output, by the training stage (`model.params.stage`):
    without refinement a `ChamferLaplacianLoss` per point output (with its neighbour table);
    stage ``refine`` only the per-voxel BCE of `volume` (and `coarse`), the point generator
    being frozen; stage ``joint`` both, the BCEs weighted by β (`loss.params.beta`, paper 1;
    eq. 7)."""
    import keras

    from keras_skel.losses.points import ChamferLaplacianLoss
    from keras_skel.models.skeletonnet import skeletonnet_neighbours

    if cfg.loss.name != "chamfer":
        raise ConfigError(f"task volumes trains with loss chamfer (Chamfer + alpha * Laplacian); got {cfg.loss.name}")
    params = model_params(cfg)
    loss_params = dict(cfg.loss.params)
    unknown = set(loss_params) - {"alpha", "beta"}
    if unknown:
        raise ConfigError(f"loss chamfer takes params alpha and beta; got {sorted(unknown)}")
    tables = skeletonnet_neighbours(params["decoders"], params["lines"], params["squares"], params["line_samples"],
                                    params["square_side"])
    alpha = float(loss_params.get("alpha", 0.2))
    beta = float(loss_params.get("beta", 1.0))
    losses = {} if params["refinement"] != "none" and params["stage"] == "refine" else \
        {name: ChamferLaplacianLoss(table, alpha, name=f"chamfer_{name}") for name, table in tables.items()}
    weights = {name: 1.0 for name in losses}
    for name in model_outputs(cfg):
        if name in ("volume", "coarse"):
            losses[name] = keras.losses.BinaryCrossentropy(name=f"bce_{name}")
            weights[name] = 1.0 if params["stage"] == "refine" else beta
    return losses, weights


def predict_points(model, images: np.ndarray, batch_size: int = 16) -> dict[str, np.ndarray]:
    """The model's outputs (point sets, and volumes for a refining model) for `[N, S, S, 3]`
    images, as NumPy."""
    out = model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return {k: np.asarray(v) for k, v in out.items()}


def union_points(out: dict, view: int) -> np.ndarray:
    """All skeletal points of one view of `predict_points` output (curve then sheet)."""
    if "curve" in out:
        return np.concatenate([out["curve"][view], out["sheet"][view]])
    return out["points"][view]


def _summarize(scores: dict, by_threshold: dict, threshold: float | None) -> dict:
    result = {k: float(np.mean([v for v in values if np.isfinite(v)])) for k, values in scores.items() if values}
    if any(by_threshold.values()):
        means = {t: float(np.mean(v)) for t, v in by_threshold.items()}
        best = max(means, key=lambda t: (means[t], -abs(t - 0.5)))
        result.update(iou=means[best], threshold=best)
        if threshold is None:
            result["iou_by_threshold"] = {f"{t:.2f}": v for t, v in means.items()}
    result["count"] = len(scores["cd"])
    return result


def evaluate_points(model, samples: Sequence[dict], threshold: float | None = None,
                    resolution: int | None = None) -> dict:
    """Mean scores of a Keras SkeletonNet over every view of `samples` (see the module
    docstring), plus `count` (views). A refining model's `iou` uses `threshold` (None: every one
    of `VOLUME_THRESHOLDS`, reported as `iou_by_threshold`, `threshold` = the best);
    `iou_quantize` is computed at the refined volume's resolution, or at `resolution` (default:
    the data's V*) for a points-only model."""
    from keras_skel.data.volumes import CURVE, SHEET, ground_truth_volume
    from keras_skel.metrics.points import chamfer
    from keras_skel.metrics.volumes import quantize_dilate, volume_iou

    thresholds = VOLUME_THRESHOLDS if threshold is None else (float(threshold),)
    scores: dict[str, list[float]] = {"cd": [], "cd_curve": [], "cd_sheet": [], "iou_quantize": []}
    by_threshold: dict[float, list[float]] = {t: [] for t in thresholds}
    for sample in samples:
        out = predict_points(model, sample["images"])
        gt, labels = sample["skeleton_points"], sample["skeleton_labels"]
        side = out["volume"].shape[1] if "volume" in out else int(resolution or sample["skeletal_volume"].shape[0])
        truth = ground_truth_volume(sample, side)
        for view in range(len(sample["images"])):
            if "curve" in out:
                scores["cd_curve"].append(chamfer(out["curve"][view], gt[labels == CURVE]))
                scores["cd_sheet"].append(chamfer(out["sheet"][view], gt[labels == SHEET]))
            union = union_points(out, view)
            scores["cd"].append(chamfer(union, gt))
            scores["iou_quantize"].append(volume_iou(quantize_dilate(union, side), truth))
            if "volume" in out:
                for t in thresholds:
                    by_threshold[t].append(volume_iou(out["volume"][view, ..., 0] >= t, truth))
    return _summarize(scores, by_threshold, threshold)


def evaluate_predictor(predictor, samples: Sequence[dict]) -> dict:
    """`evaluate_points` for a `SkeletalPointsPredictor` (an exported model at its own
    threshold): `cd`, `iou` (refining models), `iou_quantize`, `count`."""
    from keras_skel.data.volumes import ground_truth_volume
    from keras_skel.metrics.points import chamfer
    from keras_skel.metrics.volumes import quantize_dilate, volume_iou

    scores: dict[str, list[float]] = {"cd": [], "iou_quantize": [], "iou": []}
    for sample in samples:
        truth = None
        for image in sample["images"]:
            out = predictor.predict(image)
            side = out["volume_mask"].shape[0]
            truth = truth if truth is not None and truth.shape[0] == side else ground_truth_volume(sample, side)
            scores["cd"].append(chamfer(out["points"], sample["skeleton_points"]))
            scores["iou_quantize"].append(volume_iou(quantize_dilate(out["points"], side), truth))
            if out["refined"]:
                scores["iou"].append(volume_iou(out["volume_mask"], truth))
    return _summarize(scores, {}, None)


def skeletonnet_run_record(cfg: Any, run_dir: Path, model, splits, command: str | None) -> tuple[dict, dict]:
    """`(model_info, val_scores)` of a finished SkeletonNet run; a refining model's volume
    threshold is the one with the best mean IoU on the validation split."""
    params = model_params(cfg)
    scores = evaluate_points(model, splits.val)
    info = dict(task="volumes", decoders=params["decoders"], refinement=params["refinement"],
                stage=params["stage"] if params["refinement"] != "none" else "points", outputs=model_outputs(cfg),
                image_size=list(cfg.data.image_size), model=cfg.model.name, data=splits.description, command=command,
                coordinates="unit cube [-0.5, 0.5]^3, y up")
    from keras_skel.models.skeletonnet import point_label_runs

    info["point_labels"] = point_label_runs(params["decoders"], params["lines"], params["squares"],
                                            params["line_samples"], params["square_side"])
    if params["refinement"] != "none":
        info.update(threshold=scores["threshold"], resolution=int(params["resolution"]))
    else:  # the quantize-and-dilate volume of `predict` is made at the training data's V* size
        info["resolution"] = int(splits.val[0]["skeletal_volume"].shape[0])
    return info, scores


# ------------------------------------------------------------------------------ prediction


def _expand_labels(runs) -> np.ndarray:
    return np.concatenate([np.full(int(count), int(label), np.int32) for label, count in runs])


def _label_runs_of(model, info: dict) -> list[list[int]]:
    """Point label runs from the model's outputs (records written before `point_labels` was kept)."""
    shapes = {name: tuple(t.shape) for name, t in model.output.items()}
    if "curve" in shapes:
        return [[0, shapes["curve"][1]], [1, shapes["sheet"][1]]]
    label = {"lines": 0, "squares": 1}.get(info.get("decoders"), -1)
    return [[label, shapes["points"][1]]]


class SkeletalPointsPredictor:
    """Skeletal points and volume of one RGB image with a SkeletonNet.

    Args:
        fn: `images [1, H, W, 3] -> dict` of `export.graph.skeletal_outputs` (around a Keras
            model, or a SavedModel's `serving_default`).
        image_size: the model's input side (inputs are padded to a square first).
        resolution: side of the volume; a points-only model's volume is the quantize-and-dilate
            of its points at this size.
        threshold: the volume threshold (refining models).
        name: shown in messages.
    """

    task = "volumes"

    def __init__(self, fn, image_size: int, resolution: int, threshold: float | None, name: str = "model"):
        self.fn, self.image_size, self.resolution, self.threshold, self.name = fn, int(image_size), int(resolution), \
            threshold, name

    def predict(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """`{points [P, 3], point_labels [P], volume [r, r, r] float32, volume_mask [r, r, r]
        uint8, refined (bool)}` of an RGB image `(H, W, 3)` in [0, 1] (uint8 accepted). A
        non-square image is padded to a square with its border colour (renderings show the
        object centred on a plain background)."""
        from keras_skel.errors import DataError
        from keras_skel.metrics.volumes import quantize_dilate

        image = np.asarray(image)
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        if image.ndim != 3 or image.shape[-1] != 3:
            raise DataError(f"{self.name} takes RGB images (H, W, 3); got an array of shape {image.shape}")
        image = _pad_square(image.astype(np.float32))
        out = {k: np.asarray(v)[0] for k, v in self.fn(image[None]).items()}
        out["refined"] = "volume" in out
        if "volume" not in out:
            mask = quantize_dilate(out["points"], self.resolution)
            out.update(volume=mask.astype(np.float32), volume_mask=mask)
        return out


def _border_colour(image: np.ndarray) -> np.ndarray:
    """Median colour of the image's outermost pixels (the renderings' plain background)."""
    return np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]), axis=0)


def _pad_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h == w:
        return image
    colour = _border_colour(image)
    side = max(h, w)
    out = np.empty((side, side, 3), np.float32)
    out[:] = colour
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def load_points_predictor(spec) -> SkeletalPointsPredictor:
    """A `SkeletalPointsPredictor` from a SkeletonNet run dir, `.keras` file (beside its
    `model.json`), exported SavedModel or shipped model name.

    Raises:
        ModelNotFoundError: the spec is no model.
        ConfigError: not a SkeletonNet (task volumes) model, or a TFLite file.
    """
    from keras_skel.inference import model_record, resolve_model

    if str(spec).startswith(("http://", "https://")):
        raise ConfigError(f"{spec} is a served SkeletonNet: keras-skel reads SkeletonNet models from files only (a "
                          "run dir, .keras file, SavedModel or shipped name); call the REST API directly "
                          "(keras_skel.serving.client.RestClient(url).predict(inputs=images) gives points, "
                          "point_labels, volume and volume_mask)")
    kind, path = resolve_model(spec)
    info = model_record(kind, path)
    if info.get("task") != "volumes":
        raise ConfigError(f"{spec} is a {info.get('task') or 'binary-shape'} model, not a SkeletonNet (volumes) one")
    threshold = info.get("threshold")
    if kind == "keras":
        import keras
        import tensorflow as tf

        import keras_skel.layers  # noqa: F401  (custom layers for deserialization)
        import keras_skel.losses  # noqa: F401
        import keras_skel.models.skeletonnet  # noqa: F401  (its internal layer)
        from keras_skel.export.graph import skeletal_outputs

        model = keras.saving.load_model(path, compile=False)
        size = int(model.input_shape[1])
        labels = _expand_labels(info.get("point_labels") or _label_runs_of(model, info))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], autograph=False)
        def fn(images):
            return skeletal_outputs(model, images, size, labels, threshold)

        return SkeletalPointsPredictor(fn, size, info.get("resolution", 32), threshold, name=str(path))
    if kind == "saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        return SkeletalPointsPredictor(lambda images: signature(images=tf.constant(images)),
                                       int(info["image_size"][0]), info.get("resolution", 32), threshold,
                                       name=str(path))
    raise ConfigError(f"{path}: SkeletonNet models are exported as SavedModels only (no TFLite)")


def ply_text(points: np.ndarray, labels: np.ndarray) -> str:
    """ASCII PLY of labelled points: x y z, `label` (0 curve, 1 sheet, -1 unknown) and a colour
    per label (red curve, blue sheet, grey unknown) for viewers."""
    colours = {0: (220, 40, 40), 1: (40, 90, 220)}
    lines = ["ply", "format ascii 1.0",
             "comment keras-skel skeletal points: unit cube [-0.5, 0.5]^3, y up; label 0 curve, 1 sheet, -1 unknown",
             f"element vertex {len(points)}", "property float x", "property float y", "property float z",
             "property int label", "property uchar red", "property uchar green", "property uchar blue", "end_header"]
    for (x, y, z), label in zip(np.asarray(points, float), np.asarray(labels, int)):
        r, g, b = colours.get(int(label), (128, 128, 128))
        lines.append(f"{x:.6f} {y:.6f} {z:.6f} {int(label)} {r} {g} {b}")
    return "\n".join(lines) + "\n"


def mesh_of(volume: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """`(vertices [V, 3] in the unit cube, faces [F, 3] 0-based)`: marching cubes of a volume
    `[r, r, r]` (axes x, y, z) at `level`, zero-padded so the surface is closed; empty arrays
    when nothing reaches `level`."""
    from skimage.measure import marching_cubes

    volume = np.pad(np.asarray(volume, np.float32), 1)
    if not volume.max() >= level > volume.min():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    vertices, faces, _, _ = marching_cubes(volume, level=level)
    r = volume.shape[0] - 2
    return ((vertices - 1 + 0.5) / r - 0.5).astype(np.float32), faces.astype(np.int64)


def obj_text(vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> str:
    """Wavefront OBJ of a triangle mesh (`v x y z`, `f i j k` 1-based)."""
    lines = [f"# {line}" for line in (comment or "keras-skel mesh").splitlines()]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, float)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, int)]
    return "\n".join(lines) + "\n"


def fit_viewpoint(image: np.ndarray, points: np.ndarray) -> tuple[float, float, float]:
    """`(azimuth, elevation, score)`: the camera of `data.volumes.render` (azimuth every 5°,
    elevation 0°–60° every 5°) under which the most points project onto the object's
    silhouette in `image` (pixels away from the border colour), score = that fraction. The
    model predicts in the object's own frame, so the input's viewpoint is unknown otherwise."""
    from scipy import ndimage

    from keras_skel.data.volumes import project

    image = np.asarray(image, np.float32)
    size = image.shape[0]
    silhouette = np.abs(image - _border_colour(image)).max(axis=-1) > 0.08
    silhouette = ndimage.binary_dilation(silhouette, iterations=max(1, size // 64))
    best = (0.0, 0.0, -1.0)
    for elevation in np.radians(np.arange(0, 61, 5)):
        for azimuth in np.radians(np.arange(0, 360, 5)):
            xy = np.round(project(points, azimuth, elevation, size)).astype(int)
            inside = (xy >= 0).all(axis=1) & (xy < size).all(axis=1)
            score = float(silhouette[xy[inside, 1], xy[inside, 0]].sum()) / max(1, len(points))
            if score > best[2]:
                best = (float(azimuth), float(elevation), score)
    return best


def _points_picture(path: Path, image: np.ndarray, out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_skel.data.volumes import project
    from keras_skel.visualize import save_figure

    image = _pad_square(np.asarray(image, np.float32))
    points, labels = out["points"], out["point_labels"]
    azimuth, elevation, score = fit_viewpoint(image, points)
    colours = np.where(labels[:, None] == 0, [[0.86, 0.16, 0.16]], np.where(labels[:, None] == 1,
                                                                             [[0.16, 0.35, 0.86]], [[0.4, 0.4, 0.4]]))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6))
    size = image.shape[0]
    xy = project(points, azimuth, elevation, size)
    axes[0].imshow(image)
    axes[0].scatter(xy[:, 0], xy[:, 1], s=2, c=colours)
    axes[0].set_title(f"points over the input\n(az {np.degrees(azimuth):.0f}°, el {np.degrees(elevation):.0f}°, "
                      f"fit {score:.2f})", fontsize=8)
    for ax, (az, el) in zip(axes[1:], ((0, 20), (90, 20), (45, 60))):
        uv = project(points, np.radians(az), np.radians(el), 256)
        ax.scatter(uv[:, 0], uv[:, 1], s=2, c=colours)
        ax.set_xlim(0, 256)
        ax.set_ylim(256, 0)
        ax.set_aspect("equal")
        ax.set_title(f"az {az}°, el {el}° (red curve, blue sheet)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)


def predict_volume_files(model, inputs: Sequence, out_dir, overwrite: bool = False) -> list[Path]:
    """SkeletonNet outputs of RGB image files (DESIGN.md §3, task volumes): per input
    `OUT/<stem>_points.ply` (points with curve / sheet label), `<stem>_volume.npy` (float32
    `[r, r, r]` skeletal-volume probability, axes x, y, z; a points-only model writes the
    quantize-and-dilate volume, 0/1), `<stem>_mesh.obj` (marching cubes of the volume at the
    model's threshold, unit-cube coordinates) and `<stem>_points.png` (the points over the input
    at the best-fitting camera, and three fixed views). Existing outputs are refused unless
    `overwrite`.

    Returns:
        The `.ply` paths written.
    """
    from keras_skel.data.natural import read_rgb
    from keras_skel.data.thin import _atomic_write
    from keras_skel.errors import DataError
    from keras_skel.segmentation import _input_files

    predictor = load_points_predictor(model)
    files = _input_files(inputs, 2)
    out_dir = Path(out_dir)
    suffixes = ("_points.ply", "_volume.npy", "_mesh.obj", "_points.png")
    planned = [out_dir / f"{f.stem}{suffix}" for f in files for suffix in suffixes]
    inputs_resolved = {f.resolve() for f in files}
    clash = [p for p in planned if p.resolve() in inputs_resolved]
    if clash:
        raise DataError(f"{clash[0]} is an input file; choose another --out")
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        raise DataError(f"{existing[0]} exists already; pass --overwrite to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        image = read_rgb(f)
        out = predictor.predict(image)
        stem = out_dir / f.stem
        text = ply_text(out["points"], out["point_labels"])
        _atomic_write(Path(f"{stem}_points.ply"), lambda fh: fh.write(text.encode()))
        volume = out["volume"].astype(np.float32)
        _atomic_write(Path(f"{stem}_volume.npy"), lambda fh: np.save(fh, volume))
        level = float(predictor.threshold) if out["refined"] and predictor.threshold is not None else 0.5
        vertices, faces = mesh_of(volume, level)
        comment = (f"keras-skel skeletal volume of {f.name}: marching cubes at {level:g} of a "
                   f"{volume.shape[0]}^3 {'refined' if out['refined'] else 'quantized-and-dilated'} volume; "
                   "unit cube [-0.5, 0.5]^3, y up" + ("" if len(faces) else "\nempty: no voxel reaches the level"))
        mesh = obj_text(vertices, faces, comment)
        _atomic_write(Path(f"{stem}_mesh.obj"), lambda fh: fh.write(mesh.encode()))
        _points_picture(Path(f"{stem}_points.png"), image, out)
        written.append(Path(f"{stem}_points.ply"))
    return written
