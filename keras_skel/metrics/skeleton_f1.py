"""Skeleton F1: precision, recall and F1 of a predicted skeleton against the ground truth.

One definition everywhere (DESIGN.md §3, "Skeleton F1"):

* **Exact** (``tolerance=0``): a predicted pixel is a true positive when the GT pixel at the
  same position is on.
* **With tolerance** ``t > 0``: predicted and GT pixels are matched *one-to-one*, a pair being
  allowed when their Euclidean distance is ``<= t``, and the number of matches is maximised
  (maximum bipartite matching, as the benchmarks' ``correspondPixels``, without its cost
  term: which pairs are matched does not change the count). One GT pixel therefore
  confirms at most one prediction, so a thick prediction along a thin GT is not rewarded.

From ``matched`` (the matching's size), ``n_pred`` and ``n_gt`` (the on-pixel counts):
``P = matched / n_pred``, ``R = matched / n_gt``, ``F1 = 2 P R / (P + R)``.

Conventions for empty images, per image and for the dataset alike:

* pred and GT both empty: ``P = R = F1 = 1`` (nothing to find, nothing wrongly found);
* exactly one empty: ``F1 = 0``, and the undefined ratio (``0 / 0``) is 0 as well;
* ``P + R = 0``: ``F1 = 0``.

The judged number is dataset-level: ``matched``, ``n_pred`` and ``n_gt`` summed over all
images, then P, R, F1 from the sums. The mean of per-image F1 (the SkelNetOn challenge's
protocol) is reported beside it as ``mean_image_f1``; the two differ because the dataset-level
number weighs each image by its number of skeleton pixels.

The matching runs on the sparse graph of pairs within ``t`` (found with a KD-tree), and only
pixels that have a partner within ``t`` enter it, so a 256x256 skeleton takes milliseconds.
This module does not import TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Iterable, Optional

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree

__all__ = ["as_skeleton_mask", "match_count", "prf_from_counts", "SkeletonF1Accumulator", "skeleton_f1"]


def as_skeleton_mask(array: Any, name: str) -> np.ndarray:
    """A 2-D bool skeleton from bool, integer (nonzero = on) or 0/1 float input (`[H, W]` or
    `[H, W, 1]`); `ValueError` naming `name` for another rank or a float map that is not 0/1."""
    mask = np.asarray(array)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D skeleton [H, W] (or [H, W, 1]), got shape {mask.shape}."
        )
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind == "f" and not np.isin(mask, (0.0, 1.0)).all():
        low, high = float(np.nanmin(mask)), float(np.nanmax(mask))
        raise ValueError(
            f"{name} is a float array with values other than 0 and 1 (range {low:g}..{high:g}); "
            "threshold probabilities into a binary skeleton first."
        )
    return mask != 0


def _check_tolerance(tolerance: float) -> float:
    tolerance = float(tolerance)
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (pixels), got {tolerance}.")
    return tolerance


def match_count(pred: Any, gt: Any, tolerance: float = 0) -> tuple[int, int, int]:
    """Counts one-to-one matches between predicted and ground-truth skeleton pixels.

    Args:
        pred: Predicted skeleton, ``[H, W]`` (or ``[H, W, 1]``), bool or 0/1 (any non-zero
            integer counts as on; floats must be exactly 0 or 1).
        gt: Ground-truth skeleton, same shape.
        tolerance: Largest Euclidean distance in pixels at which a predicted pixel may match a
            GT pixel. ``0`` is exact pixel equality; ``1`` allows the 4-neighbours, ``1.5``
            the 8-neighbours.

    Returns:
        ``(matched, n_pred, n_gt)``: the size of a maximum one-to-one matching, and the numbers
        of predicted and GT pixels.

    Raises:
        ValueError: A mask is not 2-D, the shapes differ, a float mask is not 0/1, or the
            tolerance is negative.

    Example:
        >>> gt = np.zeros((5, 5), bool); gt[2, 1:4] = True
        >>> pred = np.roll(gt, 1, axis=0)  # shifted down by one pixel
        >>> match_count(pred, gt), match_count(pred, gt, tolerance=1)
        ((0, 3, 3), (3, 3, 3))
    """
    pred_mask = as_skeleton_mask(pred, "pred")
    gt_mask = as_skeleton_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(
            f"pred and gt must have the same shape, got {pred_mask.shape} and {gt_mask.shape}."
        )
    tolerance = _check_tolerance(tolerance)
    n_pred = int(np.count_nonzero(pred_mask))
    n_gt = int(np.count_nonzero(gt_mask))
    if n_pred == 0 or n_gt == 0:
        return 0, n_pred, n_gt
    if tolerance < 1:  # no two distinct grid points are closer than 1
        return int(np.count_nonzero(pred_mask & gt_mask)), n_pred, n_gt

    # Integer grids have distances sqrt(k); the slack only keeps e.g. t = sqrt(2) inclusive
    # against rounding, and is far below the gap between neighbouring sqrt(k).
    radius = tolerance * (1 + 1e-9) + 1e-9
    pred_points = np.argwhere(pred_mask)
    gt_points = np.argwhere(gt_mask)
    neighbours = cKDTree(gt_points).query_ball_point(pred_points, r=radius)
    lengths = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(neighbours))
    candidates = np.flatnonzero(lengths)  # only predictions with a partner enter the graph
    if candidates.size == 0:
        return 0, n_pred, n_gt
    lengths = lengths[candidates]
    indices = np.concatenate([np.asarray(neighbours[i], dtype=np.int64) for i in candidates])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    graph = csr_matrix(
        (np.ones(indices.size, dtype=np.int8), indices, indptr),
        shape=(candidates.size, n_gt),
    )
    # perm_type="column": entry i is the GT column matched to candidate row i, or -1.
    matching = maximum_bipartite_matching(graph, perm_type="column")
    return int(np.count_nonzero(matching >= 0)), n_pred, n_gt


def prf_from_counts(matched: int, n_pred: int, n_gt: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from match counts, with the module's empty-image conventions.

    Args:
        matched: Number of matched pixel pairs.
        n_pred: Number of predicted pixels.
        n_gt: Number of ground-truth pixels.

    Returns:
        ``(precision, recall, f1)``: ``(1, 1, 1)`` when both counts are 0; a ``0 / 0`` ratio
        is 0 otherwise; ``f1 = 0`` when ``precision + recall = 0``.

    Example:
        >>> prf_from_counts(3, 4, 6)
        (0.75, 0.5, 0.6)
    """
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0, 1.0
    precision = matched / n_pred if n_pred else 0.0
    recall = matched / n_gt if n_gt else 0.0
    total = precision + recall
    f1 = 2 * precision * recall / total if total > 0 else 0.0
    return precision, recall, f1


