"""Bilinear resize of a feature map to the spatial size of another, for any input size."""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["ResizeLike"]


@keras.saving.register_keras_serializable(package="keras_skel")
class ResizeLike(layers.Layer):
    """Resizes `x` bilinearly to the height and width of `reference`: `ResizeLike()([x, ref])`.

    Sizes are read at run time, so a model built with `None` height and width serves any
    input size. `keras.ops.image.resize` needs a static size and `UpSampling2D("bilinear")`
    does not trace with dynamic sizes in Keras 3.15, hence `tf.image.resize` (half-pixel
    centres), which converts to the builtin TFLite `RESIZE_BILINEAR`.

    Args:
        interpolation: `bilinear` or `nearest`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> y = ResizeLike()([keras.ops.zeros((1, 4, 4, 2)), keras.ops.zeros((1, 16, 12, 1))])
        >>> tuple(y.shape)
        (1, 16, 12, 2)
    """

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be bilinear or nearest; got {interpolation!r}")
        self.interpolation = interpolation

    def call(self, inputs):
        import tensorflow as tf

        x, reference = inputs
        method = tf.image.ResizeMethod.BILINEAR if self.interpolation == "bilinear" else \
            tf.image.ResizeMethod.NEAREST_NEIGHBOR
        resized = tf.image.resize(x, tf.shape(reference)[1:3], method=method)
        return tf.cast(resized, x.dtype)

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[-1])

    def get_config(self):
        config = super().get_config()
        config.update(interpolation=self.interpolation)
        return config
