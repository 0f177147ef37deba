"""Binary morphology with a disk as TensorFlow graph ops, exact vs `scipy.ndimage`.

Dilation and erosion are a `conv2d` of the 0/1 mask with a constant disk kernel followed by
a threshold: a pixel of the dilation is foreground when the disk centred on it covers at least
one foreground pixel (sum > 0), a pixel of the erosion when the disk covers only foreground
pixels (sum == number of disk pixels). 'SAME' zero padding makes everything outside the image
background, which is `scipy.ndimage`'s default (``border_value=0``) for both operations. The
ops embed in a SavedModel and convert to TFLite builtin ops (CONV_2D, comparisons, casts),
unlike `tf.nn.dilation2d` / `tf.nn.erosion2d`, which need the Flex delegate.

Borders, exactly:

- `binary_dilation(x, r) == scipy.ndimage.binary_dilation(x, structure=disk(r))`.
- `binary_erosion(x, r) == scipy.ndimage.binary_erosion(x, structure=disk(r))`: a foreground
  pixel closer than `r` to the image edge (in the disk's sense) is eroded, because the outside
  counts as background. Erosion is therefore *not* ``NOT dilation(NOT x)`` near the edge (that
  complement form would treat the outside as foreground).
- `binary_closing(x, r) == binary_erosion(binary_dilation(x, r), r)`, both with the outside as
  background. That is also exactly what `scipy.ndimage.binary_closing` computes (scipy 1.17
  composes its dilation and erosion with the same ``border_value=0``; it pads nothing). One
  consequence: closing is not extensive at the edge — foreground pixels within `r` of the edge
  can disappear (a full image closes to a full image minus a border of width `r`).
  `skimage.morphology.closing` / ``binary_closing`` (default ``mode='ignore'``) differ there:
  their erosion treats the outside as foreground.
- `binary_opening(x, r) == binary_dilation(binary_erosion(x, r), r) ==
  scipy.ndimage.binary_opening(x, structure=disk(r))`.

Every input rank — `[H, W]`, `[N, H, W]`, `[N, H, W, 1]` — returns a uint8 0/1 tensor of the
same shape; the radius is a Python int fixed at trace time.

Reference:
    P. Soille, "Morphological Image Analysis: Principles and Applications", 2nd ed.,
    Springer 2003, chapters 3 (erosion, dilation) and 4 (opening, closing).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_skel.ops.masks import foreground_nhwc, restore_rank

__all__ = ["disk", "binary_dilation", "binary_erosion", "binary_closing", "binary_opening", "dilate_nhwc", "erode_nhwc"]


def disk(radius: int) -> np.ndarray:
    """Disk structuring element, identical to `skimage.morphology.disk(radius)`.

    The pixels whose centre lies within Euclidean distance `radius` of the centre pixel.

    Args:
        radius: non-negative int.

    Returns:
        uint8 array of 0/1 with shape `(2 * radius + 1, 2 * radius + 1)`.

    Raises:
        ValueError: if `radius` is not a non-negative int.

    Example:
        >>> disk(1)
        array([[0, 1, 0],
               [1, 1, 1],
               [0, 1, 0]], dtype=uint8)
    """
    radius = _check_radius(radius)
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return np.array(x**2 + y**2 <= radius**2, dtype=np.uint8)


def _check_radius(radius: int) -> int:
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, np.integer)):
        raise ValueError(f"radius must be a non-negative int; got {radius!r}")
    if radius < 0:
        raise ValueError(f"radius must be a non-negative int; got {radius}")
    return int(radius)


def _disk_sum(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Number of foreground pixels under the disk centred on each pixel (outside = 0)."""
    kernel = tf.constant(disk(radius).astype(np.float32)[:, :, None, None])
    return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")


