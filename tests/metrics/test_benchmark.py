"""Tests for keras_skel.metrics.benchmark: hand-computed golden cases of the benchmark protocol.

Most images are 300x400, whose diagonal is 500, so the tolerance 0.01 x diagonal is exactly
5 pixels. Strokes of one score, apart from one another, survive the NMS whole (no neighbour
exceeds them), and 1-px straight strokes survive the thinning whole, so the counts below are
exact.
"""

import json

import numpy as np
import pytest
from scipy import ndimage

from keras_skel.metrics.benchmark import (
    BenchmarkAccumulator,
    binarize_thinned,
    default_thresholds,
    plot_pr_curve,
    thin_map,
)
from keras_skel.metrics.skeleton_f1 import match_count

SHAPE = (300, 400)  # diagonal 500 -> tolerance 5 px


def _line(row, start, stop, shape=SHAPE):
    mask = np.zeros(shape, bool)
    mask[row, start:stop] = True
    return mask


def test_default_thresholds_are_the_benchmark_levels():
    levels = default_thresholds()
    assert levels.size == 99
    assert levels[0] == pytest.approx(0.01) and levels[-1] == pytest.approx(0.99)
    assert BenchmarkAccumulator().thresholds.size == 99
    assert BenchmarkAccumulator(thresholds=[0.5, 0.2, 0.5]).thresholds.tolist() == [0.2, 0.5]


def test_tolerance_is_one_percent_of_the_diagonal():
    assert BenchmarkAccumulator().tolerance(SHAPE) == pytest.approx(5.0)


def test_perfect_prediction_scores_one_below_its_score():
    gt = _line(150, 50, 350)
    acc = BenchmarkAccumulator(thresholds=[0.1, 0.3, 0.6, 0.7, 0.9])
    acc.update(gt * 0.6, gt)
    result = acc.result()
    assert result["f"] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert result["precision"] == [1.0, 1.0, 1.0, 0.0, 0.0]  # nothing predicted: 0 / 0 -> 0
    assert result["recall"] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert result["n_pred"] == [300, 300, 300, 0, 0]
    assert result["ods_f"] == 1.0
    assert result["ods_threshold"] == 0.1  # ties go to the lower threshold
    assert result["ois_f"] == 1.0


@pytest.mark.parametrize("shift, expected_f", [(1, 1.0), (5, 1.0), (6, 0.0), (-5, 1.0), (-6, 0.0)])
def test_shift_within_and_beyond_the_tolerance(shift, expected_f):
    gt = _line(150, 50, 350)
    scores = np.roll(gt, shift, axis=0) * 0.9
    acc = BenchmarkAccumulator(thresholds=[0.5])
    acc.update(scores, gt)
    result = acc.result()
    assert result["f"] == [expected_f]
    assert result["matched"] == [300 if expected_f else 0]


def test_tolerance_scales_with_the_image():
    # Diagonal 50 -> 0.5 px: no two distinct pixels are that close, so a 1-px shift misses.
    gt = _line(15, 5, 35, shape=(30, 40))
    acc = BenchmarkAccumulator(thresholds=[0.5])
    acc.update(np.roll(gt, 1, axis=0) * 0.9, gt)
    assert acc.result()["f"] == [0.0]


def test_two_confidence_levels_hand_computed():
    # GT: A (200 px) and B (100 px). Prediction: A at 0.8, B at 0.3, and a false stroke C
    # (300 px, 50 px from any GT) at 0.3.
    gt = _line(100, 50, 250) | _line(200, 50, 150)
    scores = 0.8 * _line(100, 50, 250) + 0.3 * _line(200, 50, 150) + 0.3 * _line(250, 50, 350)
    acc = BenchmarkAccumulator(thresholds=[0.2, 0.3, 0.5, 0.8, 0.9])
    acc.update(scores, gt)
    result = acc.result()
    # t <= 0.3: 600 predicted, 300 matched, 300 GT -> P 1/2, R 1, F 2/3.
    # 0.3 < t <= 0.8: 200 predicted, all matched -> P 1, R 2/3, F 4/5.
    # t > 0.8: nothing predicted -> 0.
    assert result["n_pred"] == [600, 600, 200, 200, 0]
    assert result["matched"] == [300, 300, 200, 200, 0]
    assert result["n_gt"] == [300] * 5
    assert result["precision"] == pytest.approx([0.5, 0.5, 1.0, 1.0, 0.0])
    assert result["recall"] == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3, 0.0])
    assert result["f"] == pytest.approx([2 / 3, 2 / 3, 0.8, 0.8, 0.0])
    assert result["ods_f"] == pytest.approx(0.8)
    assert result["ods_threshold"] == 0.5
    assert result["ods_precision"] == 1.0
    assert result["ods_recall"] == pytest.approx(2 / 3)


