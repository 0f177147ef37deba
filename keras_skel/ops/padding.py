"""Padding to a network's stride and cropping back, as graph ops.

U-Nets accept only sizes divisible by 2^depth; the prediction path pads with background on
the bottom/right and crops the output back, so any H, W works.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["pad_to_multiple", "crop_to"]


def pad_to_multiple(images: tf.Tensor, multiple: int) -> tf.Tensor:
    """Zero-pads `[N, H, W, C]` images at the bottom/right so H and W are multiples of `multiple`.

    Args:
        images: a rank-4 tensor with a static channel dimension.
        multiple: the stride to pad to.

    Returns:
        The padded tensor (channel dimension kept static).

    Example:
        >>> pad_to_multiple(tf.zeros([1, 30, 17, 1]), 16).shape
        TensorShape([1, 32, 32, 1])
    """
    if images.shape.rank != 4:
        raise ValueError(f"pad_to_multiple expects [N, H, W, C], got shape {images.shape}")
    shape = tf.shape(images)
    pad_h = (multiple - shape[1] % multiple) % multiple
    pad_w = (multiple - shape[2] % multiple) % multiple
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
    # A dynamic pad loses the static channel dimension, which blocks TFLite conversion and
    # Keras layers downstream; restore it.
    return tf.reshape(padded, [shape[0], shape[1] + pad_h, shape[2] + pad_w, images.shape[-1]])


def crop_to(images: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Crops `[N, H', W', C]` back to the top-left `[N, height, width, C]`."""
    return images[:, :height, :width, :]
