import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import diamond, octahedron, skeletonize

from keras_skel.data.targets import tubed_skeleton


def test_thick_bar_gives_a_tube_of_five_rows():
    labels = np.zeros((15, 40), np.uint8)
    labels[4:11, 5:35] = 2  # 7 rows thick, centre row 7
    tube = tubed_skeleton(labels)
    # Away from the ends the skeleton is row 7; a diamond of radius 2 covers rows 5..9.
    assert np.flatnonzero(tube[:, 20]).tolist() == [5, 6, 7, 8, 9]
    assert set(np.unique(tube)) == {0, 2}


def test_one_pixel_line_is_its_own_tube():
    labels = np.zeros((9, 20), np.uint8)
    labels[4, 2:18] = 1
    np.testing.assert_array_equal(tubed_skeleton(labels), labels)


def test_radius_zero_is_the_skeleton_with_its_classes():
    labels = np.zeros((15, 40), np.uint8)
    labels[4:11, 5:35] = 3
    np.testing.assert_array_equal(tubed_skeleton(labels, radius=0), skeletonize(labels > 0) * 3)


def test_multiclass_tube_takes_the_class_under_it():
    # Two touching bars of different classes form one structure: one skeleton, two classes.
    labels = np.zeros((20, 40), np.uint8)
    labels[7:12, 2:20] = 1
    labels[7:12, 20:38] = 2
    tube = tubed_skeleton(labels)
    assert set(np.unique(tube)) == {0, 1, 2}
    assert np.all((tube == 0) | (tube == labels))  # never another class, never outside
    assert (tube[:, :20] == 1).sum() > 0 and (tube[:, 20:] == 2).sum() > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_skimage_skeletonize_then_diamond_dilation(seed):
    rng = np.random.default_rng(seed)
    labels = (ndi.gaussian_filter(rng.random((48, 48)), 3) > 0.5).astype(np.uint8)
    labels[labels > 0] = rng.integers(1, 4, size=int(labels.sum()))
    reference = ndi.binary_dilation(skeletonize(labels > 0), structure=diamond(2)) * labels
    np.testing.assert_array_equal(tubed_skeleton(labels), reference)


def test_3d_rod_cross_section_is_an_octahedron_slice():
    labels = np.zeros((11, 11, 30), np.uint8)
    labels[3:8, 3:8, 2:28] = 1  # a 5x5 rod along the last axis, centre (5, 5)
    tube = tubed_skeleton(labels)
    section = tube[:, :, 15]
    # Voxels within L1 distance 2 of the centre: 1 + 4 + 8 = 13.
    assert section.sum() == 13
    assert section[5, 3] == 1 and section[4, 4] == 1 and section[3, 4] == 0


def test_3d_matches_reference_multiclass():
    rng = np.random.default_rng(3)
    labels = (ndi.gaussian_filter(rng.random((24, 24, 24)), 2) > 0.52).astype(np.uint8) * 2
    reference = ndi.binary_dilation(skeletonize(labels > 0), structure=octahedron(2)) * labels
    np.testing.assert_array_equal(tubed_skeleton(labels), reference)


def test_empty_and_bad_input():
    assert tubed_skeleton(np.zeros((5, 5), np.uint8)).sum() == 0
    with pytest.raises(ValueError, match="2-D .* or 3-D"):
        tubed_skeleton(np.zeros(5))
    with pytest.raises(ValueError, match="radius"):
        tubed_skeleton(np.zeros((5, 5)), radius=-1)
