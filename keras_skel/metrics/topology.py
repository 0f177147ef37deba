"""Segmentation and topology metrics for thin structures (vessels, cracks, roads).

Overlap and topology scores of a predicted segmentation against the ground truth, for 2-D
images ``[H, W]`` and 3-D volumes ``[D, H, W]``, binary or multi-class. NumPy, SciPy and
scikit-image only; this module does not import TensorFlow.

* **Dice**: ``2 |P ∩ G| / (|P| + |G|)``.
* **clDice** (hard, Shit et al., "clDice - a Novel Topology-Preserving Loss Function for
  Tubular Structure Segmentation", CVPR 2021): with ``S`` the skeleton
  (:func:`skimage.morphology.skeletonize`: Zhang-Suen thinning in 2-D, Lee's method in 3-D),
  topology precision ``Tprec = |S(P) ∩ G| / |S(P)|``, topology sensitivity
  ``Tsens = |S(G) ∩ P| / |S(G)|`` and ``clDice = 2 Tprec Tsens / (Tprec + Tsens)``. The same
  "skeleton inside the other mask" idea underlies the Skeleton Recall loss (Kirchhoff et al.,
  "Skeleton Recall Loss for Connectivity Conserving and Resource Efficient Segmentation of
  Thin Tubular Structures", ECCV 2024), which is ``Tsens`` made soft.
* **Betti numbers** and their absolute errors ``|β_i(P) - β_i(G)|``.

Connectivity convention (a foreground connectivity must be paired with the complementary
background connectivity, or a diagonal gap would both join the foreground and let the
background leak through it):

* 2-D: foreground **8**-connected, background **4**-connected. ``β0`` = number of
  8-connected foreground components; ``β1`` = number of holes = 4-connected background
  components that do not touch the image border. Pixels outside the image are background,
  so an object cut by the border has no hole there.
* 3-D: foreground **26**-connected, background **6**-connected. ``β0`` = number of
  26-connected foreground components; ``β2`` = number of cavities = 6-connected background
  components that do not touch the border; ``β1`` = number of tunnels, from the Euler
  characteristic ``χ = β0 - β1 + β2`` (:func:`skimage.measure.euler_number` with
  ``connectivity=3``, i.e. 26-connected foreground), so ``β1 = β0 + β2 - χ``.

  This is the topology of the union of the *closed* unit squares (cubes) of the foreground:
  two pixels that share only a corner touch, and the open background between them does not.

Empty-set conventions (the same as :mod:`keras_skel.metrics.skeleton_f1`):

* Dice and clDice are 1 when prediction and ground truth are both empty (nothing to find,
  nothing wrongly found) and 0 when exactly one is empty.
* In clDice, a ``0 / 0`` ratio is 0 and ``Tprec + Tsens = 0`` gives 0. (A non-empty mask
  always has a non-empty skeleton, since thinning keeps every component.)
* An empty mask has all Betti numbers 0.

Multi-class label maps hold 0 for background and ``1..classes`` for the classes; each class
``k`` is scored on the binary masks ``label == k`` (background is not scored). A class absent
from both maps of an image scores Dice = clDice = 1 and Betti errors 0, by the convention
above; ``present`` in the per-class rows says whether it appeared.
"""

from __future__ import annotations

from typing import Any, Hashable, Optional

import numpy as np
from scipy import ndimage
from skimage.measure import euler_number
from skimage.morphology import skeletonize

__all__ = [
    "dice_score",
    "cldice_score",
    "betti_numbers",
    "betti_errors",
    "segmentation_scores",
    "SegmentationAccumulator",
]

# Score names in the order they appear in per-class rows and results.
_SCORES_2D = ("dice", "cldice", "betti0", "betti1", "precision", "recall")
_SCORES_3D = _SCORES_2D + ("betti2",)


