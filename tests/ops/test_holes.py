"""Tests for keras_skel.ops.holes: exact against scipy (all holes) and a label/area reference."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi
from skimage.draw import ellipse, line, polygon

from keras_skel.ops.holes import fill_holes

SIZES = [(37, 53), (64, 64), (101, 80), (1, 57), (57, 1), (3, 40), (2, 2), (96, 128)]
MASKS_PER_SIZE = 24


def _fill_small_holes(mask, max_area):
    """NumPy reference: fill 4-connected background components off the border, area < max_area."""
    labels, _ = ndi.label(~mask)  # default structure: 4-connectivity in 2-D
    area = np.bincount(labels.ravel())
    touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    hole = (labels > 0) & ~np.isin(labels, touching) & (area[labels] < max_area)
    return mask | hole


def _reference(masks, max_area=None):
    masks = np.asarray(masks).astype(bool)
    if max_area is None:
        return np.stack([ndi.binary_fill_holes(m) for m in masks]).astype(np.uint8)
    return np.stack([_fill_small_holes(m, max_area) for m in masks]).astype(np.uint8)


def _blob(rng, h, w):
    smooth = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.7, 4.0))
    return smooth > np.quantile(smooth, rng.uniform(0.2, 0.8))


def _rings(rng, h, w):
    """Filled ellipses with elliptic holes, some with islands, sometimes cut by the border."""
    rows, cols = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, max(3, h / 2)), rng.uniform(2, max(3, w / 2))
        d = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2
        mask |= ((d < 1) & (d > rng.uniform(0.1, 0.6))) | (d < rng.uniform(0.0, 0.05))
    return mask


def _polygon_outlines(rng, h, w):
    """1-px polygon outlines (8-connected lines): holes that leak diagonally in 4-connectivity."""
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        n = rng.integers(3, 7)
        r, c = rng.integers(0, h, n), rng.integers(0, w, n)
        for k in range(n):
            mask[line(r[k], c[k], r[(k + 1) % n], c[(k + 1) % n])] = True
    return mask


def _polygons(rng, h, w):
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        n = rng.integers(3, 8)
        rr, cc = polygon(rng.uniform(-2, h + 2, n), rng.uniform(-2, w + 2, n), shape=(h, w))
        mask[rr, cc] = True
    return mask ^ (rng.random((h, w)) < 0.05)  # speckle: tiny holes and islands


def _noise(rng, h, w):
    """Sparse to dense noise: many tiny holes, and near percolation, long winding ones."""
    return rng.random((h, w)) < rng.uniform(0.3, 0.8)


_GENERATORS = [_blob, _rings, _polygon_outlines, _polygons, _noise]


def _random_masks(seed, h, w, n):
    rng = np.random.default_rng(seed)
    return np.stack([_GENERATORS[i % len(_GENERATORS)](rng, h, w) for i in range(n)])


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_all_holes_exact_against_scipy(size):
    h, w = size
    masks = _random_masks(seed=h * 1000 + w, h=h, w=w, n=MASKS_PER_SIZE)
    got = fill_holes(masks).numpy()
    assert got.dtype == np.uint8 and got.shape == masks.shape
    expected = _reference(masks)
    mismatched = [i for i in range(len(masks)) if not np.array_equal(got[i], expected[i])]
    assert not mismatched, f"{len(mismatched)} of {len(masks)} {h}x{w} masks differ: {mismatched}"


@pytest.mark.parametrize("max_area", [0, 1, 2, 5, 16, 100])
def test_small_holes_exact_against_label_reference(max_area):
    for h, w in [(37, 53), (64, 64), (3, 40)]:
        masks = _random_masks(seed=h * 7 + w + max_area, h=h, w=w, n=MASKS_PER_SIZE)
        np.testing.assert_array_equal(
            fill_holes(masks, max_area=max_area).numpy(), _reference(masks, max_area)
        )


def test_random_masks_have_holes_of_many_areas():
    # Guards the strength of the comparisons above.
    masks = _random_masks(seed=64 * 1000 + 64, h=64, w=64, n=MASKS_PER_SIZE)
    areas = set()
    for m in masks:
        labels, _ = ndi.label(~m)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        counts = np.bincount(labels.ravel())
        areas |= {int(counts[k]) for k in range(1, len(counts)) if k not in border}
    assert {1, 2, 3, 4} <= areas and max(areas) > 100


def _picture(text):
    return np.array([[c == "#" for c in row] for row in text.split()], np.uint8)


def test_golden_and_area_threshold_boundary():
    ring = _picture(
        """
        #######.
        #...#.#.
        #.#.###.
        #...#...
        #####.#.
        ....###.
        """
    )
    # Two holes: 8 px around the island at (2, 2), and 1 px at (1, 5). The background at
    # (3, 5), (3, 6) and (4, 5) reaches the border through column 7: not a hole.
    all_filled = ring.copy()
    all_filled[1:4, 1:4] = 1
    all_filled[1, 5] = 1
    np.testing.assert_array_equal(fill_holes(ring).numpy(), all_filled)
    only_small = ring.copy()
    only_small[1, 5] = 1
    np.testing.assert_array_equal(fill_holes(ring, max_area=8).numpy(), only_small)  # 8 kept
    np.testing.assert_array_equal(fill_holes(ring, max_area=9).numpy(), all_filled)  # 8 < 9
    np.testing.assert_array_equal(fill_holes(ring, max_area=2).numpy(), only_small)  # 1 < 2
    np.testing.assert_array_equal(fill_holes(ring, max_area=1).numpy(), ring)  # 1 kept
    for max_area in (None, 1, 2, 8, 9):
        np.testing.assert_array_equal(
            fill_holes(ring, max_area=max_area).numpy(), _reference(ring[None], max_area)[0]
        )


@pytest.mark.parametrize("area", [1, 2, 7, 15, 16, 17, 40])
def test_threshold_boundary_for_hole_of_each_area(area):
    mask = np.ones((12, 50), np.uint8)
    mask[5, 2 : 2 + area] = 0  # one straight hole of `area` px
    filled = np.ones_like(mask)
    np.testing.assert_array_equal(fill_holes(mask, max_area=area + 1).numpy(), filled)
    np.testing.assert_array_equal(fill_holes(mask, max_area=area).numpy(), mask)
    np.testing.assert_array_equal(fill_holes(mask).numpy(), filled)


def test_holes_touching_the_border_are_not_holes():
    mask = np.ones((9, 9), np.uint8)
    mask[0, 4] = 0  # on the border
    mask[3:6, 8] = 0  # on the border, 3 px
    mask[8, 0] = 0  # corner
    mask[1:8, 1:3] = 0  # a hole of 14 px ...
    mask[0, 1] = 0  # ... opened to the border by this pixel
    np.testing.assert_array_equal(fill_holes(mask).numpy(), mask)
    np.testing.assert_array_equal(fill_holes(mask, max_area=100).numpy(), mask)


def test_diagonal_leaks_do_not_connect_background():
    # 4-connected background: a hole touching the border background only at a corner is a hole.
    mask = _picture(
        """
        .####
        #...#
        #...#
        ####.
        """
    )
    expected = np.ones_like(mask)
    expected[0, 0] = expected[3, 4] = 0
    np.testing.assert_array_equal(fill_holes(mask).numpy(), expected)
    np.testing.assert_array_equal(expected, ndi.binary_fill_holes(mask))


def test_nested_shapes():
    """A disk in a hole of a ring, in a hole of another ring: all holes counted without islands."""
    mask = np.zeros((41, 41), np.uint8)
    for radius, value in [(18, 1), (14, 0), (10, 1), (6, 0), (2, 1)]:
        mask[ellipse(20, 20, radius, radius)] = value
    inner_hole = (ellipse(20, 20, 6, 6)[0].size) - ellipse(20, 20, 2, 2)[0].size
    outer_hole = (ellipse(20, 20, 14, 14)[0].size) - ellipse(20, 20, 10, 10)[0].size
    disk = np.zeros_like(mask)
    disk[ellipse(20, 20, 18, 18)] = 1
    np.testing.assert_array_equal(fill_holes(mask).numpy(), disk)
    only_inner = mask.copy()
    only_inner[ellipse(20, 20, 6, 6)] = 1
    np.testing.assert_array_equal(fill_holes(mask, max_area=inner_hole + 1).numpy(), only_inner)
    np.testing.assert_array_equal(fill_holes(mask, max_area=inner_hole).numpy(), mask)
    np.testing.assert_array_equal(fill_holes(mask, max_area=outer_hole + 1).numpy(), disk)
    for max_area in (None, inner_hole, inner_hole + 1, outer_hole, outer_hole + 1):
        np.testing.assert_array_equal(
            fill_holes(mask, max_area=max_area).numpy(), _reference(mask[None], max_area)[0]
        )


def _spiral(n):
    """A square spiral wall whose 1-px background corridor winds from the border to the centre."""
    mask = np.zeros((n, n), bool)
    y = x = n // 2
    step, k = 2, 0
    while True:
        dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0)][k % 4]
        for _ in range(step):
            if not (0 <= y < n and 0 <= x < n):
                return mask
            mask[y, x] = True
            y, x = y + dy, x + dx
        k += 1
        step += 2 * (k % 2 == 0)


def _serpentine(n):
    """A framed maze whose 1-px background corridor zig-zags from an entrance at (1, 0)."""
    mask = np.zeros((n, n), bool)
    mask[[0, -1], :] = mask[:, [0, -1]] = True
    mask[2:-2:2, :] = True  # walls between the corridors on odd rows ...
    mask[2:-2:4, -2] = False  # ... with a gap at the right end,
    mask[4:-2:4, 1] = False  # ... then at the left end
    mask[1, 0] = False
    return mask


@pytest.mark.parametrize("make", [_spiral, _serpentine], ids=["spiral", "serpentine"])
def test_long_winding_corridors(make):
    """Corridors of ~n²/2 px, open to the border, or closed into one hole by a frame."""
    open_ = make(127)
    closed = open_.copy()
    closed[[0, -1], :] = closed[:, [0, -1]] = True
    masks = np.stack([open_, closed])
    assert ndi.label(~closed)[1] == 1  # one hole
    np.testing.assert_array_equal(fill_holes(masks).numpy(), _reference(masks))
    hole_area = int((~closed).sum())
    assert hole_area > 4000
    np.testing.assert_array_equal(
        fill_holes(masks, max_area=hole_area).numpy(), masks.astype(np.uint8)
    )
    np.testing.assert_array_equal(
        fill_holes(masks, max_area=hole_area + 1).numpy(), _reference(masks)
    )


def _single(shape, value, at):
    mask = np.full(shape, 1 - value, np.uint8)
    mask[at] = value
    return mask


EDGE_CASES = {
    "empty": np.zeros((6, 7), np.uint8),
    "full": np.ones((6, 7), np.uint8),
    "single-pixel": _single((7, 9), 1, (3, 4)),
    "single-background-pixel": _single((9, 7), 0, (4, 2)),
    "single-background-on-border": _single((9, 7), 0, (8, 3)),
    "1x1-background": np.zeros((1, 1), np.uint8),
    "1x1-foreground": np.ones((1, 1), np.uint8),
    "one-px-lines": ((np.indices((11, 12)) % 3) == 0).any(0).astype(np.uint8),
    "checkerboard": (np.indices((8, 9)).sum(0) % 2).astype(np.uint8),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
@pytest.mark.parametrize("max_area", [None, 1, 2, 16])
def test_edge_cases(name, max_area):
    mask = EDGE_CASES[name]
    expected = _reference(mask[None].astype(bool), max_area)[0]
    np.testing.assert_array_equal(fill_holes(mask, max_area=max_area).numpy(), expected)


def test_batch_of_different_contents_is_per_image():
    masks = _random_masks(seed=9, h=30, w=41, n=6)
    masks[1] = True
    masks[2] = False
    masks[3] = _single((30, 41), 0, (15, 20)).astype(bool)
    for max_area in (None, 4):
        np.testing.assert_array_equal(
            fill_holes(masks, max_area=max_area).numpy(), _reference(masks, max_area)
        )


def test_empty_dimensions():
    for shape in [(0, 5), (5, 0), (0, 4, 5), (3, 0, 5), (2, 4, 0, 1)]:
        got = fill_holes(np.zeros(shape, np.uint8), max_area=3)
        assert got.shape == shape and got.dtype == tf.uint8


@pytest.mark.parametrize(
    "dtype",
    [bool, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64],
    ids=lambda d: np.dtype(d).name,
)
def test_any_dtype_nonzero_is_foreground(dtype):
    masks = _random_masks(seed=11, h=23, w=31, n=5)
    values = masks.astype(dtype)
    if dtype not in (bool, np.uint8):
        values = values * np.asarray(-0.5 if np.issubdtype(dtype, np.floating) else -3, dtype)
    np.testing.assert_array_equal(fill_holes(values).numpy(), _reference(masks))


def test_tf_function_with_unknown_dims_and_tensor_area():
    fn = tf.function(
        fill_holes,
        input_signature=[tf.TensorSpec([None, None, None], tf.uint8), tf.TensorSpec([], tf.int32)],
    )
    for h, w, seed, max_area in [(37, 53, 1, 3), (80, 41, 2, 10), (1, 17, 3, 5)]:
        masks = _random_masks(seed, h, w, n=5)
        np.testing.assert_array_equal(
            fn(masks.astype(np.uint8), max_area).numpy(), _reference(masks, max_area)
        )
    assert fn.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["float32", "uint8"])
def test_converts_to_tflite_builtins_and_stays_exact(dtype):
    from ai_edge_litert.interpreter import Interpreter

    h, w = 40, 33

    @tf.function(input_signature=[tf.TensorSpec([3, h, w, 1], tf.as_dtype(dtype))])
    def fill(images):
        return {"all": fill_holes(images), "small": fill_holes(images, max_area=5)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fill.get_concrete_function()], fill)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    masks = _random_masks(seed=13, h=h, w=w, n=3)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], masks[..., None].astype(dtype))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"])[..., 0] for d in interpreter.get_output_details()]
    expected = [_reference(masks), _reference(masks, 5)]
    # The converter may reorder the outputs; each must match one reference, and both be used.
    matched = sorted(
        next(k for k, e in enumerate(expected) if np.array_equal(o, e)) for o in outputs
    )
    assert matched == [0, 1]


def test_saved_model_round_trip_with_dynamic_shapes(tmp_path):
    module = tf.Module()
    module.fill = tf.function(
        fill_holes,
        input_signature=[
            tf.TensorSpec([None, None, None, 1], tf.float32),
            tf.TensorSpec([], tf.int32),
        ],
    )
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for h, w, seed, max_area in [(37, 53, 21, 4), (64, 17, 22, 9)]:
        masks = _random_masks(seed, h, w, n=3)
        got = loaded.fill(masks[..., None].astype(np.float32), max_area).numpy()[..., 0]
        np.testing.assert_array_equal(got, _reference(masks, max_area))
