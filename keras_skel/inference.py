"""Loading any model kind behind one interface, and skeletonizing images with it.

`load(spec)` returns a `Skeletonizer`; `predict`, `evaluate` and the Python API
`keras_skel.skeletonize` use only that interface, so adding a model kind (SavedModel, TFLite,
REST URL) means adding one class and one branch in `load`.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keras_skel.data.targets import skeleton_target
from keras_skel.errors import ConfigError, DataError, ModelNotFoundError
from keras_skel.export.tflite import QUANTIZATIONS

__all__ = ["Prediction", "Skeletonizer", "ClassicalSkeletonizer", "KerasSkeletonizer",
           "SavedModelSkeletonizer", "TFLiteSkeletonizer", "load", "skeletonize", "as_binary",
           "model_search_path", "resolve_model", "model_record", "load_keras_model",
           "find_keras_file", "tiled_probability", "skeleton_from_probability",
           "MODEL_INFO_FILE", "DEFAULT_THRESHOLD"]

MODEL_INFO_FILE = "model.json"
# File-name suffixes of quantized TFLite variants: `<name>_<variant>.tflite`.
TFLITE_VARIANTS = tuple(q for q in QUANTIZATIONS if q != "none")
MODELS_ENV = "KERAS_SKEL_MODELS"
DEFAULT_THRESHOLD = 0.5


def as_binary(image: Any, name: str = "image") -> np.ndarray:
    """A 2-D boolean shape from an array (`[H, W]` or `[H, W, 1]`).

    bool is taken as is. 0/1 arrays of any numeric dtype are masks. Otherwise uint8 / uint16
    are binarized at 50% of their range (as image files are), floats in 0..1 at 0.5.

    Raises:
        DataError: not a 2-D image, or values that fit none of the rules (naming `name`).
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise DataError(f"{name}: expected a 2-D binary image [H, W], got shape {array.shape}")
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{name}: unsupported dtype {array.dtype}; expected bool, integer or float")
    low, high = array.min(), array.max()
    if low >= 0 and high <= 1 and np.issubdtype(array.dtype, np.integer):
        return array > 0
    if array.dtype in (np.uint8, np.uint16):
        return array > np.iinfo(array.dtype).max // 2
    if np.issubdtype(array.dtype, np.floating) and low >= 0 and high <= 1:
        return array > 0.5
    raise DataError(
        f"{name}: values {low}..{high} of dtype {array.dtype} are not a binary image; expected "
        "bool, 0/1 values, uint8/uint16 (binarized at 50%), or floats in 0..1"
    )


@dataclass(frozen=True)
class Prediction:
    """One image's result: the uint8 0/1 skeleton and, for learned models, the probability."""

    skeleton: np.ndarray
    probability: np.ndarray | None = None


class Skeletonizer:
    """Turns binary shapes into 1-px skeletons.

    Subclasses implement `predict`. Attributes: `name` (for reports), `threshold` (None for
    models without one).
    """

    name: str = "skeletonizer"
    threshold: float | None = None

    def predict(self, shape: np.ndarray) -> Prediction:
        """Skeleton (and probability) of a 2-D binary shape."""
        raise NotImplementedError

    def skeletonize(self, shape: np.ndarray) -> np.ndarray:
        """uint8 0/1 skeleton `[H, W]` of a 2-D binary shape."""
        return self.predict(shape).skeleton

    def probability(self, shape: np.ndarray) -> np.ndarray | None:
        """Per-pixel skeleton probability `[H, W]`, or None for non-probabilistic models."""
        return self.predict(shape).probability


class ClassicalSkeletonizer(Skeletonizer):
    """scikit-image `skeletonize` + terminal-branch pruning: the ground-truth rule itself, and
    the baseline every learned model is compared with.

    Args:
        prune_length: terminal branches shorter than this (px) are removed.
    """

    def __init__(self, prune_length: float = 10.0):
        self.prune_length = prune_length
        self.name = "classical"

    def predict(self, shape: np.ndarray) -> Prediction:
        return Prediction(skeleton_target(as_binary(shape), prune_length=self.prune_length))


