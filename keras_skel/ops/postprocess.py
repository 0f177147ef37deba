"""Probability map → 1-px skeleton, the one post-processing every prediction path shares
(training-time evaluation, `predict` on a `.keras` model, the exported SavedModel and TFLite)."""

from __future__ import annotations

import tensorflow as tf

from keras_skel.ops.thinning import thin

__all__ = ["probability_to_skeleton"]


def probability_to_skeleton(probability: tf.Tensor, threshold: float | tf.Tensor) -> tf.Tensor:
    """Thresholds `probability` (`p >= threshold`) and thins the result to a 1-px skeleton.

    Args:
        probability: `[N, H, W, 1]` (or `[H, W]`, `[N, H, W]`) probabilities.
        threshold: scalar threshold.

    Returns:
        uint8 0/1 skeleton of the same shape.
    """
    threshold = tf.cast(threshold, probability.dtype)
    # float32 mask: TFLite builtins have no NotEqual on uint8 (thin compares with 0).
    return thin(tf.cast(probability >= threshold, tf.float32))
