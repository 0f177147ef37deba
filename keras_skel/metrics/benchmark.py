"""Evaluation protocol of the skeleton benchmarks (SK-LARGE, SYMMAX, WH-SYMMAX, SK-SMALL, ...).

The protocol DeepFlux (Wang et al., CVPR 2019) and the methods it compares with are scored by,
taken from the benchmarks' BSDS-style evaluation code (``correspondPixels`` with
``maxDist = 0.01``):

1. **Thin the prediction.** "For methods that output a skeleton probability map, a standard
   non-maximal suppression (NMS) algorithm is first applied and the thinned skeleton map is
   obtained." Here, in two steps as the BSDS code does:

   a. :func:`thin_map`, once per image: ridge NMS on the score map. A pixel keeps its score
      when it is ``>=`` both of its neighbours one pixel away along the ridge normal (the
      direction of most negative curvature of the Gaussian-smoothed map, sigma 1, read from
      the Hessian; the neighbours are bilinearly interpolated, borders clamped); every other
      pixel is set to 0. Ties are kept, as in Dollár's ``edgesNms``, so a flat plateau
      survives this step whole.
   b. per threshold ``t``: the binary map ``thin_map(score) >= t`` is thinned morphologically
      (``skimage.morphology.thin``, the equivalent of ``bwmorph(bmap, 'thin', inf)`` that the
      BSDS benchmark applies to every thresholded map). This reduces the plateaus NMS keeps
      (e.g. a 3-px-wide stroke of equal scores) to 1 px, so a thick prediction is not
      rewarded.

   Why not "threshold at > 0 and skeletonize the support once": a sigmoid output is > 0
   everywhere, so its support is the whole image and its skeleton says nothing about where
   the ridge of the scores is. NMS follows the scores, and the per-threshold thinning keeps
   every binary map 1 px wide whatever the threshold.
2. **Threshold** at several levels (default 99: ``0.01, 0.02, ..., 0.99``, the benchmark
   code's ``nthresh = 99``); a pixel is on at level ``t`` when its thinned score is ``>= t``.
3. **Match to the ground truth** one-to-one within ``max_dist * sqrt(H**2 + W**2)`` pixels
   (``max_dist = 0.01``; a distance equal to the tolerance matches), with
   :func:`keras_skel.metrics.skeleton_f1.match_count` (maximum bipartite matching). The GT
   skeleton is used as given, not thinned.
4. **Sum counts over the dataset** per threshold: ``matched``, ``n_pred``, ``n_gt``, then
   ``P = matched / n_pred`` and ``R = matched / n_gt``
   (:func:`keras_skel.metrics.skeleton_f1.prf_from_counts`, with its conventions: ``0 / 0``
   is 0, both empty gives 1). The BSDS code counts matched *predicted* pixels for P and
   matched *GT* pixels for R; a one-to-one matching makes the two counts the same number,
   which is what ``skeleton_f1`` uses.
5. **ODS**: the threshold with the largest dataset-level ``F = 2PR / (P + R)`` (ties go to
   the lower threshold). The BSDS code also interpolates the curve between sampled thresholds
   to find the maximum; here the maximum is over the sampled thresholds only, so use enough
   levels. **OIS** (optimal image scale) is reported beside it as in BSDS: each image's own
   best threshold, then counts summed over images at those thresholds.
6. **PR curve**: :func:`plot_pr_curve`, with iso-F lines as in the benchmarks' plots.

References:
    Wang, Xu, Bai, Zhou, Tian, Liu: "DeepFlux for Skeletons in the Wild", CVPR 2019, §4.2.
    Martin, Fowlkes, Malik: "Learning to Detect Natural Image Boundaries Using Local
    Brightness, Color, and Texture Cues", TPAMI 2004 (the BSDS benchmark, ``correspondPixels``).
    Tsogkas, Kokkinos: "Learning-Based Symmetry Detection in Natural Images", ECCV 2012
    (SYMMAX, which adopts the BSDS protocol for skeletons).

This module does not import TensorFlow; matplotlib is imported only by :func:`plot_pr_curve`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Hashable, Mapping, Optional, Sequence, Union

import numpy as np
from scipy import ndimage
from skimage.morphology import thin

from keras_skel.metrics.skeleton_f1 import as_skeleton_mask, match_count, prf_from_counts

__all__ = ["thin_map", "binarize_thinned", "default_thresholds", "BenchmarkAccumulator",
           "plot_pr_curve"]

# Relative slack of the NMS comparison: bilinear interpolation of equal values can differ
# from them in the last bits, and such ties must be kept.
_TIE_SLACK = 1e-9


def _check_score_map(score_map: Any, name: str = "score_map") -> np.ndarray:
    scores = np.asarray(score_map)
    if scores.ndim == 3 and scores.shape[-1] == 1:
        scores = scores[..., 0]
    if scores.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map [H, W] (or [H, W, 1]), got shape {scores.shape}.")
    if scores.dtype == bool:
        return scores.astype(np.float64)
    if scores.dtype.kind not in "uif":
        raise ValueError(f"{name} must be numeric, got dtype {scores.dtype}.")
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(
            f"{name} must hold scores in [0, 1], got range {scores.min():g}..{scores.max():g}."
        )
    return scores


def default_thresholds(levels: int = 99) -> np.ndarray:
    """The evenly spaced thresholds ``1/(levels+1), ..., levels/(levels+1)``.

    Args:
        levels: How many thresholds; 99 (the benchmark code's ``nthresh``) gives
            ``0.01, 0.02, ..., 0.99``.

    Returns:
        A float64 array of ``levels`` increasing thresholds in ``(0, 1)``.

    Example:
        >>> default_thresholds(4).tolist()
        [0.2, 0.4, 0.6, 0.8]
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}.")
    return np.arange(1, levels + 1, dtype=np.float64) / (levels + 1)


