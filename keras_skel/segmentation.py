"""Thin-structure segmentation (task `thin`): predicting label maps, scoring them, and the
thin-task parts of a training run.

A thin model maps an image `[H, W]` or volume `[D, H, W]` (float 0..1) to class probabilities;
its labels are the argmax of a softmax (channel 0 = background) or the 0.5 threshold of a
sigmoid. Scores are Dice, clDice and Betti-number errors per class
(`keras_skel.metrics.topology`), reported as means over images, as the thin-structure papers
do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_skel.data.folders import list_images
from keras_skel.data.io import IMAGE_SUFFIXES, is_image_path
from keras_skel.errors import ConfigError, DataError, ModelNotFoundError

__all__ = ["ThinSegmenter", "GraphSegmenter", "TFLiteSegmenter", "load_segmenter", "evaluate_segmentation",
           "evaluate_folder", "predict_thin_files", "measure_pipeline_rate"]

# Overlay colours of classes 1..8 (RGB).
_CLASS_COLOURS = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                           [70, 240, 240], [240, 50, 230], [210, 245, 60]], np.uint8)



class ThinSegmenter:
    """Label maps from a Keras thin-structure model.

    Args:
        model: a single-output `keras.Model` (`models.canet.probability_model` of a
            deep-supervised one).
        classes: foreground classes (1 = sigmoid binary model).
        stride: inputs are padded to a multiple of this per spatial axis (and cropped back).
        name: shown in reports.
    """

    def __init__(self, model, classes: int, stride: int, name: str = "model"):
        self.model = model
        self.classes = int(classes)
        self.stride = int(stride)
        self.name = name
        self.ndim = len(model.input_shape) - 2
        import tensorflow as tf

        # One trace for every input size (a plain call would retrace per shape).
        @tf.function(input_signature=[tf.TensorSpec([None] * (self.ndim + 1) + [1], tf.float32)], autograph=False)
        def probability_fn(images):
            return model(images, training=False)

        self._probability_fn = probability_fn

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities `[*spatial, C]` of one image or volume."""
        image = np.asarray(image, np.float32)
        if image.ndim != self.ndim:
            raise DataError(f"{self.name} segments {self.ndim}-D inputs; got an array of shape {image.shape}")
        pads = [(0, -s % self.stride) for s in image.shape]
        padded = np.pad(image, pads)[None, ..., None]
        out = self._probability_fn(padded).numpy()[0]
        return out[tuple(slice(0, s) for s in image.shape)]

    def labels(self, image: np.ndarray) -> np.ndarray:
        """uint8 label map (0 = background, 1..K), same spatial shape as `image`."""
        prob = self.probability(image)
        if prob.shape[-1] == 1:
            return (prob[..., 0] >= 0.5).astype(np.uint8)
        return np.argmax(prob, axis=-1).astype(np.uint8)


class GraphSegmenter(ThinSegmenter):
    """Label maps from an exported thin-structure graph, whose `serving_default` pads, runs the
    model, crops back and takes the labels (`export.graph.segment_images`).

    Args:
        fn: `images [1, ..., 1] float32 → {"labels", "probability"}` as NumPy arrays.
        classes: foreground classes.
        ndim: 2 (images) or 3 (volumes).
        name: shown in reports.
    """

    def __init__(self, fn, classes: int, ndim: int, name: str):
        self.model = None
        self.classes = int(classes)
        self.ndim = int(ndim)
        self.stride = 1  # padding to the network's stride happens inside the graph
        self.name = name
        self._fn = fn

    def _outputs(self, image: np.ndarray) -> dict:
        image = np.asarray(image, np.float32)
        if image.ndim != self.ndim:
            raise DataError(f"{self.name} segments {self.ndim}-D inputs; got an array of shape {image.shape}")
        return {k: np.asarray(v)[0] for k, v in self._fn(image[None, ..., None]).items()}

    def probability(self, image: np.ndarray) -> np.ndarray:
        return self._outputs(image)["probability"].astype(np.float32)

    def labels(self, image: np.ndarray) -> np.ndarray:
        return self._outputs(image)["labels"][..., 0].astype(np.uint8)


def _saved_model_segmenter(path: Path, card: dict) -> GraphSegmenter:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return GraphSegmenter(lambda images: {k: v.numpy() for k, v in signature(images=images).items()},
                          card["classes"], card["ndim"], str(path))


def _rest_segmenter(url: str) -> GraphSegmenter:
    """A thin-structure model served over TF Serving's REST API (its signature tells the
    dimensionality and the classes)."""
    from keras_skel.serving.client import RestClient

    client = RestClient(url)
    inputs, outputs = client.signature("serving_default")
    channels = outputs["probability"].shape[-1]
    return GraphSegmenter(lambda images: client.predict(inputs=images, signature_name="serving_default"),
                          1 if channels == 1 else channels - 1, len(inputs["images"].shape) - 2, client.base_url)


