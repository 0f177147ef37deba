"""`ShapeInput`: a binary shape → the network input CANet is trained on, as graph ops."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from keras_skel.ops.edt import distance_transform
from keras_skel.ops.holes import fill_holes

__all__ = ["ShapeInput", "INPUT_KINDS"]

# kind → number of output channels.
INPUT_KINDS = {"shape": 1, "distance": 1, "repaired_distance": 1, "shape_distance": 2}


@keras.saving.register_keras_serializable(package="keras_skel")
class ShapeInput(layers.Layer):
    """Maps a binary shape `[N, H, W, 1]` (0..1) to the network input of the chosen kind.

    The input is binarized at 0.5, then:

    - `shape`: the binary shape itself (1 channel);
    - `distance`: its Euclidean distance transform divided by `scale` (1 channel);
    - `repaired_distance`: holes of fewer than `hole_area` pixels (the specks boundary noise
      punches into a shape) are filled first, larger holes (real loops) stay, then the
      distance as above (1 channel; CANet's best input, Table 4 of the paper);
    - `shape_distance`: the shape and its distance (2 channels, in that order).

    The distance is divided by a fixed `scale` in pixels, not by each image's maximum, so a
    pixel gets the same value whichever tile or crop it is seen in. Distances are measured to
    the nearest background pixel inside the image (`keras_skel.ops.distance_transform`; pixels
    outside the image are not background), so zero-padding an image changes the distances of
    a shape that touches its border.

    Pure TensorFlow ops (`distance_transform`, `fill_holes`), so a SavedModel holding the
    layer takes a plain binary image. No weights; not XLA-compilable for the distance kinds
    (data-dependent loops), which `supports_jit` tells `Model.compile`. Output dtype is the
    layer's compute dtype.

    Args:
        kind: one of `shape`, `distance`, `repaired_distance`, `shape_distance`.
        scale: distances are divided by this many pixels (default 32).
        hole_area: `repaired_distance` fills holes with area < `hole_area` pixels.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> square = np.zeros((1, 8, 8, 1), "float32")
        >>> square[0, 1:7, 1:7] = 1
        >>> ShapeInput("distance", scale=1.0)(square)[0, 3, 1:7, 0].numpy()
        array([1., 2., 3., 3., 2., 1.], dtype=float32)

    Reference:
        Huang et al., "Context Attention Network for Skeleton Extraction", CVPR Workshops
        2022 (§3.3, distance transform and repaired distance inputs).
    """

    def __init__(
        self,
        kind: str = "repaired_distance",
        scale: float = 32.0,
        hole_area: int = 16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {kind!r}; choose one of {', '.join(INPUT_KINDS)}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if hole_area < 0:
            raise ValueError(f"hole_area must be >= 0, got {hole_area}")
        self.kind = kind
        self.scale = scale
        self.hole_area = hole_area
        self.supports_jit = kind == "shape"

    @property
    def output_channels(self) -> int:
        return INPUT_KINDS[self.kind]

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] not in (None, 1):
            raise ValueError(f"ShapeInput expects [N, H, W, 1] binary shapes, got shape {input_shape}")
        super().build(input_shape)

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        binary = tf.cast(tf.cast(inputs, tf.float32) > 0.5, tf.float32)
        if self.kind == "shape":
            return tf.cast(binary, self.compute_dtype)
        shape = binary
        if self.kind == "repaired_distance":
            shape = fill_holes(binary, max_area=self.hole_area)
        distance = distance_transform(shape) / tf.constant(self.scale, tf.float32)
        if self.kind == "shape_distance":
            distance = tf.concat([binary, distance], axis=-1)
        return tf.cast(distance, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, scale=self.scale, hole_area=self.hole_area)
        return config
