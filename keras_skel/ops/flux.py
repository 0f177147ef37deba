"""DeepFlux's skeleton recovery from a predicted context flux (Algorithm 1) as graph ops.

A pixel is an *ending point* when its flux magnitude exceeds λ while the neighbour its flux
points at (the direction binned to one of the 8 neighbours) has magnitude ≤ λ: context flux
points at the skeleton, so the last context pixel before the skeleton is where the magnitude
drops. The ending points are grouped by a dilation with a disk of radius k1 and an erosion with
a disk of radius k2 (`ops.morphology`, exact vs scipy, builtin TFLite ops). The confidence of a
recovered pixel is `(v_max − |F|) / v_max`, v_max the image's largest magnitude: the reference
code's form of "inverse magnitude", finite where |F| is 0.

Direction binning without trigonometry: the bin is the neighbour direction with the largest dot
product with the flux vector, i.e. the nearest multiple of 45° (at an exact 22.5° tie the lower
bin of the order below wins). Outside the image counts as magnitude 0, so flux pointing out of
the image makes an ending point at the border, as a zero-padded reference does.

Flux channels are (row, column) = (dy, dx), rows growing downwards (`data.targets.flux_target`).

Reference:
    Wang et al., "DeepFlux for Skeletons in the Wild", CVPR 2019 (Algorithm 1, §3.4; λ = 0.4,
    k1 = 3, k2 = 4).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_skel.ops.morphology import binary_dilation, binary_erosion

__all__ = ["NEIGHBOUR_OFFSETS", "flux_to_skeleton"]

# Bin b is the direction at angle b·45° from +x (column axis) towards +y (rows, downwards):
# (dy, dx) offsets of the 8 neighbours.
NEIGHBOUR_OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))


def _unit_directions() -> np.ndarray:
    return np.array([[math.sin(b * math.pi / 4), math.cos(b * math.pi / 4)] for b in range(8)], np.float32)


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
    dy, dx = batched[..., 0], batched[..., 1]
    magnitude = tf.sqrt(dy * dy + dx * dx)  # [B, H, W]

    units = _unit_directions()
    scores = tf.stack([dy * float(u[0]) + dx * float(u[1]) for u in units], axis=-1)
    direction = tf.argmax(scores, axis=-1, output_type=tf.int32)  # [B, H, W], bin 0..7

    height, width = tf.shape(magnitude)[1], tf.shape(magnitude)[2]
    padded = tf.pad(magnitude, [[0, 0], [1, 1], [1, 1]])  # outside = magnitude 0
    pointed = tf.zeros_like(magnitude)
    for b, (oy, ox) in enumerate(NEIGHBOUR_OFFSETS):
        neighbour = padded[:, 1 + oy:1 + oy + height, 1 + ox:1 + ox + width]
        pointed = pointed + tf.where(tf.equal(direction, b), neighbour, tf.zeros_like(neighbour))

    ending = tf.logical_and(magnitude > threshold, pointed <= threshold)
    skeleton = binary_erosion(binary_dilation(tf.cast(ending, tf.uint8), k1), k2)  # [B, H, W] uint8

    v_max = tf.reduce_max(magnitude, axis=[1, 2], keepdims=True)
    safe = tf.where(v_max > 0, v_max, tf.ones_like(v_max))
    on_skeleton = tf.cast(skeleton, tf.int32) > 0  # TFLite has no uint8 GREATER kernel
    confidence = tf.where(tf.logical_and(on_skeleton, v_max > 0), (v_max - magnitude) / safe,
                          tf.zeros_like(magnitude))
    skeleton = tf.expand_dims(skeleton, -1)
    confidence = tf.expand_dims(confidence, -1)
    if rank == 3:
        return skeleton[0], confidence[0]
    return skeleton, confidence