class KerasSkeletonizer(Skeletonizer):
    """A Keras model mapping shapes to skeleton probabilities, plus its threshold.

    Any H, W: inputs are padded to the model's stride and cropped back inside one
    `tf.function` (`keras_skel.export.graph.probability_of`, the code the SavedModel runs);
    thresholding and thinning are the shared graph ops of `keras_skel.ops.postprocess`.

    Args:
        model: a loaded `keras.Model`.
        threshold: probability threshold.
        stride: sizes the model accepts are multiples of this.
        name: for reports.
        tta: average the 8 D4 transforms (test-time augmentation, 8× the compute).
        prune_length: spur pruning after thinning (`probability_to_skeleton`; 0 = off).
        max_size: the largest side the model runs whole (a CANet's attention memory,
            `canet_max_size`); larger images run as overlapping tiles of that size
            (`tiled_probability`). None = no limit.
        gate_radius: > 0: the model's map gates the ground-truth rule on the input
            (`probability_to_skeleton`).
    """

    def __init__(self, model, threshold: float = DEFAULT_THRESHOLD, stride: int | None = None,
                 name: str = "keras", tta: bool = False, prune_length: int = 0, max_size: int | None = None,
                 gate_radius: int = 0):
        import tensorflow as tf

        from keras_skel.export.graph import probability_of

        self.model = model
        self.threshold = float(threshold)
        self.stride = int(stride or infer_stride(model))
        self.name = name + (" +TTA" if tta else "")
        self.tta = tta
        self.prune_length = int(prune_length)
        self.max_size = None if max_size is None else int(max_size)
        self.gate_radius = int(gate_radius)
        channels = model.input_shape[-1]

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
        def probability_fn(images):
            return probability_of(model, images, self.stride, tta)

        self._probability_fn = probability_fn

    def probability(self, shape: np.ndarray) -> np.ndarray:
        binary = as_binary(shape)

        def run(image):
            return self._probability_fn(image.astype(np.float32)[None, :, :, None]).numpy()[0, :, :, 0]

        if self.max_size is not None and max(binary.shape) > self.max_size:
            return tiled_probability(run, binary, (self.max_size, self.max_size), TILE_OVERLAP)
        return run(binary)

    def predict(self, shape: np.ndarray) -> Prediction:
        probability = self.probability(shape)
        return Prediction(self.skeleton_from_probability(probability, shape=shape), probability)

    def skeleton_from_probability(self, probability: np.ndarray, threshold: float | None = None,
                                  shape: np.ndarray | None = None) -> np.ndarray:
        """Threshold + thinning (+ pruning, + gating with the input `shape`) of a probability
        map `[H, W]` (the graph ops)."""
        return skeleton_from_probability(probability, self.threshold if threshold is None else threshold,
                                         self.prune_length, self.gate_radius, shape)

    def choose_threshold(self, probabilities, shapes, skeletons, thresholds, tolerance: float = 0.0):
        """`(threshold, table)`: the candidate whose skeletons (this skeletonizer's post-processing
        of each probability map, gated with its input shape) score the best dataset-level F1 against
        `skeletons` at `tolerance` px (`metrics.threshold.search_threshold`)."""
        from keras_skel.metrics.threshold import search_threshold

        return search_threshold(list(zip(probabilities, shapes)), skeletons, thresholds,
                                lambda pair, t: self.skeleton_from_probability(pair[0], t, shape=pair[1]),
                                tolerance)


@functools.lru_cache(maxsize=8)
def _skeleton_graph(prune_length: int, gate_radius: int = 0):
    """The post-processing graph, traced once per process and setting for every image size;
    called with `(probability, threshold)`, or `(probability, threshold, shape)` when gated."""
    import tensorflow as tf

    from keras_skel.ops.postprocess import probability_to_skeleton

    image = tf.TensorSpec([None, None, None, 1], tf.float32)
    if gate_radius:
        return tf.function(
            lambda probability, threshold, shape: probability_to_skeleton(probability, threshold, prune_length,
                                                                          gate_radius, shape),
            input_signature=[image, tf.TensorSpec([], tf.float32), image], autograph=False)
    return tf.function(
        lambda probability, threshold: probability_to_skeleton(probability, threshold, prune_length),
        input_signature=[image, tf.TensorSpec([], tf.float32)],
        autograph=False,
    )


