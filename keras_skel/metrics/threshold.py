"""Choosing the binarization threshold of a probability map on validation data."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator

__all__ = ["search_threshold"]


def search_threshold(
    probabilities: Sequence[np.ndarray],
    skeletons: Sequence[np.ndarray],
    thresholds: Sequence[float],
    to_skeleton: Callable[[np.ndarray, float], np.ndarray],
    tolerance: float = 0.0,
) -> tuple[float, list[dict]]:
    """Picks the threshold with the best dataset-level skeleton F1 (Panichev & Voloshyna pick
    the F1-best threshold on their cross-validation split).

    Args:
        probabilities: per-image probability maps `[H, W]`.
        skeletons: matching ground-truth skeletons.
        thresholds: candidates.
        to_skeleton: `(probability, threshold) -> 1-px skeleton`, e.g. threshold then thin.
        tolerance: matching tolerance in pixels of the F1 that decides (0 = exact).

    Returns:
        `(best_threshold, table)` where `table` has one dict per candidate with its
        precision, recall and F1. Ties go to the lower threshold.
    """
    if not thresholds:
        raise ValueError("search_threshold needs at least one candidate threshold")
    table = []
    for threshold in thresholds:
        acc = SkeletonF1Accumulator(tolerance)
        for prob, gt in zip(probabilities, skeletons):
            acc.update(to_skeleton(prob, threshold), gt)
        result = acc.result()
        table.append(dict(threshold=float(threshold), precision=result["precision"],
                          recall=result["recall"], f1=result["f1"]))
    best = max(table, key=lambda row: (row["f1"], -row["threshold"]))
    return best["threshold"], table
