"""Probability map → 1-px skeleton, the one post-processing every prediction path shares
(training-time evaluation, `predict` on a `.keras` model, the exported SavedModel and TFLite)."""

from __future__ import annotations

import tensorflow as tf

from keras_skel.ops.pruning import prune_spurs
from keras_skel.ops.thinning import thin

__all__ = ["probability_to_skeleton"]


def probability_to_skeleton(probability: tf.Tensor, threshold: float | tf.Tensor,
                            prune_length: int = 0) -> tf.Tensor:
    """Thresholds `probability` (`p >= threshold`) and thins the result to a 1-px skeleton.

    With `prune_length > 0` it then removes the terminal branches shorter than that and thins
    once more: with 10, thresholding a clean-shape probability and applying this is exactly
    the ground-truth rule of DESIGN.md §3 (`skeleton_target`), in graph ops.

    Args:
        probability: `[N, H, W, 1]` (or `[H, W]`, `[N, H, W]`) probabilities.
        threshold: scalar threshold.
        prune_length: spur length in pixels for `prune_spurs` (0 = no pruning). A Python int:
            it shapes the graph.

    Returns:
        uint8 0/1 skeleton of the same shape.
    """
    threshold = tf.cast(threshold, probability.dtype)
    # float32 mask: TFLite builtins have no NotEqual on uint8 (thin compares with 0).
    skeleton = thin(tf.cast(probability >= threshold, tf.float32))
    if prune_length:
        skeleton = prune_spurs(skeleton, int(prune_length))  # thins once more itself
    return skeleton