def skeleton_from_probability(probability: np.ndarray, threshold: float, prune_length: int = 0,
                              gate_radius: int = 0, shape: np.ndarray | None = None) -> np.ndarray:
    """uint8 skeleton `[H, W]` of a probability map `[H, W]`: `p >= threshold`, then thinning
    and, with `prune_length`, spur pruning (`keras_skel.ops.postprocess`, the ops every
    exported graph contains). Used wherever a probability is re-thresholded outside a model:
    Keras models, a threshold that differs from a SavedModel's / TFLite model's baked one,
    stitched TFLite tiles, REST answers. With `gate_radius`, `shape` (the binary input
    `[H, W]`) is gated by the map (`probability_to_skeleton`)."""
    batch = np.asarray(probability, np.float32)[None, :, :, None]
    if gate_radius:
        if shape is None:
            raise ValueError("a gated post-processing (gate_radius > 0) needs the input shape")
        image = as_binary(shape).astype(np.float32)[None, :, :, None]
        graph = _skeleton_graph(int(prune_length), int(gate_radius))
        return graph(batch, np.float32(threshold), image).numpy()[0, :, :, 0]
    return _skeleton_graph(int(prune_length))(batch, np.float32(threshold)).numpy()[0, :, :, 0]


class SavedModelSkeletonizer(Skeletonizer):
    """An exported SavedModel (`keras-skel export`), called through its `serving_default`
    signature: threshold and thinning are baked into the graph.

    Args:
        path: the version folder (holding `saved_model.pb`).
        threshold: when given and different from the baked-in one, the skeleton is recomputed
            from the probability output with that threshold (same graph ops).
    """

    def __init__(self, path: str | Path, threshold: float | None = None):
        import tensorflow as tf

        from keras_skel.export.saved_model import read_model_card

        self.path = Path(path)
        try:
            loaded = tf.saved_model.load(str(self.path))
            self._fn = loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError) as err:
            raise ModelNotFoundError(f"{self.path} is not a keras-skel SavedModel: {err}") from None
        self._loaded = loaded  # keeps the variables alive
        self.card = read_model_card(self.path)
        self._baked = self.card.get("threshold")
        self.threshold = self._baked if threshold is None else float(threshold)
        self.prune_length = int(self.card.get("prune_length", 0))
        self.max_size = self.card.get("max_size")
        self.gate_radius = int(self.card.get("gate_radius", 0))
        self.name = str(self.path)

    def predict(self, shape: np.ndarray) -> Prediction:
        binary = as_binary(shape)
        if self.max_size is not None and max(binary.shape) > self.max_size:
            # Too large to run whole (attention memory): overlapping tiles, post-processed here.
            probability = tiled_probability(
                lambda tile: self._fn(images=tile.astype(np.float32)[None, :, :, None])["probability"].numpy()[
                    0, :, :, 0],
                binary, (self.max_size, self.max_size), TILE_OVERLAP)
            return Prediction(skeleton_from_probability(probability, self.threshold, self.prune_length,
                                                        self.gate_radius, binary), probability)
        out = self._fn(images=binary.astype(np.float32)[None, :, :, None])
        probability = out["probability"].numpy()[0, :, :, 0]
        if self.threshold != self._baked:
            skeleton = skeleton_from_probability(probability, self.threshold, self.prune_length, self.gate_radius,
                                                 binary)
        else:
            skeleton = out["skeleton"].numpy()[0, :, :, 0]
        return Prediction(skeleton, probability)