class SkeletonF1Accumulator:
    """Accumulates skeleton F1 over a dataset, image by image.

    Args:
        tolerance: Matching distance in pixels (see :func:`match_count`); 0 is exact.

    Example:
        >>> acc = SkeletonF1Accumulator(tolerance=1.5)
        >>> for sample_id, pred, gt in samples:  # doctest: +SKIP
        ...     acc.update(pred, gt, image_id=sample_id)
        >>> scores = acc.result()  # doctest: +SKIP
        >>> scores["f1"], scores["mean_image_f1"]  # doctest: +SKIP
    """

    def __init__(self, tolerance: float = 0):
        self.tolerance = _check_tolerance(tolerance)
        self._per_image: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forgets every image added so far."""
        self._per_image = []

    def __len__(self) -> int:
        return len(self._per_image)

    def update(self, pred: Any, gt: Any, image_id: Optional[Hashable] = None) -> dict[str, Any]:
        """Scores one image and adds it to the totals.

        Args:
            pred: Predicted skeleton ``[H, W]`` (bool or 0/1).
            gt: Ground-truth skeleton of the same shape.
            image_id: A name for the per-image table; defaults to the running index.

        Returns:
            This image's row: ``id``, ``matched``, ``n_pred``, ``n_gt``, ``precision``,
            ``recall``, ``f1``.
        """
        matched, n_pred, n_gt = match_count(pred, gt, self.tolerance)
        precision, recall, f1 = prf_from_counts(matched, n_pred, n_gt)
        row = {
            "id": len(self._per_image) if image_id is None else image_id,
            "matched": matched,
            "n_pred": n_pred,
            "n_gt": n_gt,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
        self._per_image.append(row)
        return dict(row)

    def result(self) -> dict[str, Any]:
        """Dataset-level and per-image scores of every image added so far.

        Returns:
            A dict with ``precision``, ``recall``, ``f1`` (dataset-level, from counts summed
            over images: the judged number), ``mean_image_f1``, ``mean_image_precision``,
            ``mean_image_recall`` (means of the per-image values), the summed ``matched``,
            ``n_pred``, ``n_gt``, ``n_images``, ``tolerance``, and ``per_image`` (one dict
            per image, in update order, as :meth:`update` returns).

        Raises:
            ValueError: No image has been added.
        """
        if not self._per_image:
            raise ValueError("SkeletonF1Accumulator.result() called before any update().")
        matched = sum(r["matched"] for r in self._per_image)
        n_pred = sum(r["n_pred"] for r in self._per_image)
        n_gt = sum(r["n_gt"] for r in self._per_image)
        precision, recall, f1 = prf_from_counts(matched, n_pred, n_gt)
        count = len(self._per_image)
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "mean_image_f1": sum(r["f1"] for r in self._per_image) / count,
            "mean_image_precision": sum(r["precision"] for r in self._per_image) / count,
            "mean_image_recall": sum(r["recall"] for r in self._per_image) / count,
            "matched": matched,
            "n_pred": n_pred,
            "n_gt": n_gt,
            "n_images": count,
            "tolerance": self.tolerance,
            "per_image": [dict(r) for r in self._per_image],
        }


def skeleton_f1(
    preds: Iterable[Any],
    gts: Iterable[Any],
    tolerance: float = 0,
    image_ids: Optional[Iterable[Hashable]] = None,
) -> dict[str, Any]:
    """Skeleton F1 of a set of predictions (see :class:`SkeletonF1Accumulator`).

    Args:
        preds: Predicted skeletons: an iterable of ``[H, W]`` masks, or one ``[N, H, W]``
            (or ``[N, H, W, 1]``) array.
        gts: Ground-truth skeletons, as many as ``preds``, each the shape of its prediction.
        tolerance: Matching distance in pixels; 0 is exact.
        image_ids: Optional names for the per-image table.

    Returns:
        The dict of :meth:`SkeletonF1Accumulator.result`.

    Raises:
        ValueError: ``preds`` and ``gts`` differ in length or are empty, or a pair is invalid
            (see :func:`match_count`).

    Example:
        >>> gt = np.zeros((8, 8), bool); gt[4, 1:7] = True
        >>> skeleton_f1([np.roll(gt, 1, axis=0)], [gt], tolerance=1)["f1"]
        1.0
    """
    preds, gts = list(preds), list(gts)
    if len(preds) != len(gts):
        raise ValueError(f"Got {len(preds)} predictions but {len(gts)} ground truths.")
    ids = [None] * len(preds) if image_ids is None else list(image_ids)
    if len(ids) != len(preds):
        raise ValueError(f"Got {len(ids)} image_ids for {len(preds)} images.")
    accumulator = SkeletonF1Accumulator(tolerance)
    for pred, gt, image_id in zip(preds, gts, ids):
        accumulator.update(pred, gt, image_id=image_id)
    if not len(accumulator):
        raise ValueError("skeleton_f1 needs at least one image.")
    return accumulator.result()
