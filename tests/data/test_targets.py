"""Golden and invariant tests of the ground-truth rule (keras_skel.data.targets)."""

import numpy as np
import pytest
from skimage.morphology import skeletonize

from keras_skel.data.targets import (
    class_weight_map,
    distance_input,
    prune_terminal_branches,
    skeleton_target,
)


def _plus(short_arm: int = 5, long_arm: int = 25, size: int = 64) -> tuple[np.ndarray, tuple]:
    """A 1-px plus sign centred at (c, c): arms right, down, left long, arm up short."""
    sk = np.zeros((size, size), np.uint8)
    c = size // 2
    sk[c, c - long_arm : c + long_arm + 1] = 1
    sk[c : c + long_arm + 1, c] = 1
    sk[c - short_arm : c, c] = 1
    return sk, (c, c)


def test_plus_short_arm_removed_junction_kept():
    sk, (r, c) = _plus(short_arm=5, long_arm=25)
    out = prune_terminal_branches(sk, min_length=10)
    assert out.dtype == np.uint8
    assert out[r - 5 : r, c].sum() == 0, "short arm must go"
    assert out[r, c] == 1, "junction pixel stays"
    expected = sk.copy()
    expected[r - 5 : r, c] = 0
    np.testing.assert_array_equal(out, expected)


def test_plus_all_long_arms_unchanged():
    sk, _ = _plus(short_arm=20, long_arm=25)
    np.testing.assert_array_equal(prune_terminal_branches(sk, 10), sk)


def test_branch_distance_threshold_is_strict():
    # Arm of 10 pixels beyond the junction: skan branch_distance = 10 (junction to tip).
    sk, (r, c) = _plus(short_arm=10, long_arm=25)
    assert prune_terminal_branches(sk, min_length=10)[r - 10, c] == 1
    assert prune_terminal_branches(sk, min_length=10.5)[r - 10 : r, c].sum() == 0


def test_isolated_short_line_kept():
    sk = np.zeros((20, 20), np.uint8)
    sk[5, 5:9] = 1  # 4 px, no junction
    sk[12, 3] = 1  # isolated pixel
    np.testing.assert_array_equal(prune_terminal_branches(sk, 10), sk)
    np.testing.assert_array_equal(skeleton_target(sk), sk)


def test_cycle_only_skeleton_kept():
    ring = np.zeros((30, 30), np.uint8)
    ring[5:25, 5:25] = 1
    ring[8:22, 8:22] = 0
    target = skeleton_target(ring)
    sk = skeletonize(ring.astype(bool)).astype(np.uint8)
    np.testing.assert_array_equal(prune_terminal_branches(sk), sk)
    np.testing.assert_array_equal(target, sk)
    assert target.sum() > 40


def test_thick_rectangle_with_bump():
    shape = np.zeros((40, 120), np.uint8)
    shape[20:31, 10:111] = 1  # 11 x 101 bar, midline at row 25
    shape[16:20, 57:64] = 1  # 4 x 7 bump on top: the raw skeleton gets a ~7 px spur
    raw = skeletonize(shape.astype(bool))
    assert raw[:25, 50:70].sum() >= 5, "test premise: raw skeleton has a spur"
    target = skeleton_target(shape)
    assert target[:25, 50:70].sum() == 0, "spur towards the bump is pruned"
    assert target[25, 15:105].all(), "main axis kept"
    from scipy import ndimage as ndi

    assert ndi.label(target, structure=np.ones((3, 3)))[1] == 1
    np.testing.assert_array_equal(skeletonize(target.astype(bool)), target.astype(bool))


@pytest.mark.parametrize("func", [prune_terminal_branches, skeleton_target])
def test_empty_and_single_pixel(func):
    empty = np.zeros((9, 9), np.uint8)
    np.testing.assert_array_equal(func(empty), empty)
    one = empty.copy()
    one[4, 4] = 1
    np.testing.assert_array_equal(func(one), one)
    np.testing.assert_array_equal(func(np.zeros((0, 0))), np.zeros((0, 0), np.uint8))


def test_border_touching_shape():
    shape = np.ones((20, 40), bool)
    target = skeleton_target(shape)
    assert target.sum() > 0 and target.shape == shape.shape


def test_target_is_one_pixel_wide_on_varied_shapes():
    rng = np.random.default_rng(0)
    from scipy import ndimage as ndi

    for _ in range(10):
        noise = ndi.gaussian_filter(rng.standard_normal((96, 96)), 4)
        shape = noise > 0.02
        target = skeleton_target(shape)
        assert target.dtype == np.uint8 and set(np.unique(target)) <= {0, 1}
        assert np.array_equal(skeletonize(target.astype(bool)), target.astype(bool))
        assert not (target.astype(bool) & ~shape).any(), "skeleton stays inside the shape"


def test_accepts_bool_and_numeric():
    shape = np.zeros((30, 30), np.float64)
    shape[5:25, 12:18] = 0.7
    np.testing.assert_array_equal(skeleton_target(shape), skeleton_target(shape > 0))


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((4, 4, 1)), np.zeros((2, 4, 4))])
def test_wrong_rank_raises(bad):
    for func in (skeleton_target, prune_terminal_branches, distance_input):
        with pytest.raises(ValueError, match="2-D"):
            func(bad)


def test_distance_input():
    shape = np.zeros((7, 7), np.uint8)
    shape[1:6, 1:6] = 1
    raw = distance_input(shape, normalize=False)
    assert raw.dtype == np.float32
    assert raw[3, 3] == 3.0 and raw[1, 1] == 1.0 and raw[0, 0] == 0.0
    norm = distance_input(shape)
    assert norm.max() == 1.0 and norm[1, 1] == pytest.approx(1 / 3)
    empty = distance_input(np.zeros((4, 4)))
    assert empty.dtype == np.float32 and not empty.any()


def test_class_weight_map():
    sk = np.array([[0, 1, 0], [0, 0, 2]])
    w = class_weight_map(sk, w_pos=10.0, w_neg=0.5)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [[0.5, 10.0, 0.5], [0.5, 0.5, 10.0]])