def _as_mask(array: Any, name: str, spatial: bool = True) -> np.ndarray:
    """A binary mask from bool, integer (non-zero is on) or 0/1 float input."""
    mask = np.asarray(array)
    if spatial and mask.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a 2-D image [H, W] or a 3-D volume [D, H, W], "
            f"got {mask.ndim}-D shape {mask.shape}."
        )
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a bool, integer or float array, got dtype {mask.dtype}.")
    # A float mask that is not exactly 0/1 is probably a probability map: thresholding it here
    # at "!= 0" would silently turn every faint pixel on.
    if mask.dtype.kind == "f" and not np.isin(mask, (0.0, 1.0)).all():
        low, high = float(np.nanmin(mask)), float(np.nanmax(mask))
        raise ValueError(
            f"{name} is a float array with values other than 0 and 1 (range {low:g}..{high:g}); "
            "threshold probabilities into a binary mask first."
        )
    return mask != 0


def _pair(pred: Any, gt: Any, spatial: bool = True) -> tuple[np.ndarray, np.ndarray]:
    pred_mask = _as_mask(pred, "pred", spatial)
    gt_mask = _as_mask(gt, "gt", spatial)
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(
            f"pred and gt must have the same shape, got {pred_mask.shape} and {gt_mask.shape}."
        )
    return pred_mask, gt_mask


def dice_score(pred: Any, gt: Any) -> float:
    """Dice coefficient of two binary masks of any rank.

    Args:
        pred: Predicted mask, bool or 0/1 (any non-zero integer counts as on; floats must be
            exactly 0 or 1).
        gt: Ground-truth mask, same shape.

    Returns:
        ``2 |pred ∩ gt| / (|pred| + |gt|)``; 1.0 when both are empty.

    Raises:
        ValueError: The shapes differ or a float mask is not 0/1.

    Example:
        >>> dice_score([1, 1, 0, 0], [1, 0, 1, 0])
        0.5
    """
    pred_mask, gt_mask = _pair(pred, gt, spatial=False)
    total = int(np.count_nonzero(pred_mask)) + int(np.count_nonzero(gt_mask))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred_mask & gt_mask)) / total


def _skeleton(mask: np.ndarray) -> np.ndarray:
    if not mask.any():  # skeletonize would only return zeros; skip its padding and copies
        return mask
    return np.asarray(skeletonize(mask), dtype=bool)


def _cldice_masks(pred_mask: np.ndarray, gt_mask: np.ndarray) -> float:
    pred_any, gt_any = bool(pred_mask.any()), bool(gt_mask.any())
    if not pred_any and not gt_any:
        return 1.0
    if not pred_any or not gt_any:
        return 0.0
    pred_skel = _skeleton(pred_mask)
    gt_skel = _skeleton(gt_mask)
    n_pred_skel = int(np.count_nonzero(pred_skel))
    n_gt_skel = int(np.count_nonzero(gt_skel))
    tprec = int(np.count_nonzero(pred_skel & gt_mask)) / n_pred_skel if n_pred_skel else 0.0
    tsens = int(np.count_nonzero(gt_skel & pred_mask)) / n_gt_skel if n_gt_skel else 0.0
    total = tprec + tsens
    return 2.0 * tprec * tsens / total if total > 0 else 0.0


def cldice_score(pred: Any, gt: Any) -> float:
    """Hard clDice of two binary masks, 2-D or 3-D (Shit et al., CVPR 2021).

    ``Tprec = |S(pred) ∩ gt| / |S(pred)|`` (how much of the predicted centreline lies in the
    true structure), ``Tsens = |S(gt) ∩ pred| / |S(gt)|`` (how much of the true centreline is
    covered: the quantity Kirchhoff et al.'s Skeleton Recall loss makes soft), and
    ``clDice = 2 Tprec Tsens / (Tprec + Tsens)``, with ``S`` =
    :func:`skimage.morphology.skeletonize` (Zhang-Suen in 2-D, Lee in 3-D). A break in a thin
    structure removes a part of ``S(gt)`` from ``pred``, so clDice punishes it far more than
    Dice, which only counts the missing pixels.

    Args:
        pred: Predicted mask ``[H, W]`` or ``[D, H, W]``, bool or 0/1.
        gt: Ground-truth mask, same shape.

    Returns:
        clDice in ``[0, 1]``: 1.0 when both masks are empty, 0.0 when exactly one is.

    Raises:
        ValueError: A mask is not 2-D or 3-D, the shapes differ, or a float mask is not 0/1.

    Example:
        >>> gt = np.zeros((5, 11), bool); gt[2, 1:10] = True  # a 9-pixel line
        >>> pred = gt.copy(); pred[2, 5] = False  # broken in the middle
        >>> round(cldice_score(pred, gt), 4), round(dice_score(pred, gt), 4)  # 16/17, 16/17
        (0.9412, 0.9412)
    """
    pred_mask, gt_mask = _pair(pred, gt)
    return _cldice_masks(pred_mask, gt_mask)