class TFLiteSkeletonizer(Skeletonizer):
    """A `.tflite` model (fixed input size) run by the LiteRT interpreter.

    Images up to the model's size are padded with background, run whole (post-processing in
    the TFLite graph) and cropped back, which is exact. Larger images run as overlapping tiles
    whose probability maps are stitched (each tile keeps its centre), then thresholded and
    thinned by the shared graph ops.

    Args:
        path: the `.tflite` file.
        threshold: the model's threshold (read from the model card of the SavedModel exported
            beside it when not given; used only for tiled inputs).
        overlap: tile overlap in pixels for large inputs.
    """

    def __init__(self, path: str | Path, threshold: float | None = None, overlap: int = 32):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            self._interpreter = Interpreter(model_path=str(self.path))
            self._runner = self._interpreter.get_signature_runner("serving_default")
        except (ValueError, RuntimeError) as err:
            raise ModelNotFoundError(f"{self.path} is not a keras-skel TFLite model: {err}") from None
        details = self._runner.get_input_details().get("images")
        if details is None:
            raise ModelNotFoundError(f"{self.path} has no 'images' input in its serving_default signature: "
                                     "not a keras-skel TFLite model")
        self.size = tuple(int(d) for d in details["shape"][1:3])
        card = _sibling_card(self.path)
        self._baked = card.get("threshold")
        self.prune_length = int(card.get("prune_length", 0))
        self.gate_radius = int(card.get("gate_radius", 0))
        self.threshold = threshold if threshold is not None else self._baked
        self.overlap = overlap
        self.name = str(self.path)

    def _run(self, tile: np.ndarray) -> dict:
        out = self._runner(images=tile[None, :, :, None].astype(np.float32))
        return {k: v[0, :, :, 0] for k, v in out.items()}

    def predict(self, shape: np.ndarray) -> Prediction:
        binary = as_binary(shape)
        h, w = binary.shape
        th, tw = self.size
        if h <= th and w <= tw:
            padded = np.zeros((th, tw), bool)
            padded[:h, :w] = binary
            out = self._run(padded)
            probability = out["probability"][:h, :w]
            if self.threshold == self._baked or self.threshold is None:
                return Prediction(out["skeleton"][:h, :w].astype(np.uint8), probability)
            return Prediction(skeleton_from_probability(probability, self.threshold, self.prune_length,
                                                        self.gate_radius, binary), probability)
        if self.threshold is None:
            raise ConfigError(f"{self.path}: images larger than {th}x{tw} run tiled and need the threshold; "
                              "pass threshold= (it is in the model card of the SavedModel exported with it)")
        probability = tiled_probability(lambda tile: self._run(tile)["probability"], binary, self.size, self.overlap)
        return Prediction(skeleton_from_probability(probability, self.threshold, self.prune_length,
                                                    self.gate_radius, binary), probability)

TILE_OVERLAP = 32  # px each tile shares with its neighbours (it keeps its centre)


def tiled_probability(fn, binary: np.ndarray, tile: tuple[int, int], overlap: int) -> np.ndarray:
    """Runs `fn` (a `[th, tw]` tile of `binary`, an image `[H, W]` of any dtype → probability
    `[th, tw]` or `[th, tw, C]`) over overlapping tiles, zero-padded to at least one tile, and
    stitches the result: each output pixel comes from the tile where it lies farthest from a
    cut edge (tiles keep their centres), so no seam falls inside a tile's border zone."""
    h, w = binary.shape
    th, tw = tile
    overlap = min(overlap, th // 4, tw // 4)
    step_h, step_w = th - 2 * overlap, tw - 2 * overlap
    padded = np.zeros((max(h, th), max(w, tw)), binary.dtype)
    padded[:h, :w] = binary
    out = None

    def starts(total, size, step):
        positions = list(range(0, max(total - size, 0) + 1, step))
        if positions[-1] != total - size:
            positions.append(total - size)
        return positions

    ys, xs = starts(padded.shape[0], th, step_h), starts(padded.shape[1], tw, step_w)
    for iy, y in enumerate(ys):
        for ix, x in enumerate(xs):
            prob = np.asarray(fn(padded[y:y + th, x:x + tw]), np.float32)
            if out is None:
                out = np.zeros(padded.shape + prob.shape[2:], np.float32)
            # The region this tile owns: from halfway into the overlap with the previous tile
            # to halfway into the overlap with the next one.
            y0 = 0 if iy == 0 else (ys[iy - 1] + th + y) // 2 - y
            y1 = th if iy == len(ys) - 1 else (y + th + ys[iy + 1]) // 2 - y
            x0 = 0 if ix == 0 else (xs[ix - 1] + tw + x) // 2 - x
            x1 = tw if ix == len(xs) - 1 else (x + tw + xs[ix + 1]) // 2 - x
            out[y + y0:y + y1, x + x0:x + x1] = prob[y0:y1, x0:x1]
    return out[:h, :w]


def _sibling_card(path: Path) -> dict:
    """The model card of the SavedModel exported together with a `.tflite` / `.keras` file
    (`<dir>/<name>[_<variant>].tflite` ↔ `<dir>/<name>/<version>/`): the newest version whose
    card lists the file, else the newest version; {} if there is none."""
    from keras_skel.export.layout import versions
    from keras_skel.export.saved_model import read_model_card

    stem = path.stem
    for variant in TFLITE_VARIANTS:
        if stem.endswith(f"_{variant}"):
            stem = stem[: -len(variant) - 1]
    cards = [read_model_card(path.parent / stem / str(v)) for v in reversed(versions(path.parent / stem))]
    for card in cards:
        if path.name in card.get("tflite", {}):
            return card
    return cards[0] if cards else {}


def infer_stride(model) -> int:
    """The input-size multiple a model needs: product of its pooling strides, nested models
    included (1 if none)."""
    import keras

    stride = 1
    for layer in model.layers:
        if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.MaxPooling3D,
                              keras.layers.AveragePooling3D)):
            stride *= int(layer.strides[0])
        elif isinstance(layer, keras.Model):  # a nested backbone (DeepFlux's VGG16)
            stride *= infer_stride(layer)
    return stride


