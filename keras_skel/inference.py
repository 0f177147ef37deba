"""Loading any model kind behind one interface, and skeletonizing images with it.

`load(spec)` returns a `Skeletonizer`; `predict`, `evaluate` and the Python API
`keras_skel.skeletonize` use only that interface, so adding a model kind (SavedModel, TFLite,
REST URL) means adding one class and one branch in `load`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from keras_skel.data.targets import skeleton_target
from keras_skel.errors import DataError, ModelNotFoundError

__all__ = ["Skeletonizer", "ClassicalSkeletonizer", "KerasSkeletonizer", "load", "skeletonize",
           "as_binary", "MODEL_INFO_FILE", "DEFAULT_THRESHOLD"]

MODEL_INFO_FILE = "model.json"
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


class Skeletonizer:
    """Turns binary shapes into 1-px skeletons.

    Attributes:
        name: what the model is (for reports).
        threshold: the probability threshold, or None for models without one.
    """

    name: str = "skeletonizer"
    threshold: float | None = None

    def probability(self, shape: np.ndarray) -> np.ndarray | None:
        """Per-pixel skeleton probability `[H, W]`, or None for non-probabilistic models."""
        return None

    def skeletonize(self, shape: np.ndarray) -> np.ndarray:
        """uint8 0/1 skeleton `[H, W]` of a 2-D binary shape."""
        raise NotImplementedError


class ClassicalSkeletonizer(Skeletonizer):
    """scikit-image `skeletonize` + terminal-branch pruning: the ground-truth rule itself, and
    the baseline every learned model is compared with.

    Args:
        prune_length: terminal branches shorter than this (px) are removed.
    """

    def __init__(self, prune_length: float = 10.0):
        self.prune_length = prune_length
        self.name = "classical"

    def skeletonize(self, shape: np.ndarray) -> np.ndarray:
        return skeleton_target(as_binary(shape), prune_length=self.prune_length)


class KerasSkeletonizer(Skeletonizer):
    """A Keras model mapping shapes to skeleton probabilities, plus its threshold.

    Any H, W: inputs are padded to the model's stride and cropped back inside one
    `tf.function`; thresholding and thinning are the shared graph ops of
    `keras_skel.ops.postprocess`.

    Args:
        model: a loaded `keras.Model`.
        threshold: probability threshold.
        stride: sizes the model accepts are multiples of this.
        name: for reports.
    """

    def __init__(self, model, threshold: float = DEFAULT_THRESHOLD, stride: int | None = None,
                 name: str = "keras"):
        import tensorflow as tf

        from keras_skel.ops.padding import crop_to, pad_to_multiple
        from keras_skel.ops.postprocess import probability_to_skeleton

        self.model = model
        self.threshold = float(threshold)
        self.stride = int(stride or infer_stride(model))
        self.name = name
        channels = model.input_shape[-1]

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
        def probability_fn(images):
            shape = tf.shape(images)
            prob = model(pad_to_multiple(images, self.stride), training=False)
            return crop_to(tf.cast(prob, tf.float32), shape[1], shape[2])

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32),
                                      tf.TensorSpec([], tf.float32)])
        def skeleton_fn(probability, threshold):
            return probability_to_skeleton(probability, threshold)

        self._probability_fn = probability_fn
        self._skeleton_fn = skeleton_fn

    def probability(self, shape: np.ndarray) -> np.ndarray:
        images = as_binary(shape).astype(np.float32)[None, :, :, None]
        return self._probability_fn(images).numpy()[0, :, :, 0]

    def skeleton_from_probability(self, probability: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Threshold + thinning of a probability map `[H, W]` (the graph ops)."""
        t = self.threshold if threshold is None else threshold
        return self._skeleton_fn(probability[None, :, :, None].astype(np.float32), np.float32(t)).numpy()[0, :, :, 0]

    def skeletonize(self, shape: np.ndarray) -> np.ndarray:
        return self.skeleton_from_probability(self.probability(shape))


def infer_stride(model) -> int:
    """The input-size multiple a model needs: product of its pooling strides (1 if none)."""
    import keras

    stride = 1
    for layer in model.layers:
        if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
            stride *= int(layer.strides[0])
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


def _load_keras(path: Path, threshold: float | None) -> KerasSkeletonizer:
    import keras

    import keras_skel.layers  # noqa: F401  (registers custom layers for deserialization)
    import keras_skel.losses  # noqa: F401

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a bad archive
        raise ModelNotFoundError(f"{path} could not be loaded as a Keras model: {err}") from None
    info = read_model_info(path.parent)
    if threshold is None:
        threshold = info.get("threshold")
        if threshold is None:
            warnings.warn(f"no {MODEL_INFO_FILE} next to {path}: using threshold {DEFAULT_THRESHOLD}",
                          stacklevel=3)
            threshold = DEFAULT_THRESHOLD
    return KerasSkeletonizer(model, threshold, info.get("stride"), name=str(path))


def load(spec: Any = "classical", threshold: float | None = None) -> Skeletonizer:
    """Loads a model for skeletonization.

    Args:
        spec: `"classical"`; a training run directory (uses its `best.keras` and stored
            threshold); a `.keras` file; a `keras.Model`; or a `Skeletonizer` (returned as is).
        threshold: overrides the stored threshold.

    Returns:
        A `Skeletonizer`.

    Raises:
        ModelNotFoundError: the spec does not resolve to a model.

    Example:
        >>> model = load("classical")
        >>> model.skeletonize(np.ones((5, 9), bool)).shape
        (5, 9)
    """
    if isinstance(spec, Skeletonizer):
        return spec
    if spec == "classical":
        return ClassicalSkeletonizer()
    if hasattr(spec, "predict") and hasattr(spec, "layers"):
        return KerasSkeletonizer(spec, DEFAULT_THRESHOLD if threshold is None else threshold)
    path = Path(str(spec))
    if path.is_dir() and (path / "best.keras").is_file():
        return _load_keras(path / "best.keras", threshold)
    if path.is_file() and path.suffix == ".keras":
        return _load_keras(path, threshold)
    if path.is_dir():
        raise ModelNotFoundError(
            f"{path} is a folder without best.keras: expected a training run directory "
            "(made by `keras-skel train`), a .keras file, or 'classical'"
        )
    raise ModelNotFoundError(
        f"model {spec!r} not found: expected 'classical', a training run directory, or a "
        ".keras file (train one with `keras-skel train unet_shapes`)"
    )


def skeletonize(image: Any, model: Any = "classical", threshold: float | None = None) -> np.ndarray:
    """Skeleton of a binary shape.

    Args:
        image: 2-D array (bool; integers binarized at 50% of their range; floats at 0.5).
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
    return load(model, threshold).skeletonize(as_binary(image))