def test_counts_are_summed_over_the_dataset_not_f_averaged():
    # Image 1: 300 GT px found exactly (F 1). Image 2: 100 GT px, 100 px predicted far away
    # (F 0). Mean of per-image F: 0.5. Dataset: 300 matched / 400 predicted / 400 GT: 0.75.
    acc = BenchmarkAccumulator(thresholds=[0.5])
    gt1 = _line(150, 50, 350)
    acc.update(gt1 * 0.9, gt1)
    gt2 = _line(100, 50, 150)
    acc.update(_line(200, 50, 150) * 0.9, gt2)
    result = acc.result()
    assert [row["best_f"] for row in result["per_image"]] == [1.0, 0.0]
    assert (result["matched"], result["n_pred"], result["n_gt"]) == ([300], [400], [400])
    assert result["ods_f"] == pytest.approx(0.75)
    assert result["n_images"] == 2


def test_ois_uses_each_image_best_threshold():
    # Image A: GT found at 0.8, a false stroke at 0.3. Image B: GT found at 0.3 only.
    # t = 0.2: A 100/200/100, B 100/100/100 -> 200/300/200: P 2/3, R 1, F 0.8 (ODS).
    # t = 0.5: A 100/100/100, B 0/0/100 -> 100/100/200: P 1, R 1/2, F 2/3.
    # OIS: A at 0.5 and B at 0.2 -> 200/200/200: F 1.
    acc = BenchmarkAccumulator(thresholds=[0.2, 0.5])
    gt_a = _line(100, 50, 150)
    acc.update(0.8 * gt_a + 0.3 * _line(200, 50, 150), gt_a)
    gt_b = _line(100, 50, 150)
    acc.update(0.3 * gt_b, gt_b)
    result = acc.result()
    assert result["f"] == pytest.approx([0.8, 2 / 3])
    assert result["ods_f"] == pytest.approx(0.8) and result["ods_threshold"] == 0.2
    assert [row["best_threshold"] for row in result["per_image"]] == [0.5, 0.2]
    assert result["ois_f"] == 1.0


def test_nms_keeps_the_ridge_of_a_graded_stroke():
    scores = np.zeros((20, 40))
    scores[9:12, 5:35] = [[0.4], [0.9], [0.4]]
    thinned = thin_map(scores)
    # Away from the stroke's ends (where the curvature turns the normal) only the ridge stays.
    assert np.array_equal(thinned[:, 7:33] > 0, _line(10, 7, 33, shape=(20, 40))[:, 7:33])
    assert np.all(thinned[10, 5:35] == 0.9)
    assert thinned.max() == 0.9 and np.all(thinned[thinned > 0] <= scores[thinned > 0])


def test_thick_confident_stroke_is_thinned_before_matching():
    gt = _line(150, 50, 350)
    scores = np.zeros(SHAPE)
    scores[149:152, 50:350] = 1.0  # 3 px wide, equal scores: NMS keeps it all (ties)
    binary = binarize_thinned(thin_map(scores), 0.5)
    assert binary.sum(axis=0).max() == 1  # 1 px wide after thinning
    acc = BenchmarkAccumulator(thresholds=[0.5])
    acc.update(scores, gt)
    result = acc.result()
    # Unthinned, 900 predicted pixels could match only 300 GT pixels: precision 1/3.
    assert result["n_pred"][0] == binary.sum() <= 300
    assert result["precision"] == [1.0]
    assert result["recall"][0] >= 0.99  # thinning may trim a pixel at each end


