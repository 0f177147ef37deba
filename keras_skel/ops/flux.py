"""DeepFlux's skeleton recovery from a predicted context flux (Algorithm 1) as graph ops.

A pixel is an *ending point* when its flux magnitude exceeds λ while the neighbour its flux
points at (the direction binned to one of the 8 neighbours) has magnitude ≤ λ: context flux
points at the skeleton, so the last context pixel before the skeleton is where the magnitude
drops. The ending points are grouped by a dilation with a disk of radius k1 and an erosion with
a disk of radius k2 (`ops.morphology`, exact vs scipy, builtin TFLite ops). The confidence of a
recovered pixel is `(v_max − |F|) / v_max`, v_max the image's largest magnitude: the reference
code's form of "inverse magnitude", finite where |F| is 0.

Direction binning without trigonometry or argmax: the flux points at the nearest of the 8
neighbours, i.e. the nearest multiple of 45°. With a = |dx|, b = |dy| and t = tan 22.5°, the step
is horizontal when b < t·a, vertical when a < t·b, diagonal otherwise, towards the signs of
(dy, dx); an exact 22.5° tie (which float data practically never hits) goes to the diagonal.

Flux channels are (row, column) = (dy, dx), rows growing downwards (`data.targets.flux_target`).

Reference:
    Wang et al., "DeepFlux for Skeletons in the Wild", CVPR 2019 (Algorithm 1, §3.4; λ = 0.4,
    k1 = 3, k2 = 4).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_skel.ops.morphology import dilate_nhwc, erode_nhwc

__all__ = ["NEIGHBOUR_OFFSETS", "flux_to_skeleton"]

# Bin b is the direction at angle b·45° from +x (column axis) towards +y (rows, downwards):
# (dy, dx) offsets of the 8 neighbours.
NEIGHBOUR_OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))


def _neighbourhood_kernel() -> np.ndarray:
    """Conv kernel whose output channel (oy + 1)·3 + (ox + 1) is the input shifted by (oy, ox)."""
    kernel = np.zeros((3, 3, 1, 9), np.float32)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            kernel[1 + oy, 1 + ox, 0, (oy + 1) * 3 + (ox + 1)] = 1.0
    return kernel


_NEIGHBOURHOOD_KERNEL = _neighbourhood_kernel()
_TAN_22_5 = math.tan(math.pi / 8)


def flux_to_skeleton(flux: tf.Tensor, threshold: float = 0.4, k1: int = 3,
                     k2: int = 4) -> tuple[tf.Tensor, tf.Tensor]:
    """Recovers a binary skeleton and its confidence from a context flux field.

    Args:
        flux: `[N, H, W, 2]` or `[H, W, 2]` float flux, channels (dy, dx).
        threshold: the magnitude threshold λ.
        k1: radius of the dilation's disk.
        k2: radius of the erosion's disk.

    Returns:
        `(skeleton, confidence)`: uint8 0/1 and float32 maps shaped like `flux` with one
        channel; the confidence is `(v_max − |F|) / v_max` on skeleton pixels, 0 elsewhere.

    Raises:
        ValueError: at trace time, for another rank or a channel count other than 2.

    Example:
        >>> from keras_skel.data.targets import flux_target
        >>> skel = np.zeros((32, 32), bool); skel[16, 4:28] = True
        >>> recovered, _ = flux_to_skeleton(flux_target(skel))
        >>> int(recovered.numpy()[16, 16, 0])
        1
    """
    flux = tf.convert_to_tensor(flux)
    rank = flux.shape.rank
    if rank not in (3, 4) or flux.shape[-1] != 2:
        raise ValueError(f"flux_to_skeleton expects flux of shape [N, H, W, 2] or [H, W, 2]; got {flux.shape}")
    batched = tf.cast(flux if rank == 4 else tf.expand_dims(flux, 0), tf.float32)
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(batched), axis=-1, keepdims=True))  # [B, H, W, 1]

    # Few, large ops (each graph op costs tens of µs to dispatch on a CPU; an argmax over 8
    # channels alone costs more than the rest): the 9 magnitudes of each 3×3 neighbourhood come
    # from one convolution with one-hot kernels (exact: each output is one input times 1 plus
    # zeros; zero padding = outside has magnitude 0), the pointed-to one is picked by a one-hot
    # mask of its index (oy + 1)·3 + (ox + 1).
    dy, dx = batched[..., :1], batched[..., 1:]
    a, b = tf.abs(dx), tf.abs(dy)
    step_y = tf.where(b < _TAN_22_5 * a, tf.zeros_like(dy), tf.sign(dy))  # horizontal: no row step
    step_x = tf.where(a < _TAN_22_5 * b, tf.zeros_like(dx), tf.sign(dx))  # vertical: no column step
    index = tf.cast(step_y * 3.0 + step_x + 4.0, tf.int32)[..., 0]  # [B, H, W], 0..8
    neighbours = tf.nn.conv2d(magnitude, tf.constant(_NEIGHBOURHOOD_KERNEL), 1, "SAME")  # [B, H, W, 9]
    pointed = tf.reduce_sum(tf.one_hot(index, 9, dtype=tf.float32) * neighbours, axis=-1, keepdims=True)

    ending = tf.cast(tf.logical_and(magnitude > threshold, pointed <= threshold), tf.float32)
    closed = erode_nhwc(dilate_nhwc(ending, k1), k2)  # float32 0/1 [B, H, W, 1]

    v_max = tf.reduce_max(magnitude, axis=[1, 2, 3], keepdims=True)
    safe = tf.where(v_max > 0, v_max, tf.ones_like(v_max))
    # Where v_max is 0 the magnitude is 0 everywhere, so the product is 0 there too.
    confidence = closed * ((v_max - magnitude) / safe)
    skeleton = tf.cast(closed, tf.uint8)
    if rank == 3:
        return skeleton[0], confidence[0]
    return skeleton, confidence