def _enclosed_background(mask: np.ndarray) -> int:
    """Background components (4-/6-connected) that do not reach the border."""
    # Padding adds a background frame that joins every border-touching background component
    # into one; every other background component is enclosed by foreground.
    background = ~np.pad(mask, 1, mode="constant", constant_values=False)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)  # 4 (2-D) / 6 (3-D)
    _, count = ndimage.label(background, structure=structure)
    return count - 1


def _betti_mask(mask: np.ndarray) -> tuple[int, ...]:
    if not mask.any():
        return (0,) * mask.ndim
    full = ndimage.generate_binary_structure(mask.ndim, mask.ndim)  # 8 (2-D) / 26 (3-D)
    _, beta0 = ndimage.label(mask, structure=full)
    if mask.ndim == 2:
        return int(beta0), _enclosed_background(mask)
    beta2 = _enclosed_background(mask)
    # connectivity=3: 26-connected foreground, i.e. the same convention as the labelling.
    chi = int(euler_number(mask, connectivity=3))
    beta1 = int(beta0) + beta2 - chi
    if beta1 < 0:  # cannot happen with matching conventions; guards against a library change
        raise RuntimeError(
            f"Inconsistent topology: beta0={beta0}, beta2={beta2}, Euler characteristic {chi}."
        )
    return int(beta0), beta1, beta2


def betti_numbers(mask: Any) -> tuple[int, ...]:
    """Betti numbers of a binary image or volume.

    2-D: ``(β0, β1)`` = (8-connected foreground components, holes = 4-connected background
    components not touching the border). 3-D: ``(β0, β1, β2)`` = (26-connected components,
    tunnels, cavities = 6-connected background components not touching the border), with
    ``β1 = β0 + β2 - χ`` from the Euler characteristic. Outside the array is background.

    Args:
        mask: Binary mask ``[H, W]`` or ``[D, H, W]``, bool or 0/1.

    Returns:
        A tuple of ``mask.ndim`` ints; all 0 for an empty mask.

    Raises:
        ValueError: The mask is not 2-D or 3-D, or a float mask is not 0/1.

    Example:
        >>> ring = np.zeros((5, 5), bool); ring[1:4, 1:4] = True; ring[2, 2] = False
        >>> betti_numbers(ring)
        (1, 1)
        >>> torus = np.zeros((5, 5, 3), bool); torus[1:4, 1:4, 1] = True; torus[2, 2, 1] = False
        >>> betti_numbers(torus)
        (1, 1, 0)
    """
    return _betti_mask(_as_mask(mask, "mask"))


def _betti_errors_masks(pred_mask: np.ndarray, gt_mask: np.ndarray) -> dict[str, int]:
    pred_betti = _betti_mask(pred_mask)
    gt_betti = _betti_mask(gt_mask)
    return {f"betti{i}": abs(p - g) for i, (p, g) in enumerate(zip(pred_betti, gt_betti))}


def betti_errors(pred: Any, gt: Any) -> dict[str, int]:
    """Absolute Betti number errors between a prediction and the ground truth.

    Args:
        pred: Predicted mask ``[H, W]`` or ``[D, H, W]``, bool or 0/1.
        gt: Ground-truth mask, same shape.

    Returns:
        ``{"betti0": |β0(pred) - β0(gt)|, "betti1": |β1(pred) - β1(gt)|}``, plus ``"betti2"``
        (cavities) for 3-D input. See :func:`betti_numbers` for the conventions.

    Raises:
        ValueError: A mask is not 2-D or 3-D, the shapes differ, or a float mask is not 0/1.

    Example:
        >>> gt = np.zeros((5, 11), bool); gt[2, 1:10] = True
        >>> pred = gt.copy(); pred[2, 5] = False  # one break: two pieces
        >>> betti_errors(pred, gt)
        {'betti0': 1, 'betti1': 0}
    """
    pred_mask, gt_mask = _pair(pred, gt)
    return _betti_errors_masks(pred_mask, gt_mask)