def test_cached_counts_equal_direct_computation():
    rng = np.random.default_rng(0)
    scores = ndimage.gaussian_filter(rng.random((64, 80)), 2)
    scores = (scores - scores.min()) / (scores.max() - scores.min())
    scores[scores < 0.3] = 0  # many thresholds then share a binary map
    gt = np.zeros(scores.shape, bool)
    gt[32, 5:75] = True
    gt[5:60, 40] = True
    acc = BenchmarkAccumulator(thresholds=20)
    row = acc.update(scores, gt)
    thinned = thin_map(scores)
    tolerance = acc.tolerance(scores.shape)
    for i, threshold in enumerate(acc.thresholds):
        expected = match_count(binarize_thinned(thinned, threshold), gt, tolerance)
        assert (row["matched"][i], row["n_pred"][i], row["n_gt"][i]) == expected


def test_accepts_channel_axis_and_result_is_json():
    gt = _line(150, 50, 350)
    acc = BenchmarkAccumulator(thresholds=10)
    acc.update((gt * 0.7)[..., None], gt[..., None].astype(np.uint8))
    json.dumps(acc.result())


def test_plot_pr_curve_writes_png(tmp_path):
    gt = _line(100, 50, 250) | _line(200, 50, 150)
    scores = 0.8 * _line(100, 50, 250) + 0.3 * _line(200, 50, 150) + 0.3 * _line(250, 50, 350)
    good, bad = BenchmarkAccumulator(thresholds=10), BenchmarkAccumulator(thresholds=10)
    good.update(scores, gt)
    bad.update(np.roll(scores, 20, axis=0), gt)
    path = plot_pr_curve({"good": good.result(), "shifted": bad.result()},
                         tmp_path / "sub" / "pr.png", title="test")
    assert path == tmp_path / "sub" / "pr.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "scores, gt, message",
    [
        (np.zeros((4, 5, 3)), np.zeros((4, 5)), "2-D"),
        (np.zeros(5), np.zeros(5), "2-D"),
        (np.zeros((4, 5)), np.zeros((4, 6)), "same shape"),
        (np.full((4, 5), np.nan), np.zeros((4, 5)), "NaN"),
        (np.full((4, 5), 1.5), np.zeros((4, 5)), r"\[0, 1\]"),
        (np.full((4, 5), -0.1), np.zeros((4, 5)), r"\[0, 1\]"),
        (np.full((4, 5), "a"), np.zeros((4, 5)), "numeric"),
        (np.zeros((4, 5)), np.full((4, 5), 0.5), "binary"),
        (np.zeros((4, 5)), np.zeros((4, 5, 2)), "gt_skeleton must be a 2-D"),
    ],
)
def test_bad_inputs_raise(scores, gt, message):
    with pytest.raises(ValueError, match=message):
        BenchmarkAccumulator(thresholds=[0.5]).update(scores, gt)


@pytest.mark.parametrize("thresholds", [[], [0.0, 0.5], [0.5, 1.2], [np.nan], 0])
def test_bad_thresholds_raise(thresholds):
    with pytest.raises(ValueError):
        BenchmarkAccumulator(thresholds=thresholds)


def test_other_misuse_raises(tmp_path):
    with pytest.raises(ValueError, match="max_dist"):
        BenchmarkAccumulator(max_dist=-0.01)
    with pytest.raises(ValueError, match="before any update"):
        BenchmarkAccumulator().result()
    with pytest.raises(ValueError, match="at least one"):
        plot_pr_curve({}, tmp_path / "pr.png")
    with pytest.raises(ValueError, match="lacks"):
        plot_pr_curve({"x": {"precision": [1.0]}}, tmp_path / "pr.png")
    with pytest.raises(ValueError, match="2-D"):
        thin_map(np.zeros((2, 3, 4)))
