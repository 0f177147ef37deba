"""Tests for keras_skel.metrics.skeleton_f1: golden hand-computed cases and a brute-force check."""

import math
import time

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from keras_skel.metrics.skeleton_f1 import (
    SkeletonF1Accumulator,
    match_count,
    prf_from_counts,
    skeleton_f1,
)


def _mask(shape, points):
    mask = np.zeros(shape, bool)
    for point in points:
        mask[point] = True
    return mask


# --- golden cases ------------------------------------------------------------------------


def test_identical():
    gt = _mask((5, 5), [(2, 1), (2, 2), (2, 3)])
    assert match_count(gt, gt) == (3, 3, 3)
    assert match_count(gt, gt, tolerance=2) == (3, 3, 3)


def test_shift_by_one_pixel():
    gt = _mask((5, 5), [(2, 1), (2, 2), (2, 3)])
    pred = np.roll(gt, 1, axis=0)
    assert match_count(pred, gt, tolerance=0) == (0, 3, 3)
    assert match_count(pred, gt, tolerance=0.99) == (0, 3, 3)
    assert match_count(pred, gt, tolerance=1) == (3, 3, 3)
    assert skeleton_f1([pred], [gt])["f1"] == 0.0
    assert skeleton_f1([pred], [gt], tolerance=1)["f1"] == 1.0


def test_one_to_one():
    # Two predictions on either side of one GT pixel: only one may be matched.
    gt = _mask((5, 5), [(2, 2)])
    pred = _mask((5, 5), [(2, 1), (2, 3)])
    assert match_count(pred, gt, tolerance=1) == (1, 2, 1)
    scores = skeleton_f1([pred], [gt], tolerance=1)
    assert scores["precision"] == 0.5 and scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(2 / 3)


def test_diagonal_distance():
    gt = _mask((5, 5), [(2, 2)])
    pred = _mask((5, 5), [(3, 3)])  # distance sqrt(2)
    assert match_count(pred, gt, tolerance=1) == (0, 1, 1)
    assert match_count(pred, gt, tolerance=1.5) == (1, 1, 1)
    assert match_count(pred, gt, tolerance=math.sqrt(2)) == (1, 1, 1)  # "<= t" inclusive


def test_maximum_not_greedy():
    # p1 sits between g1 and g2; p2 can only reach g2. A greedy pass that gives p1 the
    # (tied) nearer g2 leaves p2 alone; the maximum matching pairs both.
    gt = _mask((1, 6), [(0, 0), (0, 2)])
    pred = _mask((1, 6), [(0, 1), (0, 3)])
    assert match_count(pred, gt, tolerance=1) == (2, 2, 2)


def test_coincident_pixels_need_not_pair():
    # pred {1, 2}, GT {0, 1} on a row: pairing the coincident pixels 1-1 gives one match,
    # the maximum (pred1-gt0, pred2-gt1) gives two.
    gt = _mask((1, 4), [(0, 0), (0, 1)])
    pred = _mask((1, 4), [(0, 1), (0, 2)])
    assert match_count(pred, gt, tolerance=0) == (1, 2, 2)
    assert match_count(pred, gt, tolerance=1) == (2, 2, 2)


def test_far_pixels_unmatched():
    gt = _mask((10, 10), [(0, 0), (0, 1)])
    pred = _mask((10, 10), [(9, 9), (0, 1)])
    assert match_count(pred, gt, tolerance=3) == (1, 2, 2)


# --- empty images and conventions ------------------------------------------------------


def test_both_empty():
    empty = np.zeros((4, 4), bool)
    assert match_count(empty, empty, tolerance=2) == (0, 0, 0)
    row = SkeletonF1Accumulator().update(empty, empty)
    assert (row["precision"], row["recall"], row["f1"]) == (1.0, 1.0, 1.0)


def test_empty_prediction():
    empty = np.zeros((4, 4), bool)
    gt = _mask((4, 4), [(1, 1)])
    assert match_count(empty, gt, tolerance=1) == (0, 0, 1)
    row = SkeletonF1Accumulator(1).update(empty, gt)
    assert (row["precision"], row["recall"], row["f1"]) == (0.0, 0.0, 0.0)


def test_empty_ground_truth():
    empty = np.zeros((4, 4), bool)
    pred = _mask((4, 4), [(1, 1)])
    assert match_count(pred, empty, tolerance=1) == (0, 1, 0)
    row = SkeletonF1Accumulator(1).update(pred, empty)
    assert (row["precision"], row["recall"], row["f1"]) == (0.0, 0.0, 0.0)


def test_prf_from_counts():
    assert prf_from_counts(3, 4, 6) == (0.75, 0.5, 0.6)
    assert prf_from_counts(0, 0, 0) == (1.0, 1.0, 1.0)
    assert prf_from_counts(0, 3, 5) == (0.0, 0.0, 0.0)