class TFLiteSegmenter(ThinSegmenter):
    """Label maps from a 2-D thin-structure `.tflite` model (fixed input size) run by LiteRT.

    Images up to its size are padded with zeros and cropped back; larger ones run as
    overlapping tiles whose probabilities are stitched (`inference.tiled_probability`) and
    labelled by the same rule as the graph. Near the padded border the network sees zeros where
    the Keras model would see its own padding, so labels there can differ slightly from the
    SavedModel's."""

    def __init__(self, path: str | Path, card: dict, overlap: int = 32):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.model = None
        self.classes = int(card["classes"])
        self.ndim = 2
        self.stride = 1
        self.name = str(path)
        self.overlap = overlap
        try:
            self._runner = Interpreter(model_path=str(self.path)).get_signature_runner("serving_default")
        except (ValueError, RuntimeError) as err:
            raise ModelNotFoundError(f"{self.path} is not a keras-skel TFLite model: {err}") from None
        self.size = tuple(int(d) for d in self._runner.get_input_details()["images"]["shape"][1:3])

    def _run(self, tile: np.ndarray) -> dict:
        return {k: v[0] for k, v in self._runner(images=np.asarray(tile, np.float32)[None, :, :, None]).items()}

    def probability(self, image: np.ndarray) -> np.ndarray:
        from keras_skel.inference import tiled_probability

        image = np.asarray(image, np.float32)
        if image.ndim != 2:
            raise DataError(f"{self.name} segments 2-D images; got an array of shape {image.shape}")
        return tiled_probability(lambda tile: self._run(tile)["probability"], image, self.size, self.overlap)


def load_segmenter(path: str | Path) -> ThinSegmenter:
    """A `ThinSegmenter` from a thin run directory (`best.keras` + `model.json`), a `.keras`
    file beside such a `model.json`, an exported SavedModel (folder, model folder or shipped
    name), a 2-D `.tflite` file exported beside one, or a TF Serving REST URL
    (`http://HOST:PORT/v1/models/NAME`)."""
    from keras_skel.inference import load_keras_model, model_record, resolve_model
    from keras_skel.serving.client import served_task

    if str(path).startswith(("http://", "https://")):
        if served_task(str(path)) != "thin":
            raise ConfigError(f"{path} serves no thin-structure model: its serving_default has no labels output")
        return _rest_segmenter(str(path))
    try:
        kind, file = resolve_model(path)
    except ModelNotFoundError:
        raise ModelNotFoundError(f"{path} is not a thin-structure model: expected a run with best.keras and "
                                 "model.json (made by `keras-skel train` with a thin recipe), its .keras file, or "
                                 "its export (SavedModel folder, .tflite file)") from None
    info = model_record(kind, file)
    if not info:
        raise ModelNotFoundError(f"{path}: found {file} but no model.json or model card beside it, so not a "
                                 "finished thin-structure run or export")
    if info.get("task") != "thin":
        raise ConfigError(f"{path} is a {info.get('task') or 'binary-shape'!s} model, not a thin-structure one")
    if kind == "saved_model":
        return _saved_model_segmenter(file, info)
    if kind == "tflite":
        return TFLiteSegmenter(file, info)
    model = load_keras_model(file)
    return ThinSegmenter(model, info["classes"], info["stride"], name=str(path))


def evaluate_segmentation(segmenter: ThinSegmenter, samples: Sequence[tuple[str, np.ndarray, np.ndarray]],
                          progress: bool = False) -> dict:
    """Dice, clDice and Betti errors of `segmenter` on `(id, image, labels)` samples.

    Returns:
        `SegmentationAccumulator.result()` plus `model` and `count`.
    """
    from keras_skel.metrics.topology import SegmentationAccumulator

    acc = SegmentationAccumulator(segmenter.classes)
    for i, (sample_id, image, labels) in enumerate(samples):
        acc.update(segmenter.labels(image), labels, image_id=sample_id)
        if progress and (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(samples)}", flush=True)
    result = acc.result()
    result.update(model=segmenter.name, count=len(samples))
    return result


def evaluate_folder(model: str | Path, data_dir: str | Path, report_dir: str | Path | None = None,
                    overwrite: bool = False, progress: bool = False) -> dict:
    """Scores a thin run on a thin dataset folder (`images/`, `labels/`, `dataset.json`) and
    writes `report.json` to `report_dir` when given (refused over an existing one)."""
    from keras_skel.data.thin import load_thin_folder

    if report_dir is not None and (Path(report_dir) / "report.json").exists() and not overwrite:
        raise DataError(f"{Path(report_dir) / 'report.json'} exists already; pass --overwrite to replace it")
    segmenter = load_segmenter(model)
    info, samples = load_thin_folder(data_dir)
    if int(info["classes"]) != segmenter.classes:
        raise DataError(f"{data_dir}/dataset.json has {info['classes']} class(es); the model {model} "
                        f"segments {segmenter.classes}")
    report = evaluate_segmentation(segmenter, samples, progress)
    report["data"] = str(data_dir)
    if report_dir is not None:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(report_dir) / "report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(Path(report_dir) / "report.json")
    return report


