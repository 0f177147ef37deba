"""Point-set metrics of SkeletonNet: Chamfer distance (exact nearest neighbours, k-d trees)."""

from __future__ import annotations

import numpy as np

__all__ = ["chamfer"]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Chamfer distance `mean_{p∈a} min_q ‖p − q‖² + mean_{q∈b} min_p ‖p − q‖²` (squared
    distances, the form `losses.functional.chamfer_distance(..., "mean")` computes and the
    papers report); inf when one set is empty and the other is not, 0 when both are.

    Example:
        >>> chamfer(np.array([[0.0, 0, 0], [1, 0, 0]]), np.array([[0.0, 0, 0]]))
        0.5
    """
    from scipy.spatial import cKDTree

    a, b = np.asarray(a, np.float64).reshape(-1, 3), np.asarray(b, np.float64).reshape(-1, 3)
    if len(a) == 0 or len(b) == 0:
        return 0.0 if len(a) == len(b) else float("inf")
    to_b, _ = cKDTree(b).query(a)
    to_a, _ = cKDTree(a).query(b)
    return float(np.mean(to_b ** 2) + np.mean(to_a ** 2))