def test_dataset_level_differs_from_image_mean():
    # Image A: an 8-px GT row predicted exactly -> 8 matches, per-image F1 1.
    gt_a = _mask((10, 10), [(5, c) for c in range(1, 9)])
    pred_a = gt_a.copy()
    # Image B: 2 GT px, 4 predicted px far away -> 0 matches, per-image F1 0.
    gt_b = _mask((10, 10), [(0, 0), (0, 1)])
    pred_b = _mask((10, 10), [(9, 6), (9, 7), (9, 8), (9, 9)])
    scores = skeleton_f1([pred_a, pred_b], [gt_a, gt_b], tolerance=1, image_ids=["A", "B"])
    # Summed counts: matched 8, n_pred 12, n_gt 10 -> P 2/3, R 4/5, F1 = (16/15)/(22/15) = 8/11.
    assert (scores["matched"], scores["n_pred"], scores["n_gt"]) == (8, 12, 10)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(0.8)
    assert scores["f1"] == pytest.approx(8 / 11)
    assert scores["mean_image_f1"] == pytest.approx(0.5)
    assert scores["mean_image_precision"] == pytest.approx(0.5)
    assert scores["n_images"] == 2 and scores["tolerance"] == 1.0
    assert [r["id"] for r in scores["per_image"]] == ["A", "B"]
    assert scores["per_image"][0] == {
        "id": "A", "matched": 8, "n_pred": 8, "n_gt": 8,
        "precision": 1.0, "recall": 1.0, "f1": 1.0,
    }  # fmt: skip
    assert scores["per_image"][1]["f1"] == 0.0


def test_accumulator_update_reset_and_default_ids():
    acc = SkeletonF1Accumulator(tolerance=1)
    gt = _mask((3, 3), [(1, 1)])
    with pytest.raises(ValueError, match="before any update"):
        acc.result()
    acc.update(gt, gt)
    acc.update(gt, gt)
    assert len(acc) == 2
    assert [r["id"] for r in acc.result()["per_image"]] == [0, 1]
    acc.result()["per_image"][0]["id"] = "mutated"  # result() hands out copies
    assert acc.result()["per_image"][0]["id"] == 0
    acc.reset()
    assert len(acc) == 0


# --- inputs ------------------------------------------------------------------------------


def test_accepts_integer_channel_axis_and_stacked_arrays():
    gt = _mask((6, 6), [(2, 2), (2, 3)])
    pred = np.roll(gt, 1, axis=1)
    assert match_count(pred.astype(np.uint8)[..., None], gt.astype(np.float32), 1) == (2, 2, 2)
    stacked = skeleton_f1(np.stack([pred, gt]), np.stack([gt, gt]), tolerance=0)
    assert stacked["n_images"] == 2 and stacked["matched"] == 1 + 2


def test_invalid_inputs():
    gt = _mask((4, 4), [(1, 1)])
    with pytest.raises(ValueError, match="same shape"):
        match_count(gt, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="2-D"):
        match_count(np.zeros((2, 4, 4)), gt)
    with pytest.raises(ValueError, match="tolerance"):
        match_count(gt, gt, tolerance=-1)
    with pytest.raises(ValueError, match="threshold"):
        match_count(np.full((4, 4), 0.7), gt)
    with pytest.raises(ValueError, match="tolerance"):
        SkeletonF1Accumulator(tolerance=float("nan"))
    with pytest.raises(ValueError, match="2 predictions but 1"):
        skeleton_f1([gt, gt], [gt])
    with pytest.raises(ValueError, match="at least one"):
        skeleton_f1([], [])


# --- agreement with a brute-force reference --------------------------------------------


def _reference_matches(pred, gt, tolerance):
    p = np.argwhere(pred)
    g = np.argwhere(gt)
    if len(p) == 0 or len(g) == 0:
        return 0
    distance = np.sqrt(((p[:, None, :] - g[None, :, :]) ** 2).sum(-1))
    allowed = (distance <= tolerance + 1e-9).astype(int)
    rows, cols = linear_sum_assignment(allowed, maximize=True)
    return int(allowed[rows, cols].sum())


@pytest.mark.parametrize("tolerance", [0, 0.5, 1, 1.5, 2, 3])
def test_matches_brute_force(tolerance):
    rng = np.random.default_rng(int(tolerance * 10))
    for _ in range(40):
        shape = tuple(rng.integers(3, 14, size=2))
        pred = rng.random(shape) < rng.uniform(0.05, 0.4)
        gt = rng.random(shape) < rng.uniform(0.05, 0.4)
        matched, n_pred, n_gt = match_count(pred, gt, tolerance)
        assert (n_pred, n_gt) == (pred.sum(), gt.sum())
        assert matched == _reference_matches(pred, gt, tolerance)


def test_fast_on_256_skeletons():
    # A grid of 1-px lines (about 4,000 px) against a copy shifted by (1, 2) px.
    gt = np.zeros((256, 256), bool)
    gt[8:248:16, 8:248] = True
    gt[8:248, 8:248:16] = True
    pred = np.roll(gt, (1, 2), axis=(0, 1))  # the margin keeps the roll from wrapping
    start = time.perf_counter()
    matched, n_pred, n_gt = match_count(pred, gt, tolerance=3)
    assert time.perf_counter() - start < 2.0
    assert n_pred == n_gt == gt.sum()
    assert matched == n_gt  # a shift of sqrt(5) < 3 matches every pixel one-to-one
