"""Probability map → 1-px skeleton, the one post-processing every prediction path shares
(training-time evaluation, `predict` on a `.keras` model, the exported SavedModel and TFLite)."""

from __future__ import annotations

import tensorflow as tf

from keras_skel.ops.morphology import binary_dilation
from keras_skel.ops.pruning import prune_spurs
from keras_skel.ops.thinning import thin

__all__ = ["probability_to_skeleton"]


def probability_to_skeleton(probability: tf.Tensor, threshold: float | tf.Tensor,
                            prune_length: int = 0, gate_radius: int = 0,
                            shape: tf.Tensor | None = None) -> tf.Tensor:
    """Thresholds `probability` (`p >= threshold`) and thins the result to a 1-px skeleton.

    With `prune_length > 0` it then removes the terminal branches shorter than that and thins
    once more: with 10, thresholding a clean-shape probability and applying this is exactly
    the ground-truth rule of DESIGN.md §3 (`skeleton_target`), in graph ops.

    With `gate_radius > 0` the model's thresholded map instead *gates* the ground-truth rule
    applied to the input `shape`: the skeleton is `prune(thin(shape))` restricted to the
    thresholded map dilated by a disk of `gate_radius`, then pruned again (both prunes at
    `prune_length`, which must be > 0). Where the model agrees with the rule (clean
    boundaries) the result is the rule's own skeleton, pixel for pixel; branches the model
    does not see (spurs grown by boundary bumps) are dropped.

    Args:
        probability: `[N, H, W, 1]` (or `[H, W]`, `[N, H, W]`) probabilities.
        threshold: scalar threshold.
        prune_length: spur length in pixels for `prune_spurs` (0 = no pruning). A Python int:
            it shapes the graph.
        gate_radius: 0 (off) or the gate's dilation radius in pixels (Python int).
        shape: the binary input, same shape as `probability`; needed with `gate_radius`.

    Returns:
        uint8 0/1 skeleton of the same shape.

    Raises:
        ValueError: `gate_radius` without `shape` or without `prune_length`.
    """
    threshold = tf.cast(threshold, probability.dtype)
    # float32 masks: TFLite builtins have no NotEqual on uint8 (thin compares with 0).
    mask = tf.cast(probability >= threshold, tf.float32)
    if gate_radius:
        if shape is None or not prune_length:
            raise ValueError("gate_radius needs the input shape and prune_length > 0 (the ground-truth rule)")
        rule = prune_spurs(thin(tf.cast(tf.cast(shape, tf.float32) > 0.5, tf.float32)), int(prune_length))
        band = binary_dilation(mask, int(gate_radius))
        gated = tf.cast(rule, tf.float32) * tf.cast(band, tf.float32)
        return prune_spurs(gated, int(prune_length))  # thins once more itself
    skeleton = thin(mask)
    if prune_length:
        skeleton = prune_spurs(skeleton, int(prune_length))  # thins once more itself
    return skeleton
