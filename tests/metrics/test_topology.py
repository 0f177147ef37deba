"""Tests for keras_skel.metrics.topology: golden cases built by hand, and an Euler check."""

import itertools

import numpy as np
import pytest

from keras_skel.metrics.topology import (
    SegmentationAccumulator,
    betti_errors,
    betti_numbers,
    cldice_score,
    dice_score,
    segmentation_scores,
)


def _mask(shape, points):
    mask = np.zeros(shape, bool)
    for point in points:
        mask[point] = True
    return mask


def _line(shape=(5, 11), row=2, start=1, stop=10):
    mask = np.zeros(shape, bool)
    mask[row, start:stop] = True
    return mask


def _cubical_euler(mask):
    """Euler characteristic of the union of the closed unit cells of ``mask``.

    Counts cells of every dimension (vertices - edges + faces - cubes). A cell that extends
    along the axes in ``along`` (length 1) and sits on grid points on the others belongs to
    the union when one of the 2^(ndim - |along|) voxels around it is on. Independent of the
    code under test; its convention is 8/4 (2-D) and 26/6 (3-D) connectivity.
    """
    padded = np.pad(mask.astype(bool), 1)
    chi = 0
    for k in range(mask.ndim + 1):
        for along in itertools.combinations(range(mask.ndim), k):
            present = np.zeros([s - 1 for s in padded.shape], bool)
            for offset in itertools.product((0, 1), repeat=mask.ndim):
                if any(offset[a] for a in along):
                    continue  # along its own axes a cell touches a single voxel
                index = tuple(slice(o, o + s - 1) for o, s in zip(offset, padded.shape))
                present |= padded[index]
            # Along its own axes, window index i covers padded voxel i, i.e. voxel i - 1:
            # dropping index 0 keeps only cells over real voxels.
            crop = tuple(slice(1, None) if a in along else slice(None) for a in range(mask.ndim))
            chi += (-1) ** k * int(np.count_nonzero(present[crop]))
    return chi


# --- Dice ----------------------------------------------------------------------------------


