"""Tests for keras_skel.ops.thinning: bit-identity with skimage's skeletonize, edge cases, ranks."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi
from skimage.draw import line, polygon
from skimage.morphology import disk, skeletonize

from keras_skel.ops.thinning import (
    _NEIGHBOUR_OFFSETS,
    _SKIMAGE_DEPARTURES,
    _code_of_picture,
    _skimage_removal,
    _zhang_suen_removal,
    thin,
)

# Odd, non-square and degenerate sizes; 32 shapes each.
SIZES = [(37, 53), (64, 64), (101, 80), (1, 57), (57, 1), (3, 40), (96, 128)]
SHAPES_PER_SIZE = 32


def _blob(rng, h, w):
    """Thresholded Gaussian-smoothed noise: smooth blobs, some with holes."""
    smooth = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(1.0, 4.0))
    return smooth > np.quantile(smooth, rng.uniform(0.2, 0.8))


def _polygons(rng, h, w):
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        n = rng.integers(3, 8)
        rr, cc = polygon(rng.uniform(-2, h + 2, n), rng.uniform(-2, w + 2, n), shape=(h, w))
        mask[rr, cc] = True
    return mask


def _thick_lines(rng, h, w):
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        r0, r1 = rng.integers(0, h, 2)
        c0, c1 = rng.integers(0, w, 2)
        mask[line(r0, c0, r1, c1)] = True
    return ndi.binary_dilation(mask, disk(int(rng.integers(1, 4))))


def _rings(rng, h, w):
    """Filled ellipses with elliptic holes, sometimes cut by the border."""
    rows, cols = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 3)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(3, max(4, h / 2)), rng.uniform(3, max(4, w / 2))
        d = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2
        mask |= (d < 1) & (d > rng.uniform(0.1, 0.6))
    return mask


def _noise(rng, h, w):
    """Dense salt noise: every 3×3 neighbourhood configuration occurs."""
    return rng.random((h, w)) < rng.uniform(0.3, 0.8)


_GENERATORS = [_blob, _polygons, _thick_lines, _rings, _noise]


def _random_masks(seed, h, w, n):
    rng = np.random.default_rng(seed)
    return np.stack([_GENERATORS[i % len(_GENERATORS)](rng, h, w) for i in range(n)])


def _skimage(masks):
    return np.stack([skeletonize(m) for m in masks]).astype(np.uint8)


def _neighbour_codes(mask):
    padded = np.pad(mask.astype(np.int64), 1)
    h, w = mask.shape
    code = np.zeros((h, w), np.int64)
    for k, (dy, dx) in enumerate(_NEIGHBOUR_OFFSETS):
        code += padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] << k
    return code[mask]


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_bit_identical_to_skimage(size):
    h, w = size
    masks = _random_masks(seed=h * 1000 + w, h=h, w=w, n=SHAPES_PER_SIZE)
    expected = _skimage(masks)
    got = thin(masks.astype(np.uint8)).numpy()
    assert got.dtype == np.uint8 and got.shape == masks.shape
    mismatched = [i for i in range(len(masks)) if not np.array_equal(got[i], expected[i])]
    assert not mismatched, f"{len(mismatched)} of {len(masks)} {h}x{w} shapes differ: {mismatched}"


def test_random_shapes_cover_every_neighbour_code():
    # Guards the strength of the comparison above: every table entry is looked up at least once.
    masks = _random_masks(seed=64 * 1000 + 64, h=64, w=64, n=SHAPES_PER_SIZE)
    codes = np.concatenate([_neighbour_codes(m) for m in masks])
    assert np.unique(codes).size == 256


def test_tf_function_with_unknown_dims_matches_skimage():
    fn = tf.function(thin, input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
    for h, w, seed in [(37, 53, 1), (80, 41, 2)]:
        masks = _random_masks(seed, h, w, n=10)
        np.testing.assert_array_equal(fn(masks.astype(np.uint8)).numpy(), _skimage(masks))
    assert fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "mask, expected",
    [
        (np.zeros((6, 7)), np.zeros((6, 7))),
        (np.pad([[1]], 2), np.pad([[1]], 2)),
        # 2×2 block: the bottom pair goes in sub-iteration 1, the top pair are then end points.
        # (The paper's table would erase the whole block.)
        (np.pad(np.ones((2, 2)), 1), np.pad([[1, 1], [0, 0]], 1)),
        # Full image: the border counts as background.
        (
            np.ones((5, 5)),
            [[0, 0, 0, 0, 0], [0, 0, 1, 1, 0], [0, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
        ),
    ],
    ids=["empty", "single-pixel", "2x2-block", "full"],
)
def test_golden(mask, expected):
    mask = np.asarray(mask, np.uint8)
    np.testing.assert_array_equal(thin(mask).numpy(), np.asarray(expected, np.uint8))
    np.testing.assert_array_equal(thin(mask).numpy(), skeletonize(mask).astype(np.uint8))


def _already_thin():
    horizontal = np.zeros((5, 9), np.uint8)
    horizontal[2, 1:8] = 1
    cross = np.zeros((9, 9), np.uint8)
    cross[4, 1:8] = 1
    cross[1:8, 4] = 1
    diagonal = np.eye(7, dtype=np.uint8)
    border_line = np.zeros((4, 6), np.uint8)
    border_line[0, :] = 1
    return {
        "horizontal": horizontal,
        "cross": cross,
        "diagonal": diagonal,
        "border-line": border_line,
    }


@pytest.mark.parametrize("name", list(_already_thin()))
def test_already_thin_is_unchanged(name):
    mask = _already_thin()[name]
    np.testing.assert_array_equal(thin(mask).numpy(), mask)


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 9), (9, 1), (2, 7), (7, 2), (3, 3), (16, 11)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_full_and_border_touching_images(shape):
    full = np.ones(shape, np.uint8)
    corners = np.zeros(shape, np.uint8)
    corners[0, 0] = corners[-1, -1] = corners[0, -1] = corners[-1, 0] = 1
    frame = np.ones(shape, np.uint8)
    frame[1:-1, 1:-1] = 0
    for mask in (full, corners, frame):
        np.testing.assert_array_equal(thin(mask).numpy(), skeletonize(mask).astype(np.uint8))


@pytest.mark.parametrize(
    "dtype",
    [bool, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64],
    ids=lambda d: np.dtype(d).name,
)
def test_any_dtype_nonzero_is_foreground(dtype):
    masks = _random_masks(seed=11, h=23, w=31, n=3)
    expected = _skimage(masks)
    values = masks.astype(dtype)
    if dtype not in (bool, np.uint8):
        # Any nonzero value is foreground, negative and fractional ones included.
        values = values * np.asarray(-0.5 if np.issubdtype(dtype, np.floating) else -3, dtype)
    got = thin(values)
    assert got.dtype == tf.uint8
    np.testing.assert_array_equal(got.numpy(), expected)


def test_paper_table_from_conditions():
    removal = _zhang_suen_removal()
    # 2 <= B <= 6 with A == 1: one run of 2..6 neighbours at one of 8 ring positions.
    assert (removal[0] | removal[1]).sum() == 8 * 5
    # The second sub-iteration is the first one turned by 180° (neighbour k -> k + 4).
    turned = [((code << 4) | (code >> 4)) & 255 for code in range(256)]
    np.testing.assert_array_equal(removal[1], removal[0][turned])


def test_departures_are_well_formed_and_all_differ_from_the_paper():
    paper, table = _zhang_suen_removal(), _skimage_removal()
    codes = [_code_of_picture(p) for p in _SKIMAGE_DEPARTURES]
    assert len(set(codes)) == len(codes)
    for picture in _SKIMAGE_DEPARTURES:
        rows = picture.split("/")
        assert len(rows) == 3 and all(len(r) == 3 and set(r) <= {"#", "."} for r in rows)
        assert rows[1][1] == "#"
    changed = np.flatnonzero((paper != table).any(axis=0))
    assert sorted(codes) == changed.tolist()


def test_bit_identical_on_200_project_synthetic_shapes():
    """The toolkit's own shape generator (all families, noisy inputs), odd and non-square sizes."""
    from keras_skel.data.synthetic import make_shape_sample

    total = 0
    for size in ((64, 64), (75, 53), (48, 97), (33, 33)):
        shapes = np.stack([make_shape_sample(11, i, size, noise=2.0)[0] for i in range(50)])
        ours = thin(shapes[..., None]).numpy()[..., 0]
        for got, shape in zip(ours, shapes):
            np.testing.assert_array_equal(got, skeletonize(shape.astype(bool)).astype(np.uint8))
            total += 1
    assert total == 200