def _check_classes(classes: Any) -> int:
    if isinstance(classes, (bool, np.bool_)) or not isinstance(classes, (int, np.integer)):
        raise ValueError(f"classes must be an int >= 1, got {classes!r}.")
    if classes < 1:
        raise ValueError(f"classes must be an int >= 1 (background 0 is not counted), got {classes}.")
    return int(classes)


def _as_labels(array: Any, name: str, classes: int) -> np.ndarray:
    labels = np.asarray(array)
    if labels.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a 2-D label image [H, W] or a 3-D label volume [D, H, W], "
            f"got {labels.ndim}-D shape {labels.shape}."
        )
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    elif labels.dtype.kind == "f":
        finite = np.isfinite(labels)
        if not finite.all() or not np.array_equal(labels, np.round(labels)):
            raise ValueError(
                f"{name} must hold integer class labels 0..{classes}; got a float array with "
                "non-integer values (pass argmax of the scores, not probabilities)."
            )
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer label array, got dtype {labels.dtype}.")
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0 or high > classes:
            raise ValueError(
                f"{name} has labels out of range: found {low:g}..{high:g}, expected 0 "
                f"(background) to {classes} (classes={classes})."
            )
    return labels


def _label_pair(pred_labels: Any, gt_labels: Any, classes: int) -> tuple[np.ndarray, np.ndarray]:
    pred = _as_labels(pred_labels, "pred_labels", classes)
    gt = _as_labels(gt_labels, "gt_labels", classes)
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred_labels and gt_labels must have the same shape, got {pred.shape} and "
            f"{gt.shape}."
        )
    return pred, gt


def _score_names(ndim: int) -> tuple[str, ...]:
    return _SCORES_3D if ndim == 3 else _SCORES_2D


def segmentation_scores(pred_labels: Any, gt_labels: Any, classes: int) -> dict[str, Any]:
    """Dice, clDice and Betti errors of one label image or volume, per class.

    Args:
        pred_labels: Predicted labels ``[H, W]`` or ``[D, H, W]``: 0 is background,
            ``1..classes`` the classes (integers; bool is read as 0/1 for the binary case).
        gt_labels: Ground-truth labels, same shape.
        classes: Number of foreground classes.

    Returns:
        ``{"per_class": [{"class": k, "present": bool, "dice", "cldice", "betti0",
        "betti1"[, "betti2"]}, ...], "dice", "cldice", "betti0", "betti1"[, "betti2"]}``:
        one row per class ``k = 1..classes`` scored on ``label == k`` (``present``: ``k``
        occurs in the prediction or the ground truth), and the means of each score over the
        classes. ``betti2`` is given for volumes only. A class absent from both scores
        Dice = clDice = 1 and Betti errors 0.

    Raises:
        ValueError: A label map is not 2-D or 3-D, the shapes differ, a label is outside
            ``0..classes`` or not an integer, or ``classes < 1``.

    Example:
        >>> gt = np.zeros((6, 6), int); gt[1, 1:5] = 1; gt[4, 1:5] = 2
        >>> pred = gt.copy(); pred[4] = 0  # class 2 missed
        >>> scores = segmentation_scores(pred, gt, classes=2)
        >>> [row["dice"] for row in scores["per_class"]], scores["dice"], scores["betti0"]
        ([1.0, 0.0], 0.5, 0.5)
    """
    classes = _check_classes(classes)
    pred, gt = _label_pair(pred_labels, gt_labels, classes)
    names = _score_names(pred.ndim)
    rows = []
    for k in range(1, classes + 1):
        pred_mask, gt_mask = pred == k, gt == k
        row: dict[str, Any] = {
            "class": k,
            "present": bool(pred_mask.any() or gt_mask.any()),
            "dice": dice_score(pred_mask, gt_mask),
            "cldice": _cldice_masks(pred_mask, gt_mask),
            # Pixel precision and recall show *how* a loss trades errors (a recall-driven loss
            # over-segments); an empty side has nothing wrong: precision 1 without prediction,
            # recall 1 without ground truth.
            "precision": _ratio(pred_mask & gt_mask, pred_mask),
            "recall": _ratio(pred_mask & gt_mask, gt_mask),
        }
        row.update(_betti_errors_masks(pred_mask, gt_mask))
        rows.append(row)
    result: dict[str, Any] = {"per_class": rows}
    for name in names:
        result[name] = sum(row[name] for row in rows) / classes
    return result