def format_segmentation_report(report: dict) -> str:
    """A few lines: per class and mean Dice, clDice, β0 and β1 errors, pixel precision and recall."""
    lines = [f"{report['model']} on {report.get('data', 'validation')}: {report['count']} samples",
             f"{'class':>6} {'Dice':>7} {'clDice':>7} {'β0 err':>7} {'β1 err':>7} {'prec.':>7} {'recall':>7}"]
    for row in [*report["per_class"], {**report, "class": "mean"}]:
        lines.append(f"{row['class']:>6} {row['dice']:7.4f} {row['cldice']:7.4f} {row['betti0']:7.3f} "
                     f"{row['betti1']:7.3f} {row['precision']:7.3f} {row['recall']:7.3f}")
    return "\n".join(lines)


def read_input(path: Path, ndim: int) -> np.ndarray:
    """An image (2-D: PNG/JPEG/TIFF, grey or colour, 8/16-bit) or a volume (3-D: `.npy`) as
    float32 in 0..1; a clear `DataError` naming the file otherwise."""
    import cv2

    if ndim == 3:
        if path.suffix.lower() != ".npy":
            raise DataError(f"{path}: a 3-D model reads volumes from .npy files [D, H, W]")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot be read as a .npy array ({err})") from None
        if array.ndim != 3:
            raise DataError(f"{path}: found an array of shape {array.shape}; expected a volume [D, H, W]")
    else:
        if not is_image_path(path):
            raise DataError(f"{path}: a 2-D model reads images ({', '.join(IMAGE_SUFFIXES)})")
        array = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DataError(f"{path}: not a readable image")
        if array.ndim == 3:
            array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2GRAY)
    if array.dtype.kind in "ui":
        return array.astype(np.float32) / np.iinfo(array.dtype).max
    if array.dtype.kind == "f" and np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1:
        return array.astype(np.float32)
    raise DataError(f"{path}: expected integer values or floats in [0, 1], got {array.dtype} "
                    f"{float(np.min(array)):g}..{float(np.max(array)):g}")


def _input_files(inputs: Sequence[str | Path], ndim: int) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        found = list_images(item, (".npy",) if ndim == 3 else None)
        files.extend(p for p in found if p not in files)
    stems = [p.stem for p in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise DataError(f"two inputs share the stem {dupes[0]!r}: their outputs would collide")
    return files


def predict_thin_files(model: str | Path, inputs: Sequence[str | Path], out_dir: str | Path,
                       overlay_pictures: bool = False, overwrite: bool = False) -> list[Path]:
    """Label maps of a thin run for image files (2-D) or `.npy` volumes (3-D).

    Writes `OUT/<stem>.png` (8-bit, value = class, 0 = background) for images or
    `OUT/<stem>.npy` (uint8 `[D, H, W]`) for volumes; `overlay_pictures` adds
    `<stem>_overlay.png` (2-D: the image in grey, classes in colour). Existing outputs are
    refused unless `overwrite`.

    Returns:
        The label-map paths written.
    """
    import cv2

    segmenter = load_segmenter(model)
    files = _input_files(inputs, segmenter.ndim)
    out_dir = Path(out_dir)
    suffix = ".npy" if segmenter.ndim == 3 else ".png"
    planned = {f: out_dir / f"{f.stem}{suffix}" for f in files}
    extra = {f: out_dir / f"{f.stem}_overlay.png" for f in files} if overlay_pictures and segmenter.ndim == 2 else {}
    existing = [p for p in [*planned.values(), *extra.values()] if p.exists()]
    if existing and not overwrite:
        raise DataError(f"{existing[0]} exists already; pass --overwrite to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        image = read_input(path, segmenter.ndim)
        labels = segmenter.labels(image)
        target = planned[path]
        tmp = target.with_name(f".{target.name}.tmp")
        if segmenter.ndim == 3:
            with open(tmp, "wb") as fh:
                np.save(fh, labels)
        else:
            tmp.write_bytes(cv2.imencode(".png", labels)[1].tobytes())
        tmp.replace(target)
        written.append(target)
        if path in extra:
            grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
            picture = np.repeat(grey[..., None], 3, axis=-1)
            mask = labels > 0
            picture[mask] = _CLASS_COLOURS[(labels[mask] - 1) % len(_CLASS_COLOURS)]
            cv2.imwrite(str(extra[path]), picture[..., ::-1])
    return written


def measure_pipeline_rate(dataset, batches: int = 10) -> float:
    """Samples per second the input pipeline alone delivers (after one warm-up batch)."""
    iterator = iter(dataset)
    first = next(iterator)
    batch = int(first[0].shape[0])
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def thin_run_record(cfg: Any, run_dir: Path, model, splits, command: str | None) -> tuple[dict, dict]:
    """Scores the best checkpoint of a thin run on its validation samples and returns
    `(model_info, val_scores)` for `model.json` and `metrics.json`."""
    from keras_skel.inference import infer_stride

    segmenter = ThinSegmenter(model, cfg.data.classes, infer_stride(model), name=str(run_dir / "best.keras"))
    scores = evaluate_segmentation(segmenter, splits.val)
    info = dict(task="thin", classes=cfg.data.classes, ndim=len(cfg.data.image_size), stride=segmenter.stride,
                image_size=list(cfg.data.image_size), model=cfg.model.name, data=splits.description,
                command=command)
    return info, scores