def thin_map(score_map: Any) -> np.ndarray:
    """Ridge non-maximal suppression of a skeleton score map (step 1a of the protocol).

    A pixel keeps its score when it is ``>=`` (up to float rounding) both neighbours one pixel
    away along the ridge normal, else it becomes 0. The normal is the eigenvector of the most
    negative eigenvalue of the Hessian of the map smoothed with a Gaussian of sigma 1 (the
    smoothing only steadies the direction; the comparison uses the raw scores). Neighbours
    are bilinearly interpolated, with the border pixels repeated outside the image. Ties are
    kept, so plateaus survive; :func:`binarize_thinned` thins them after thresholding.

    Args:
        score_map: ``[H, W]`` (or ``[H, W, 1]``) scores in ``[0, 1]``.

    Returns:
        A float64 ``[H, W]`` map: the scores on the ridges, 0 elsewhere.

    Raises:
        ValueError: The map is not 2-D, not numeric, not finite, or outside ``[0, 1]``.

    Example:
        >>> scores = np.zeros((5, 7)); scores[1:4, 1:6] = [[0.4], [0.9], [0.4]]
        >>> thin_map(scores)[:, 3].tolist()
        [0.0, 0.0, 0.9, 0.0, 0.0]
    """
    scores = _check_score_map(score_map)
    if scores.size == 0:
        return scores
    h_rr = ndimage.gaussian_filter(scores, sigma=1.0, order=(2, 0), mode="nearest")
    h_cc = ndimage.gaussian_filter(scores, sigma=1.0, order=(0, 2), mode="nearest")
    h_rc = ndimage.gaussian_filter(scores, sigma=1.0, order=(1, 1), mode="nearest")
    # 0.5 * atan2(2b, a - c) is the angle (from the row axis) of the eigenvector of the larger
    # eigenvalue of [[a, b], [b, c]]; the ridge normal (most negative curvature) is at 90°.
    normal = 0.5 * np.arctan2(2 * h_rc, h_rr - h_cc) + np.pi / 2
    d_row, d_col = np.cos(normal), np.sin(normal)
    rows, cols = np.indices(scores.shape, dtype=np.float64)
    keep = np.ones(scores.shape, bool)
    for sign in (1.0, -1.0):
        neighbour = ndimage.map_coordinates(
            scores, [rows + sign * d_row, cols + sign * d_col], order=1, mode="nearest"
        )
        keep &= scores >= neighbour - _TIE_SLACK * np.maximum(1.0, np.abs(neighbour))
    return np.where(keep, scores, 0.0)