def test_dice_by_hand():
    assert dice_score([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5  # 2*1 / (2 + 2)
    assert dice_score([[1, 1], [1, 0]], [[1, 0], [0, 0]]) == 0.5  # 2*1 / (3 + 1)
    assert dice_score([[1, 1], [1, 1]], [[1, 1], [1, 0]]) == pytest.approx(6 / 7)
    assert dice_score(np.ones((2, 2, 2)), np.ones((2, 2, 2))) == 1.0


def test_dice_empty():
    empty = np.zeros((3, 3), bool)
    assert dice_score(empty, empty) == 1.0
    assert dice_score(empty, _mask((3, 3), [(1, 1)])) == 0.0
    assert dice_score(_mask((3, 3), [(1, 1)]), empty) == 0.0


# --- clDice --------------------------------------------------------------------------------


def test_cldice_identical():
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    assert cldice_score(ring, ring) == 1.0
    blob = np.zeros((12, 12), bool)
    blob[2:10, 3:9] = True
    assert cldice_score(blob, blob) == 1.0


def test_cldice_broken_line():
    # A 1-pixel line is its own skeleton. gt: 9 pixels; pred: the same with the middle gone.
    # Tprec = |S(pred) ∩ gt| / |S(pred)| = 8/8; Tsens = |S(gt) ∩ pred| / |S(gt)| = 8/9;
    # clDice = 2 * 1 * 8/9 / (1 + 8/9) = 16/17.
    gt = _line()
    pred = gt.copy()
    pred[2, 5] = False
    assert cldice_score(pred, gt) == pytest.approx(16 / 17)
    # The other way round, precision and sensitivity swap: same score.
    assert cldice_score(gt, pred) == pytest.approx(16 / 17)


def test_cldice_spurious_branch():
    # pred = the 9-pixel gt line plus a separate 5-pixel false line; both are 1 pixel thick,
    # so their own skeletons. Tprec = 9/14, Tsens = 9/9, clDice = 2 (9/14) / (1 + 9/14) = 18/23.
    gt = _line(shape=(7, 11), row=2, start=1, stop=10)
    pred = gt.copy()
    pred[5, 3:8] = True
    assert cldice_score(pred, gt) == pytest.approx(18 / 23)
    assert cldice_score(gt, pred) == pytest.approx(18 / 23)


def test_cldice_thick_prediction_of_thin_gt():
    # A 3-pixel-wide bar over a thin gt: Dice = 2*10 / (30 + 10) = 0.5 whatever the row, and
    # Tsens = 1 since the gt lies in the bar. When gt is the bar's centre row, the bar's
    # skeleton lies (almost) on it and clDice is high; when gt is the bar's top row, the
    # skeleton misses it and clDice drops below Dice.
    pred = np.zeros((7, 12), bool)
    pred[2:5, 1:11] = True
    centred = _line(shape=(7, 12), row=3, start=1, stop=11)
    edge = _line(shape=(7, 12), row=2, start=1, stop=11)
    assert dice_score(pred, centred) == dice_score(pred, edge) == 0.5
    assert cldice_score(pred, centred) > 0.8
    assert cldice_score(pred, edge) < 0.5


def test_cldice_empty():
    empty = np.zeros((5, 5), bool)
    line = _line(shape=(5, 5), start=1, stop=4)
    assert cldice_score(empty, empty) == 1.0
    assert cldice_score(line, empty) == 0.0
    assert cldice_score(empty, line) == 0.0
    # Disjoint non-empty masks: both ratios 0.
    assert cldice_score(line, np.roll(line, 2, axis=0)) == 0.0


def test_cldice_3d():
    # A 1-voxel line along the last axis is its own skeleton in 3-D as well.
    gt = np.zeros((5, 5, 11), bool)
    gt[2, 2, 1:10] = True
    pred = gt.copy()
    pred[2, 2, 5] = False
    assert cldice_score(gt, gt) == 1.0
    assert cldice_score(pred, gt) == pytest.approx(16 / 17)
    tube = np.zeros((9, 9, 16), bool)
    tube[3:6, 3:6, 1:15] = True
    assert cldice_score(tube, tube) == 1.0
    # Cutting the tube removes the middle of its centreline from the prediction.
    cut = tube.copy()
    cut[:, :, 7:9] = False
    assert cldice_score(cut, tube) < 1.0


# --- Betti numbers, 2-D --------------------------------------------------------------------


def test_betti_2d_two_blobs():
    mask = np.zeros((8, 8), bool)
    mask[1:3, 1:3] = True
    mask[5:7, 4:7] = True
    assert betti_numbers(mask) == (2, 0)


def test_betti_2d_annulus():
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    mask[3:6, 3:6] = False
    assert betti_numbers(mask) == (1, 1)


def test_betti_2d_figure_eight():
    mask = np.zeros((5, 7), bool)
    mask[0:5, 0:7] = True
    mask[2, 1:3] = False
    mask[2, 4:6] = False
    assert betti_numbers(mask) == (1, 2)


def test_betti_2d_diagonal_conventions():
    # Two pixels touching only at a corner are one component (8-connected foreground).
    assert betti_numbers(_mask((4, 4), [(1, 1), (2, 2)])) == (1, 0)
    # A diamond closed only diagonally: the centre reaches the outside only diagonally, which
    # does not count for the 4-connected background, so it is a hole.
    diamond = _mask((5, 5), [(1, 2), (2, 1), (2, 3), (3, 2)])
    assert betti_numbers(diamond) == (1, 1)
    # A ring with one diagonal gap in its corner: still closed, still one hole.
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    ring[1, 1] = False  # corner pixel removed: its two neighbours still touch diagonally
    assert betti_numbers(ring) == (1, 1)
    # A gap in a side (4-connected opening) opens the hole.
    ring[1, 3] = False
    assert betti_numbers(ring) == (1, 0)


def test_betti_2d_border():
    # A U touching the border: the opening at the edge leads outside the image, so no hole.
    mask = np.zeros((5, 5), bool)
    mask[0:4, 1] = mask[0:4, 3] = True
    mask[3, 1:4] = True
    assert betti_numbers(mask) == (1, 0)
    # A ring made of the border itself does enclose its centre.
    frame = np.ones((5, 5), bool)
    frame[1:4, 1:4] = False
    assert betti_numbers(frame) == (1, 1)
    assert betti_numbers(np.ones((4, 4), bool)) == (1, 0)
    assert betti_numbers(np.zeros((4, 4), bool)) == (0, 0)


def test_betti_2d_several_objects_and_holes():
    mask = np.zeros((12, 20), bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False  # annulus: 1 component, 1 hole
    mask[1:10, 8:12] = True
    mask[2, 9] = mask[5, 10] = mask[8, 9] = False  # 1 component, 3 holes
    mask[10, 15] = True  # single pixel
    assert betti_numbers(mask) == (3, 4)


# --- Betti numbers, 3-D --------------------------------------------------------------------


def test_betti_3d_solid_cubes():
    vol = np.zeros((6, 6, 10), bool)
    vol[1:4, 1:4, 1:4] = True
    assert betti_numbers(vol) == (1, 0, 0)
    vol[1:4, 1:4, 6:9] = True
    assert betti_numbers(vol) == (2, 0, 0)
    # Cubes touching only at a corner: one component (26-connected foreground).
    corner = np.zeros((6, 6, 6), bool)
    corner[0:2, 0:2, 0:2] = True
    corner[2:4, 2:4, 2:4] = True
    assert betti_numbers(corner) == (1, 0, 0)


def test_betti_3d_solid_torus():
    vol = np.zeros((7, 7, 5), bool)
    vol[1:6, 1:6, 1:4] = True
    vol[3, 3, :] = False  # a hole through the block
    assert betti_numbers(vol) == (1, 1, 0)


def test_betti_3d_voxel_rings():
    ring = np.zeros((7, 7, 3), bool)
    ring[1:6, 1:6, 1] = True
    ring[2:5, 2:5, 1] = False  # a 1-voxel-thick square loop
    assert betti_numbers(ring) == (1, 1, 0)
    # A loop whose voxels touch only along edges still closes (26-connected foreground);
    # the centre is not a cavity, since it meets the outside through its faces above/below.
    diamond = _mask((5, 5, 3), [(1, 2, 1), (2, 1, 1), (2, 3, 1), (3, 2, 1)])
    assert betti_numbers(diamond) == (1, 1, 0)
    # A loop closed only through vertices (a skew square of voxels).
    skew = _mask((5, 5, 5), [(1, 1, 2), (2, 2, 1), (3, 3, 2), (2, 2, 3)])
    assert betti_numbers(skew) == (1, 1, 0)


def test_betti_3d_two_tunnels():
    vol = np.zeros((7, 9, 5), bool)
    vol[1:6, 1:8, 1:4] = True
    vol[3, 2, :] = False
    vol[3, 6, :] = False
    assert betti_numbers(vol) == (1, 2, 0)


def test_betti_3d_hollow_ball():
    vol = np.zeros((7, 7, 7), bool)
    vol[1:6, 1:6, 1:6] = True
    vol[2:5, 2:5, 2:5] = False
    assert betti_numbers(vol) == (1, 0, 1)
    # Remove a shell voxel on an edge: the cavity meets it only along an edge, closed for the
    # 6-connected background, so the cavity remains.
    vol[1, 1, 3] = False
    assert betti_numbers(vol) == (1, 0, 1)
    # Remove a shell voxel on a face: the cavity opens (a sphere with a hole is a disc).
    vol[3, 3, 1] = False
    assert betti_numbers(vol) == (1, 0, 0)


def test_betti_3d_hollow_torus():
    # A thick torus (block with a 3x3 hole through it) with a ring-shaped cavity inside:
    # the surface of a torus, beta = (1, 2, 1).
    vol = np.zeros((11, 11, 7), bool)
    vol[1:10, 1:10, 1:6] = True
    vol[4:7, 4:7, :] = False
    vol[2:9, 2:9, 3] = False
    vol[3:8, 3:8, 3] = True  # the wall around the through-hole stays solid
    vol[4:7, 4:7, 3] = False
    assert betti_numbers(vol) == (1, 2, 1)


def test_betti_3d_border_and_empty():
    # A cup open at the volume's border: no cavity.
    vol = np.zeros((5, 5, 4), bool)
    vol[:, :, 0:4] = True
    vol[1:4, 1:4, 1:4] = False
    assert betti_numbers(vol) == (1, 0, 0)
    assert betti_numbers(np.zeros((3, 3, 3), bool)) == (0, 0, 0)
    assert betti_numbers(np.ones((3, 3, 3), bool)) == (1, 0, 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_betti_matches_independent_euler(ndim):
    # beta0 - beta1 (+ beta2) must equal the Euler characteristic of the union of closed
    # cells, counted independently; in 2-D this checks both labelling conventions at once.
    rng = np.random.default_rng(0)
    shape = (12, 12) if ndim == 2 else (7, 7, 7)
    for density in (0.3, 0.5, 0.7):
        for _ in range(10):
            mask = rng.random(shape) < density
            betti = betti_numbers(mask)
            assert min(betti) >= 0
            alternating = sum((-1) ** i * b for i, b in enumerate(betti))
            assert alternating == _cubical_euler(mask), (density, betti)


def test_cubical_euler_helper():
    # The helper itself, on shapes whose Euler characteristic is known.
    square = np.ones((3, 3), bool)
    assert _cubical_euler(square) == 1
    square[1, 1] = False
    assert _cubical_euler(square) == 0
    ball = np.ones((3, 3, 3), bool)
    ball[1, 1, 1] = False
    assert _cubical_euler(ball) == 2


# --- Betti errors --------------------------------------------------------------------------


def test_betti_errors_2d():
    gt = _line()
    broken = gt.copy()
    broken[2, 3] = broken[2, 6] = False  # three pieces
    assert betti_errors(broken, gt) == {"betti0": 2, "betti1": 0}
    annulus = np.zeros((9, 9), bool)
    annulus[1:8, 1:8] = True
    annulus[3:6, 3:6] = False
    filled = np.zeros((9, 9), bool)
    filled[1:8, 1:8] = True
    assert betti_errors(filled, annulus) == {"betti0": 0, "betti1": 1}
    assert betti_errors(np.zeros((9, 9), bool), annulus) == {"betti0": 1, "betti1": 1}
    assert betti_errors(annulus, annulus) == {"betti0": 0, "betti1": 0}


def test_betti_errors_3d():
    torus = np.zeros((7, 7, 5), bool)
    torus[1:6, 1:6, 1:4] = True
    torus[3, 3, :] = False
    two_cubes = np.zeros((7, 7, 5), bool)
    two_cubes[1:3, 1:3, 1:3] = True
    two_cubes[4:6, 4:6, 1:3] = True
    assert betti_errors(two_cubes, torus) == {"betti0": 1, "betti1": 1, "betti2": 0}
    hollow = np.zeros((7, 7, 5), bool)
    hollow[1:6, 1:6, 1:4] = True
    hollow[3, 3, 2] = False
    assert betti_errors(hollow, torus) == {"betti0": 0, "betti1": 1, "betti2": 1}


# --- multi-class scores and the accumulator ------------------------------------------------


def _two_lines(shape=(6, 6)):
    labels = np.zeros(shape, int)
    labels[1, 1:5] = 1
    labels[4, 1:5] = 1
    return labels


def test_segmentation_scores_binary():
    gt = _two_lines()
    pred = gt.copy()
    pred[4] = 0  # one of the two lines is missed
    scores = segmentation_scores(pred, gt, classes=1)
    (row,) = scores["per_class"]
    # Dice = 2*4 / (4 + 8); Tprec = 4/4, Tsens = 4/8, clDice = 2 * 0.5 / 1.5; beta0 1 vs 2.
    assert row["class"] == 1 and row["present"] is True
    assert row["dice"] == pytest.approx(2 / 3)
    assert row["cldice"] == pytest.approx(2 / 3)
    assert (row["betti0"], row["betti1"]) == (1, 0)
    assert scores["dice"] == pytest.approx(2 / 3) and scores["betti0"] == 1
    # bool input is the binary case.
    assert segmentation_scores(pred > 0, gt > 0, classes=1)["dice"] == pytest.approx(2 / 3)


def test_segmentation_scores_multiclass_present_and_absent():
    gt = np.zeros((8, 8), int)
    gt[1, 1:6] = 1
    gt[4:7, 1:4] = 2
    pred = np.zeros_like(gt)
    pred[1, 1:6] = 1  # class 1 exact; class 2 missed; class 3 in neither
    scores = segmentation_scores(pred, gt, classes=3)
    rows = {row["class"]: row for row in scores["per_class"]}
    same = dict(precision=1.0, recall=1.0)
    assert rows[1] == {"class": 1, "present": True, "dice": 1.0, "cldice": 1.0, "betti0": 0, "betti1": 0, **same}
    # Class 2 missed: nothing predicted (precision 1 by convention), nothing found (recall 0).
    assert rows[2] == {"class": 2, "present": True, "dice": 0.0, "cldice": 0.0, "betti0": 1, "betti1": 0,
                       "precision": 1.0, "recall": 0.0}
    assert rows[3] == {"class": 3, "present": False, "dice": 1.0, "cldice": 1.0, "betti0": 0, "betti1": 0, **same}
    assert scores["dice"] == pytest.approx(2 / 3)
    assert scores["cldice"] == pytest.approx(2 / 3)
    assert scores["betti0"] == pytest.approx(1 / 3)
    assert scores["betti1"] == 0
    assert "betti2" not in scores


def test_segmentation_scores_3d():
    gt = np.zeros((7, 7, 5), int)
    gt[1:6, 1:6, 1:4] = 1
    gt[3, 3, :] = 0  # a torus
    pred = gt.copy()
    pred[3, 3, 1:4] = 1  # hole filled
    scores = segmentation_scores(pred, gt, classes=1)
    row = scores["per_class"][0]
    assert (row["betti0"], row["betti1"], row["betti2"]) == (0, 1, 0)
    assert row["dice"] == pytest.approx(2 * 72 / (75 + 72))
    assert scores["betti2"] == 0


def test_accumulator_means_by_hand():
    ring = np.zeros((6, 6), int)
    ring[1:5, 1:5] = 1
    ring[2:4, 2:4] = 0
    gt2 = _two_lines()
    pred2 = gt2.copy()
    pred2[4] = 0
    acc = SegmentationAccumulator(classes=1)
    first = acc.update(ring, ring, image_id="ring")
    assert first["id"] == "ring" and first["dice"] == 1.0
    acc.update(pred2, gt2)
    assert len(acc) == 2
    result = acc.result()
    # image 1: dice 1, clDice 1, errors 0; image 2: dice 2/3, clDice 2/3, beta0 error 1.
    assert result["n_images"] == 2 and result["classes"] == 1
    assert result["dice"] == pytest.approx(5 / 6)
    assert result["cldice"] == pytest.approx(5 / 6)
    assert result["betti0"] == pytest.approx(0.5)
    assert result["betti1"] == 0
    (row,) = result["per_class"]
    assert row["dice"] == pytest.approx(5 / 6) and row["n_present"] == 2
    assert [image["id"] for image in result["per_image"]] == ["ring", 1]
    acc.reset()
    assert len(acc) == 0
    with pytest.raises(ValueError, match="before any update"):
        acc.result()


def test_accumulator_multiclass():
    gt_a = np.zeros((8, 8), int)
    gt_a[1, 1:6] = 1
    gt_a[5, 1:6] = 2
    pred_a = gt_a.copy()  # perfect
    gt_b = np.zeros((8, 8), int)
    gt_b[1, 1:6] = 1  # class 2 absent from image b ...
    pred_b = np.zeros_like(gt_b)
    pred_b[5, 1:6] = 2  # ... and class 1 missed, class 2 predicted where there is none
    acc = SegmentationAccumulator(classes=2)
    acc.update(pred_a, gt_a)
    acc.update(pred_b, gt_b)
    result = acc.result()
    class1, class2 = result["per_class"]
    # class 1: image a dice 1, image b dice 0 -> 0.5; beta0 errors 0 and 1 -> 0.5.
    assert class1["dice"] == 0.5 and class1["cldice"] == 0.5 and class1["betti0"] == 0.5
    # class 2: image a 1, image b (pred only) 0 -> 0.5; beta0 errors 0 and 1.
    assert class2["dice"] == 0.5 and class2["betti0"] == 0.5
    assert class1["n_present"] == class2["n_present"] == 2
    assert result["dice"] == 0.5 and result["betti1"] == 0


def test_accumulator_3d_and_rank_mixing():
    vol = np.zeros((5, 5, 5), int)
    vol[1:4, 1:4, 1:4] = 1
    vol[2, 2, 2] = 0  # cavity
    filled = (np.pad(np.ones((3, 3, 3), int), 1))
    acc = SegmentationAccumulator(classes=1)
    acc.update(filled, vol)
    result = acc.result()
    assert result["betti2"] == 1 and result["betti0"] == 0 and result["betti1"] == 0
    with pytest.raises(ValueError, match="2-D but the images added so far are 3-D"):
        acc.update(np.zeros((5, 5), int), np.zeros((5, 5), int))
    assert len(acc) == 1


# --- input errors --------------------------------------------------------------------------


def test_errors_rank_and_shape():
    with pytest.raises(ValueError, match="2-D image .* got 1-D"):
        betti_numbers(np.zeros(5, bool))
    with pytest.raises(ValueError, match="got 4-D"):
        cldice_score(np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        betti_errors(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="same shape"):
        dice_score(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="pred_labels and gt_labels must have the same shape"):
        segmentation_scores(np.zeros((4, 4), int), np.zeros((4, 5), int), classes=1)
    with pytest.raises(ValueError, match="gt_labels must be a 2-D label image"):
        SegmentationAccumulator(2).update(np.zeros((4, 4), int), np.zeros((1, 4, 4, 1), int))


def test_errors_values():
    with pytest.raises(ValueError, match="threshold probabilities"):
        dice_score(np.full((3, 3), 0.4), np.zeros((3, 3)))
    labels = np.zeros((4, 4), int)
    bad = labels.copy()
    bad[0, 0] = 3
    with pytest.raises(ValueError, match=r"pred_labels has labels out of range: found 0\.\.3"):
        segmentation_scores(bad, labels, classes=2)
    with pytest.raises(ValueError, match="gt_labels has labels out of range"):
        segmentation_scores(labels, -bad, classes=3)
    with pytest.raises(ValueError, match="non-integer"):
        segmentation_scores(np.full((4, 4), 0.5), labels, classes=1)
    for classes in (0, 1.5, True):
        with pytest.raises(ValueError, match="classes must be an int"):
            SegmentationAccumulator(classes)
    acc = SegmentationAccumulator(2)
    with pytest.raises(ValueError, match="out of range"):
        acc.update(bad * 2, labels)
    assert len(acc) == 0  # a rejected image is not counted
    # Float labels with integer values are accepted.
    assert segmentation_scores(labels.astype(float), labels, classes=1)["dice"] == 1.0


def test_pixel_precision_and_recall_by_hand():
    gt = np.zeros((6, 6), int)
    gt[2, 0:4] = 1  # 4 pixels
    pred = np.zeros_like(gt)
    pred[2, 2:6] = 1  # 4 pixels, 2 of them right
    pred[5, 5] = 1  # one more wrong pixel
    row = segmentation_scores(pred, gt, classes=1)["per_class"][0]
    assert row["precision"] == pytest.approx(2 / 5) and row["recall"] == pytest.approx(2 / 4)
