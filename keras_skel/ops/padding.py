"""Padding to a network's stride and cropping back, as graph ops.

U-Nets accept only sizes divisible by 2^depth; the prediction path pads with background on
the bottom/right (and back, for volumes) and crops the output back, so any size works.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["pad_to_multiple", "crop_to"]


def pad_to_multiple(images: tf.Tensor, multiple: int) -> tf.Tensor:
    """Zero-pads `[N, H, W, C]` images (or `[N, D, H, W, C]` volumes) at the end of every
    spatial axis so each is a multiple of `multiple`.

    Args:
        images: a rank-4 or rank-5 tensor with a static channel dimension.
        multiple: the stride to pad to.

    Returns:
        The padded tensor (channel dimension kept static).

    Example:
        >>> pad_to_multiple(tf.zeros([1, 30, 17, 1]), 16).shape
        TensorShape([1, 32, 32, 1])
    """
    rank = images.shape.rank
    if rank not in (4, 5):
        raise ValueError(f"pad_to_multiple expects [N, H, W, C] or [N, D, H, W, C], got shape {images.shape}")
    shape = tf.shape(images)
    pads = [(multiple - shape[axis] % multiple) % multiple for axis in range(1, rank - 1)]
    padded = tf.pad(images, [[0, 0], *[[0, pad] for pad in pads], [0, 0]])
    # A dynamic pad loses the static channel dimension, which blocks TFLite conversion and
    # Keras layers downstream; restore it.
    return tf.reshape(padded, [shape[0], *[shape[axis] + pad for axis, pad in enumerate(pads, 1)],
                               images.shape[-1]])


def crop_to(images: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Crops `[N, H', W', C]` back to the top-left `[N, height, width, C]`."""
    return images[:, :height, :width, :]