def binarize_thinned(thinned: np.ndarray, threshold: float) -> np.ndarray:
    """The 1-px binary skeleton of a thinned map at one threshold (steps 1b and 2).

    Args:
        thinned: Output of :func:`thin_map`.
        threshold: Level in ``(0, 1]``; a pixel is on when its score is ``>= threshold``.

    Returns:
        A bool ``[H, W]`` map: ``skimage.morphology.thin(thinned >= threshold)``.

    Example:
        >>> bar = np.zeros((7, 9)); bar[2:5, 1:8] = 1.0  # a 3-px-wide stroke
        >>> int(binarize_thinned(thin_map(bar), 0.5).sum(axis=0).max())
        1
    """
    binary = np.asarray(thinned) >= threshold
    return thin(binary) if binary.any() else binary


def _check_thresholds(thresholds: Union[int, Sequence[float]]) -> np.ndarray:
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        return default_thresholds(int(thresholds))
    values = np.asarray(thresholds, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("thresholds must not be empty.")
    if not np.isfinite(values).all() or values.min() <= 0 or values.max() > 1:
        raise ValueError(
            f"thresholds must lie in (0, 1] (a threshold of 0 would switch on every pixel), "
            f"got range {values.min():g}..{values.max():g}."
        )
    return np.unique(values)  # sorted, duplicates dropped


class BenchmarkAccumulator:
    """Accumulates the benchmarks' PR curve, ODS and OIS F-measure over a dataset.

    Args:
        thresholds: Either a number of evenly spaced levels (see :func:`default_thresholds`;
            default 99, i.e. ``0.01 .. 0.99``) or explicit thresholds in ``(0, 1]`` (sorted and
            deduplicated). Cost per image is one NMS plus, per *distinct* binary map, one
            thinning and one matching: thresholds that switch on the same pixels reuse the
            previous level's counts, so a map with few distinct scores is cheap. For a 256x256
            map with many distinct scores, 99 levels take a few tenths of a second on one core.
        max_dist: Matching tolerance as a fraction of the image diagonal (benchmark: 0.01).

    Example:
        >>> gt = np.zeros((300, 400), bool); gt[150, 50:350] = True  # diagonal 500 -> 5 px
        >>> scores = np.zeros(gt.shape); scores[152, 50:350] = 0.7  # 2 px off, within 5 px
        >>> acc = BenchmarkAccumulator(thresholds=10)
        >>> _ = acc.update(scores, gt)
        >>> result = acc.result()
        >>> result["ods_f"], round(result["ods_threshold"], 4)
        (1.0, 0.0909)
    """

    def __init__(self, thresholds: Union[int, Sequence[float]] = 99, max_dist: float = 0.01):
        self.thresholds = _check_thresholds(thresholds)
        max_dist = float(max_dist)
        if not math.isfinite(max_dist) or max_dist < 0:
            raise ValueError(f"max_dist must be a finite number >= 0, got {max_dist}.")
        self.max_dist = max_dist
        self.reset()

    def reset(self) -> None:
        """Forgets every image added so far."""
        n = self.thresholds.size
        self._matched = np.zeros(n, np.int64)
        self._n_pred = np.zeros(n, np.int64)
        self._n_gt = np.zeros(n, np.int64)
        self._per_image: list[dict[str, Any]] = []
        # Counts at each image's own best threshold, summed (for OIS).
        self._ois_counts = np.zeros(3, np.int64)

    def __len__(self) -> int:
        return len(self._per_image)

    def tolerance(self, shape: tuple[int, int]) -> float:
        """Matching distance in pixels for an image of ``shape``: ``max_dist * diagonal``."""
        return self.max_dist * math.hypot(shape[0], shape[1])

    def update(
        self, score_map: Any, gt_skeleton: Any, image_id: Optional[Hashable] = None
    ) -> dict[str, Any]:
        """Scores one image at every threshold and adds its counts to the dataset totals.

        Args:
            score_map: ``[H, W]`` skeleton scores in ``[0, 1]`` (not yet thinned).
            gt_skeleton: ``[H, W]`` ground-truth skeleton, bool or 0/1.
            image_id: A name for the per-image table; defaults to the running index.

        Returns:
            This image's row: ``id``, ``tolerance`` (pixels), per-threshold ``matched``,
            ``n_pred``, ``n_gt`` (int arrays), and its own ``best_threshold``, ``best_f``.

        Raises:
            ValueError: An input is not 2-D, the shapes differ, the scores are not finite or
                not in ``[0, 1]``, or the GT is not binary.
        """
        scores = _check_score_map(score_map)
        gt = as_skeleton_mask(gt_skeleton, "gt_skeleton")
        if scores.shape != gt.shape:
            raise ValueError(
                f"score_map and gt_skeleton must have the same shape, got {scores.shape} "
                f"and {gt.shape}."
            )
        tolerance = self.tolerance(scores.shape)
        thinned = thin_map(scores)
        n = self.thresholds.size
        matched = np.zeros(n, np.int64)
        n_pred = np.zeros(n, np.int64)
        n_gt = np.full(n, int(np.count_nonzero(gt)), np.int64)
        previous_on = -1
        for i, threshold in enumerate(self.thresholds):
            on = int(np.count_nonzero(thinned >= threshold))
            # Thresholds increase, so the on-sets are nested: the same count is the same set.
            if on == previous_on:
                matched[i], n_pred[i] = matched[i - 1], n_pred[i - 1]
                continue
            previous_on = on
            if on == 0:
                continue  # matched = n_pred = 0 here and at every higher threshold
            counts = match_count(binarize_thinned(thinned, threshold), gt, tolerance)
            matched[i], n_pred[i] = counts[0], counts[1]
        self._matched += matched
        self._n_pred += n_pred
        self._n_gt += n_gt
        f_values = [prf_from_counts(*c)[2] for c in zip(matched, n_pred, n_gt)]
        best = int(np.argmax(f_values))  # first maximum: ties go to the lower threshold
        self._ois_counts += [matched[best], n_pred[best], n_gt[best]]
        row = {
            "id": len(self._per_image) if image_id is None else image_id,
            "tolerance": tolerance,
            "best_threshold": float(self.thresholds[best]),
            "best_f": float(f_values[best]),
        }
        self._per_image.append(row)
        return dict(row, matched=matched, n_pred=n_pred, n_gt=n_gt)

    def result(self) -> dict[str, Any]:
        """The dataset-level PR curve, ODS and OIS of every image added so far.

        Returns:
            A dict with ``thresholds``, ``precision``, ``recall``, ``f`` (one float per
            threshold, from counts summed over images), ``matched``, ``n_pred``, ``n_gt``
            (summed counts per threshold), ``ods_f``, ``ods_precision``, ``ods_recall``,
            ``ods_threshold`` (the best dataset-level F; ties to the lower threshold),
            ``ois_f``, ``ois_precision``, ``ois_recall`` (counts summed at each image's own
            best threshold), ``n_images``, ``max_dist`` and ``per_image`` (``id``,
            ``tolerance``, ``best_threshold``, ``best_f`` per image). All lists are plain
            Python, so the dict serialises to JSON.

        Raises:
            ValueError: No image has been added.
        """
        if not self._per_image:
            raise ValueError("BenchmarkAccumulator.result() called before any update().")
        curve = [prf_from_counts(int(m), int(p), int(g))
                 for m, p, g in zip(self._matched, self._n_pred, self._n_gt)]
        precision, recall, f_values = (list(values) for values in zip(*curve))
        best = int(np.argmax(f_values))
        ois_p, ois_r, ois_f = prf_from_counts(*(int(c) for c in self._ois_counts))
        return {
            "thresholds": self.thresholds.tolist(),
            "precision": precision,
            "recall": recall,
            "f": f_values,
            "matched": self._matched.tolist(),
            "n_pred": self._n_pred.tolist(),
            "n_gt": self._n_gt.tolist(),
            "ods_f": f_values[best],
            "ods_precision": precision[best],
            "ods_recall": recall[best],
            "ods_threshold": float(self.thresholds[best]),
            "ois_f": ois_f,
            "ois_precision": ois_p,
            "ois_recall": ois_r,
            "n_images": len(self._per_image),
            "max_dist": self.max_dist,
            "per_image": [dict(r) for r in self._per_image],
        }


def plot_pr_curve(
    results: Mapping[str, Mapping[str, Any]],
    path: Union[str, Path],
    title: Optional[str] = None,
) -> Path:
    """Saves the PR curves of one or more methods as a PNG, benchmark style.

    Each method's curve is drawn through its thresholds' (recall, precision) points where it
    predicts anything (``n_pred > 0``), its ODS point is marked, and the legend reads
    ``[F=0.xxx] name``, best first. Dashed green iso-F curves (``F = 0.1 .. 0.9``) are drawn as
    in the BSDS/SYMMAX plots.

    Args:
        results: ``{method name: BenchmarkAccumulator.result()}``; only ``precision``,
            ``recall`` and ``ods_*`` are read (``n_pred`` if present).
        path: Output PNG path; parent folders are created.
        title: Optional plot title.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: ``results`` is empty, or a result lacks a key or has curves of unequal
            length.

    Example:
        >>> plot_pr_curve({"DeepFlux": acc.result()}, "out/pr.png")  # doctest: +SKIP
        PosixPath('out/pr.png')
    """
    if not results:
        raise ValueError("plot_pr_curve needs at least one method's results.")
    for name, result in results.items():
        missing = [k for k in ("precision", "recall", "ods_f", "ods_precision", "ods_recall")
                   if k not in result]
        if missing:
            raise ValueError(f"results[{name!r}] lacks {missing}; pass BenchmarkAccumulator.result().")
        if len(result["precision"]) != len(result["recall"]):
            raise ValueError(f"results[{name!r}] has precision and recall of different lengths.")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for f_level in np.arange(1, 10) / 10:
        # F = 2PR/(P+R) solved for P; defined for R > F/2.
        r = np.linspace(f_level / 2 + 1e-3, 1, 200)
        p = f_level * r / (2 * r - f_level)
        shown = p <= 1
        ax.plot(r[shown], p[shown], "--", color="tab:green", linewidth=0.6, alpha=0.6)
        ax.text(r[shown][-1] if shown.any() else 1, p[shown][-1] if shown.any() else 1,
                f"{f_level:.1f}", fontsize=6, color="tab:green", va="bottom", ha="right")
    order = sorted(results, key=lambda name: -float(results[name]["ods_f"]))
    for name in order:
        result = results[name]
        precision = np.asarray(result["precision"], np.float64)
        recall = np.asarray(result["recall"], np.float64)
        shown = np.asarray(result.get("n_pred", np.ones(precision.size)), np.float64) > 0
        (line,) = ax.plot(recall[shown], precision[shown], linewidth=1.8,
                          label=f"[F={float(result['ods_f']):.3f}] {name}")
        ax.plot([result["ods_recall"]], [result["ods_precision"]], "o", color=line.get_color(),
                markersize=5, clip_on=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_aspect("equal")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    from keras_skel.visualize import save_figure

    return save_figure(fig, path)