def read_model_info(folder: Path) -> dict:
    """The `model.json` a training run writes next to its `.keras` model ({} if absent)."""
    path = Path(folder) / MODEL_INFO_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not a readable JSON model description: {err}") from None


def load_keras_model(path: str | Path):
    """The network of a `.keras` file, ready to predict: the project's layers registered, not
    compiled, and a deep-supervised model reduced to its full-resolution output
    (`probability_model`). Raises `ModelNotFoundError` naming the file if it cannot be loaded."""
    import keras

    import keras_skel.layers  # noqa: F401  (registers custom layers for deserialization)
    import keras_skel.losses  # noqa: F401
    from keras_skel.models.canet import probability_model

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a bad archive
        raise ModelNotFoundError(f"{path} could not be loaded as a Keras model: {err}") from None
    return probability_model(model)


def _load_keras(path: Path, threshold: float | None, tta: bool = False) -> KerasSkeletonizer:
    model = load_keras_model(path)
    info = model_record("keras", path)
    if threshold is None:
        threshold = info.get("threshold")
        if threshold is None:
            warnings.warn(f"no {MODEL_INFO_FILE} next to {path}: using threshold {DEFAULT_THRESHOLD}",
                          stacklevel=3)
            threshold = DEFAULT_THRESHOLD
    # A run whose threshold was chosen with TTA (eval.tta) runs it always.
    tta = tta or bool(info.get("tta"))
    return KerasSkeletonizer(model, threshold, info.get("stride"), name=str(path), tta=tta,
                             prune_length=int(info.get("prune_length", 0)), max_size=info.get("max_size"),
                             gate_radius=int(info.get("gate_radius", 0)))