def _ratio(hits: np.ndarray, total: np.ndarray) -> float:
    count = int(total.sum())
    return 1.0 if count == 0 else int(hits.sum()) / count


class SegmentationAccumulator:
    """Accumulates per-image Dice, clDice and Betti errors over a dataset, per class.

    Thin-structure papers report these metrics as means over images (or volumes), so each
    update scores one image on its own and :meth:`result` averages the per-image values.
    Images may differ in size, but all must have the same rank (all 2-D or all 3-D).

    Args:
        classes: Number of foreground classes (labels ``1..classes``; 0 is background).

    Example:
        >>> acc = SegmentationAccumulator(classes=2)
        >>> for pred, gt in pairs:  # doctest: +SKIP
        ...     acc.update(pred, gt)
        >>> scores = acc.result()  # doctest: +SKIP
        >>> scores["cldice"], scores["per_class"][0]["betti0"]  # doctest: +SKIP
    """

    def __init__(self, classes: int):
        self.classes = _check_classes(classes)
        self._per_image: list[dict[str, Any]] = []
        self._ndim: Optional[int] = None

    def reset(self) -> None:
        """Forgets every image added so far."""
        self._per_image = []
        self._ndim = None

    def __len__(self) -> int:
        return len(self._per_image)

    def update(
        self, pred_labels: Any, gt_labels: Any, image_id: Optional[Hashable] = None
    ) -> dict[str, Any]:
        """Scores one image or volume and adds it to the totals.

        Args:
            pred_labels: Predicted labels ``[H, W]`` or ``[D, H, W]`` in ``0..classes``.
            gt_labels: Ground-truth labels of the same shape.
            image_id: A name for the per-image table; defaults to the running index.

        Returns:
            This image's scores, as :func:`segmentation_scores` returns them, with ``id``.

        Raises:
            ValueError: The input is invalid (see :func:`segmentation_scores`), or its rank
                differs from the images added before.
        """
        ndim = np.ndim(pred_labels)
        if self._ndim is not None and ndim in (2, 3) and ndim != self._ndim:
            raise ValueError(
                f"pred_labels is {ndim}-D but the images added so far are {self._ndim}-D; "
                "use one accumulator per rank."
            )
        scores = segmentation_scores(pred_labels, gt_labels, self.classes)
        self._ndim = ndim
        row = {"id": len(self._per_image) if image_id is None else image_id, **scores}
        self._per_image.append(row)
        return {**row, "per_class": [dict(r) for r in row["per_class"]]}

    def result(self) -> dict[str, Any]:
        """Mean scores over every image added so far.

        Returns:
            ``{"per_class": [{"class": k, "dice", "cldice", "betti0", "betti1"[, "betti2"],
            "n_present"}, ...], "dice", "cldice", "betti0", "betti1"[, "betti2"], "n_images",
            "classes", "per_image"}``: for each class the mean over images of its Dice,
            clDice and absolute Betti errors, and ``n_present``, the number of images in which
            it occurs (prediction or ground truth); at the top level, the mean of the per-class
            means over the classes; ``per_image`` lists each update's scores in order.

        Raises:
            ValueError: No image has been added.
        """
        if not self._per_image:
            raise ValueError("SegmentationAccumulator.result() called before any update().")
        count = len(self._per_image)
        names = _score_names(self._ndim or 2)
        per_class = []
        for index in range(self.classes):
            rows = [image["per_class"][index] for image in self._per_image]
            entry: dict[str, Any] = {"class": index + 1}
            for name in names:
                entry[name] = sum(row[name] for row in rows) / count
            entry["n_present"] = sum(1 for row in rows if row["present"])
            per_class.append(entry)
        result: dict[str, Any] = {"per_class": per_class}
        for name in names:
            result[name] = sum(entry[name] for entry in per_class) / self.classes
        result["n_images"] = count
        result["classes"] = self.classes
        result["per_image"] = [
            {**image, "per_class": [dict(row) for row in image["per_class"]]}
            for image in self._per_image
        ]
        return result