# Thresholds sit half-way between integers: a float conv is not guaranteed exact (Winograd
# algorithms, or TF32 on GPUs, can add small errors to the integer sums).
def dilate_nhwc(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Dilation of a float32 0/1 `[N, H, W, 1]` tensor; returns float32 0/1."""
    if radius == 0:
        return x
    return tf.cast(_disk_sum(x, radius) > 0.5, tf.float32)


def erode_nhwc(x: tf.Tensor, radius: int) -> tf.Tensor:
    """Erosion of a float32 0/1 `[N, H, W, 1]` tensor; returns float32 0/1."""
    if radius == 0:
        return x
    size = float(disk(radius).sum())
    return tf.cast(_disk_sum(x, radius) > size - 0.5, tf.float32)


def _apply(
    name: str, mask: tf.Tensor, radius: int, op: Callable[[tf.Tensor], tf.Tensor]
) -> tf.Tensor:
    """Checks `mask` and `radius`, runs `op` on the `[N, H, W, 1]` float32 0/1 view of `mask`
    and returns uint8 0/1 in the shape of `mask`."""
    _check_radius(radius)
    image, rank = foreground_nhwc(mask, name, tf.float32)
    return restore_rank(tf.cast(op(image), tf.uint8), rank)

def binary_dilation(mask: tf.Tensor, radius: int) -> tf.Tensor:
    """Binary dilation by `disk(radius)`, equal to `scipy.ndimage.binary_dilation`.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground. Height, width and batch may be unknown
            inside `tf.function`.
        radius: disk radius in pixels (Python int ≥ 0; 0 returns the binarized mask).

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`, equal to
        ``scipy.ndimage.binary_dilation(mask, structure=disk(radius))`` (outside = background).

    Raises:
        ValueError: if the rank of `mask` is unknown or not 2, 3 or 4, a rank-4 `mask` has a
            static channel dimension other than 1, or `radius` is not a non-negative int.

    Example:
        >>> dot = np.zeros([5, 5], np.uint8)
        >>> dot[2, 2] = 1
        >>> binary_dilation(dot, 1).numpy()
        array([[0, 0, 0, 0, 0],
               [0, 0, 1, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0]], dtype=uint8)
    """
    return _apply("binary_dilation", mask, radius, lambda x: dilate_nhwc(x, radius))


def binary_erosion(mask: tf.Tensor, radius: int) -> tf.Tensor:
    """Binary erosion by `disk(radius)`, equal to `scipy.ndimage.binary_erosion`.

    The outside of the image is background, so foreground touching the image edge erodes
    from it too (scipy's default ``border_value=0``).

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground.
        radius: disk radius in pixels (Python int ≥ 0).

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`, equal to
        ``scipy.ndimage.binary_erosion(mask, structure=disk(radius))``.

    Raises:
        ValueError: as `binary_dilation`.

    Example:
        >>> square = np.zeros([5, 5], np.uint8)
        >>> square[1:4, 1:4] = 1
        >>> binary_erosion(square, 1).numpy()[1:4, 1:4]
        array([[0, 0, 0],
               [0, 1, 0],
               [0, 0, 0]], dtype=uint8)
    """
    return _apply("binary_erosion", mask, radius, lambda x: erode_nhwc(x, radius))


def binary_closing(mask: tf.Tensor, radius: int) -> tf.Tensor:
    """Binary closing by `disk(radius)`: the erosion of the dilation, outside = background.

    Equal to ``binary_erosion(binary_dilation(mask, radius), radius)`` and to
    ``scipy.ndimage.binary_closing(mask, structure=disk(radius))`` everywhere, the image edge
    included (see the module docstring: near the edge the result can lose foreground).

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground.
        radius: disk radius in pixels (Python int ≥ 0).

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`.

    Raises:
        ValueError: as `binary_dilation`.

    Example:
        >>> ring = np.zeros([7, 7], np.uint8)
        >>> ring[2:5, 2:5] = 1
        >>> ring[3, 3] = 0
        >>> int(binary_closing(ring, 1).numpy()[3, 3])
        1
    """
    return _apply("binary_closing", mask, radius, lambda x: erode_nhwc(dilate_nhwc(x, radius), radius))


def binary_opening(mask: tf.Tensor, radius: int) -> tf.Tensor:
    """Binary opening by `disk(radius)`: the dilation of the erosion, outside = background.

    Equal to ``binary_dilation(binary_erosion(mask, radius), radius)`` and to
    ``scipy.ndimage.binary_opening(mask, structure=disk(radius))``.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground.
        radius: disk radius in pixels (Python int ≥ 0).

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`.

    Raises:
        ValueError: as `binary_dilation`.

    Example:
        >>> blob = np.zeros([7, 9], np.uint8)
        >>> blob[1:6, 1:6] = 1
        >>> blob[3, 6:9] = 1            # a 1-px thin protrusion
        >>> opened = binary_opening(blob, 1).numpy()
        >>> int(opened[3, 7:9].sum()), int(opened[3, 3])
        (0, 1)
    """
    return _apply("binary_opening", mask, radius, lambda x: dilate_nhwc(erode_nhwc(x, radius), radius))