def model_search_path() -> list[Path]:
    """Folders searched for shipped model names: `$KERAS_SKEL_MODELS` (os.pathsep-separated),
    `./saved_models`, then the `saved_models/` of this checkout."""
    roots = [Path(p) for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    roots.append(Path("saved_models"))
    roots.append(Path(__file__).resolve().parent.parent / "saved_models")
    unique = []
    for root in roots:
        if root.resolve() not in [u.resolve() for u in unique]:
            unique.append(root)
    return unique


def _latest_version(model_dir: Path) -> Path | None:
    from keras_skel.export.layout import versions

    found = versions(model_dir)
    return model_dir / str(found[-1]) if found else None


def _is_keras_spec(spec: Any) -> bool:
    if hasattr(spec, "predict") and hasattr(spec, "layers"):
        return True
    from keras_skel.ensemble import is_ensemble_dir

    path = Path(str(spec))
    return ((path.is_dir() and ((path / "best.keras").is_file() or is_ensemble_dir(path)))
            or (path.is_file() and path.suffix == ".keras"))


def find_keras_file(spec: str | Path) -> Path:
    """The `.keras` file behind a run dir, a `.keras` path, or a shipped model's name."""
    path = Path(str(spec))
    if path.is_dir() and (path / "best.keras").is_file():
        return path / "best.keras"
    if path.is_file() and path.suffix == ".keras":
        return path
    if len(path.parts) == 1:
        for root in model_search_path():
            if (root / f"{path.name}.keras").is_file():
                return root / f"{path.name}.keras"
    raise ModelNotFoundError(f"no Keras model found for {str(spec)!r}: expected a training run directory, "
                             "a .keras file, or a shipped model's name with saved_models/<name>.keras")


def load(spec: Any = "classical", threshold: float | None = None, tta: bool = False) -> Skeletonizer:
    """Loads a model for skeletonization.

    Args:
        spec: `"classical"`; a training run directory (its `best.keras` and threshold); a
            folds directory of `keras-skel train --folds K` (the averaged ensemble); a
            `.keras` file; an exported SavedModel (a version folder, or a model folder whose
            newest version is used); a `.tflite` file; a TF Serving REST URL
            (`http://host:8501/v1/models/NAME`); the name of a shipped model (looked up in
            `model_search_path()`); a `keras.Model`; or a `Skeletonizer` (returned as is).
        threshold: overrides the stored threshold (Keras models; TFLite tiling).
        tta: D4 test-time augmentation, for Keras models (run dirs, `.keras`); exported models
            have it baked in at export (`keras-skel export --tta`).

    Returns:
        A `Skeletonizer` (for a natural-image model, a `detection.SkeletonDetector`; for a
        SkeletonNet, a `skeletal_points.SkeletalPointsPredictor`, whose `predict(image)` gives
        points, labels and the skeletal volume).

    Raises:
        ModelNotFoundError: the spec does not resolve to a model.

    Example:
        >>> model = load("classical")
        >>> model.skeletonize(np.ones((5, 9), bool)).shape
        (5, 9)
    """
    if tta and not _is_keras_spec(spec):
        raise ConfigError(f"test-time augmentation applies to Keras models (a run dir or a .keras file), not "
                          f"{spec!r}; export a model with --tta to bake it into a SavedModel / TFLite model")
    if isinstance(spec, Skeletonizer):
        if threshold is not None and threshold != spec.threshold:
            raise ConfigError(f"{spec.name} is already loaded with threshold {spec.threshold}; pass "
                              "threshold= to keras_skel.load() instead")
        return spec
    if spec == "classical":
        if threshold is not None:
            raise ConfigError("the classical baseline has no probability threshold; drop --threshold")
        return ClassicalSkeletonizer()
    if hasattr(spec, "predict") and hasattr(spec, "layers"):
        from keras_skel.models.canet import probability_model

        return KerasSkeletonizer(probability_model(spec), DEFAULT_THRESHOLD if threshold is None else threshold,
                                 tta=tta)
    text = str(spec)
    from keras_skel.detection import SkeletonDetector, load_detector, model_task

    if isinstance(spec, SkeletonDetector):
        return spec
    task = model_task(spec)
    if task == "natural":
        if tta:
            raise ConfigError("a natural-image (DeepFlux) run chooses test-time augmentation at training, with its λ: "
                              "`keras-skel train RECIPE --out RUN --reselect --set eval.tta=true`")
        return load_detector(spec, threshold)
    if task == "volumes":
        if tta or threshold is not None:
            raise ConfigError(f"{spec} is a SkeletonNet (task volumes): no threshold override or test-time "
                              "augmentation (its volume threshold is the one chosen on validation)")
        from keras_skel.skeletal_points import load_points_predictor

        return load_points_predictor(spec)
    if text.startswith(("http://", "https://")):
        from keras_skel.serving.client import RestSkeletonizer

        return RestSkeletonizer(text, threshold=threshold)
    kind, path = resolve_model(spec)
    if kind == "keras":
        return _load_keras(path, threshold, tta)
    if kind == "ensemble":
        from keras_skel.ensemble import load_ensemble

        model, info = load_ensemble(path)
        return KerasSkeletonizer(model, info["threshold"] if threshold is None else threshold, info["stride"],
                                 name=str(path), tta=tta or info["tta"], prune_length=info["prune_length"],
                                 max_size=info.get("max_size"), gate_radius=info.get("gate_radius", 0))
    if kind == "tflite":
        return TFLiteSkeletonizer(path, threshold)
    return SavedModelSkeletonizer(path, threshold)


def resolve_model(spec: str | os.PathLike) -> tuple[str, Path]:
    """Where a model spec on disk points: `(kind, path)` with kind `keras` (path: a run's
    `best.keras` or a `.keras` file), `ensemble` (a `train --folds` directory), `saved_model`
    (a version folder: the newest one of a model folder) or `tflite`. A bare name is looked up
    in `model_search_path()` (newest SavedModel version, else `<name>.tflite`).

    Raises:
        ModelNotFoundError: the spec names no model.
    """
    text = str(spec)
    path = Path(text)
    if path.is_dir() and (path / "best.keras").is_file():
        return "keras", path / "best.keras"
    from keras_skel.ensemble import is_ensemble_dir

    if path.is_dir() and is_ensemble_dir(path):
        return "ensemble", path
    if path.is_file() and path.suffix == ".keras":
        return "keras", path
    if path.is_file() and path.suffix == ".tflite":
        return "tflite", path
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "saved_model", path
    if path.is_dir() and _latest_version(path) is not None:
        return "saved_model", _latest_version(path)
    if path.is_dir():
        raise ModelNotFoundError(
            f"{path} is a folder but not a model: expected a training run directory (with "
            "best.keras), a SavedModel (with saved_model.pb) or a model folder with numbered versions"
        )
    if len(path.parts) == 1:
        for root in model_search_path():
            latest = _latest_version(root / text)
            if latest is not None:
                return "saved_model", latest
            if (root / f"{text}.tflite").is_file():
                return "tflite", root / f"{text}.tflite"
    searched = ", ".join(str(r) for r in model_search_path())
    raise ModelNotFoundError(
        f"model {text!r} not found: expected 'classical', a training run directory, a .keras "
        f"file, a SavedModel folder, a .tflite file, an http(s):// TF Serving URL, or the name of "
        f"a shipped model (searched {searched}; set ${MODELS_ENV} to add folders; make one with "
        "`keras-skel train unet_shapes --out runs/unet` then `keras-skel export runs/unet --name NAME`)"
    )


def model_record(kind: str, path: Path) -> dict:
    """The record of a resolved model (`resolve_model`): a run's `model.json` (else the card of
    the SavedModel shipped beside the `.keras` file), a SavedModel's card, an ensemble's
    description, or for a `.tflite` file the card of its SavedModel twin ({} if none)."""
    if kind == "keras":
        return read_model_info(path.parent) or _sibling_card(path)
    if kind == "saved_model":
        from keras_skel.export.saved_model import read_model_card

        return read_model_card(path)
    if kind == "ensemble":
        from keras_skel.ensemble import ensemble_info

        return ensemble_info(path)
    return _sibling_card(path)


def skeletonize(image: Any, model: Any = "classical", threshold: float | None = None) -> np.ndarray:
    """Skeleton of a binary shape (or, with a natural-image model, of the object in an image).

    Args:
        image: 2-D array: bool; 0/1 values of any dtype; uint8 / uint16 binarized at 50% of
            their range; floats in 0..1 at 0.5 (anything else is refused, see `as_binary`).
            For a natural-image (DeepFlux) model: an RGB image `(H, W, 3)`, uint8 or floats
            in 0..1.
        model: anything `load` accepts; load once and pass the `Skeletonizer` when calling
            this in a loop.
        threshold: overrides the model's threshold.

    Returns:
        uint8 0/1 array of the same height and width.

    Example:
        >>> import keras_skel
        >>> shape = np.zeros((32, 64), bool); shape[10:22, 5:60] = True
        >>> keras_skel.skeletonize(shape).sum() > 0
        True
    """
    loaded = load(model, threshold)
    if getattr(loaded, "task", None) == "natural":  # a DeepFlux model takes the RGB image itself
        return loaded.skeletonize(image)
    return loaded.skeletonize(as_binary(image))
