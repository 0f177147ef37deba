"""Tests for keras_skel.ops.edt: exact equality with scipy's EDT, edge cases, ranks, memory."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi
from skimage.draw import line, polygon

from keras_skel.ops.edt import distance_transform, squared_distance_transform

SIZES = [(37, 53), (64, 64), (101, 80), (1, 57), (57, 1), (3, 40), (2, 2), (96, 128), (257, 5), (6, 300)]
MASKS_PER_SIZE = 24


def _reference(mask):
    """scipy's squared EDT of one 2-D mask as exact integers (from its feature transform)."""
    _, (rows, cols) = ndi.distance_transform_edt(mask, return_indices=True)
    i, j = np.indices(mask.shape)
    return ((i - rows) ** 2 + (j - cols) ** 2).astype(np.int64)


def _references(masks):
    return np.stack([_reference(m) for m in masks])


def _blob(rng, h, w):
    smooth = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(1.0, 6.0))
    return smooth > np.quantile(smooth, rng.uniform(0.05, 0.95))


def _polygons(rng, h, w):
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        n = rng.integers(3, 8)
        rr, cc = polygon(rng.uniform(-2, h + 2, n), rng.uniform(-2, w + 2, n), shape=(h, w))
        mask[rr, cc] = True
    return mask


def _lines(rng, h, w):
    """1-px lines, foreground or (inverted) background."""
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 5)):
        r0, r1 = rng.integers(0, h, 2)
        c0, c1 = rng.integers(0, w, 2)
        mask[line(r0, c0, r1, c1)] = True
    return mask if rng.random() < 0.5 else ~mask


def _sparse_background(rng, h, w):
    """Few background pixels: long distances, many columns without background."""
    return rng.random((h, w)) > rng.uniform(0.0005, 0.01)


def _noise(rng, h, w):
    return rng.random((h, w)) < rng.uniform(0.1, 0.9)


_GENERATORS = [_blob, _polygons, _lines, _sparse_background, _noise]


def _random_masks(seed, h, w, n):
    rng = np.random.default_rng(seed)
    return np.stack([_GENERATORS[i % len(_GENERATORS)](rng, h, w) for i in range(n)])


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_exact_against_scipy(size):
    h, w = size
    masks = _random_masks(seed=h * 1000 + w, h=h, w=w, n=MASKS_PER_SIZE)
    got = squared_distance_transform(masks).numpy()
    assert got.dtype == np.int32 and got.shape == masks.shape
    expected = _references(masks)
    mismatched = [i for i in range(len(masks)) if not np.array_equal(got[i], expected[i])]
    assert not mismatched, f"{len(mismatched)} of {len(masks)} {h}x{w} masks differ: {mismatched}"


def test_exact_on_many_small_random_sizes():
    rng = np.random.default_rng(3)
    for _ in range(60):
        h, w = rng.integers(1, 30, 2)
        mask = rng.random((h, w)) < rng.uniform(0.3, 1.0)
        np.testing.assert_array_equal(squared_distance_transform(mask).numpy(), _reference(mask))


def test_distance_transform_matches_scipy():
    masks = _random_masks(seed=5, h=61, w=47, n=10)
    got = distance_transform(masks).numpy()
    assert got.dtype == np.float32
    expected = np.stack([ndi.distance_transform_edt(m) for m in masks])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_golden():
    square = np.zeros([5, 6], np.uint8)
    square[1:4, 1:6] = 1
    expected = [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1],
        [0, 1, 4, 4, 4, 4],
        [0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0],
    ]
    np.testing.assert_array_equal(squared_distance_transform(square).numpy(), expected)
    np.testing.assert_array_equal(distance_transform([[0, 1, 1, 1]]).numpy(), [[0, 1, 2, 3]])


def _single(shape, value, at):
    mask = np.full(shape, 1 - value, np.uint8)
    mask[at] = value
    return mask


EDGE_CASES = {
    "empty": np.zeros((6, 7), np.uint8),
    "single-pixel": _single((7, 9), 1, (3, 4)),
    "single-pixel-corner": _single((7, 9), 1, (0, 8)),
    "single-background-pixel": _single((9, 7), 0, (4, 2)),
    "single-background-corner": _single((13, 11), 0, (12, 10)),
    "background-row": _single((9, 12), 0, (5, slice(None))),
    "background-column": _single((9, 12), 0, (slice(None), 3)),
    "foreground-row": _single((9, 12), 1, (0, slice(None))),
    "checkerboard": (np.indices((8, 9)).sum(0) % 2).astype(np.uint8),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases(name):
    mask = EDGE_CASES[name]
    np.testing.assert_array_equal(squared_distance_transform(mask).numpy(), _reference(mask))


def test_single_background_pixel_golden():
    got = squared_distance_transform(_single((4, 4), 0, (3, 3))).numpy()
    expected = [[18, 13, 10, 9], [13, 8, 5, 4], [10, 5, 2, 1], [9, 4, 1, 0]]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 9), (9, 1), (3, 4), (7, 2), (16, 11)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_no_background_follows_scipy(shape):
    # scipy points every pixel at the virtual pixel (-1, 0): (i + 1)^2 + j^2.
    full = np.ones(shape, np.uint8)
    i, j = np.indices(shape)
    got = squared_distance_transform(full).numpy()
    np.testing.assert_array_equal(got, (i + 1) ** 2 + j**2)
    np.testing.assert_array_equal(got, np.rint(ndi.distance_transform_edt(full) ** 2))


def test_batch_of_different_contents_is_per_image():
    masks = _random_masks(seed=9, h=30, w=41, n=5)
    masks[1] = True  # no background: must not leak into the others, nor they into it
    masks[2] = False
    masks[3] = _single((30, 41), 0, (29, 0)).astype(bool)
    got = squared_distance_transform(masks).numpy()
    np.testing.assert_array_equal(got, _references(masks))


def test_empty_dimensions():
    for shape in [(0, 5), (5, 0), (0, 4, 5), (3, 0, 5), (2, 4, 0, 1)]:
        got = squared_distance_transform(np.zeros(shape, np.uint8))
        assert got.shape == shape and got.dtype == tf.int32


@pytest.mark.parametrize(
    "dtype",
    [bool, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64],
    ids=lambda d: np.dtype(d).name,
)
def test_any_dtype_nonzero_is_foreground(dtype):
    masks = _random_masks(seed=11, h=23, w=31, n=3)
    values = masks.astype(dtype)
    if dtype not in (bool, np.uint8):
        values = values * np.asarray(-0.5 if np.issubdtype(dtype, np.floating) else -3, dtype)
    np.testing.assert_array_equal(squared_distance_transform(values).numpy(), _references(masks))


def test_tf_function_with_unknown_dims():
    fn = tf.function(
        squared_distance_transform, input_signature=[tf.TensorSpec([None, None, None], tf.uint8)]
    )
    for h, w, seed in [(37, 53, 1), (80, 41, 2), (1, 17, 3)]:
        masks = _random_masks(seed, h, w, n=4)
        np.testing.assert_array_equal(fn(masks.astype(np.uint8)).numpy(), _references(masks))
    assert fn.experimental_get_tracing_count() == 1


def test_too_large_static_size_raises_value_error():
    fn = tf.function(
        squared_distance_transform, input_signature=[tf.TensorSpec([None, 16385], tf.uint8)]
    )
    with pytest.raises(ValueError, match="16384"):
        fn.get_concrete_function()


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["float32", "uint8"])
def test_converts_to_tflite_builtins_and_stays_exact(dtype):
    from ai_edge_litert.interpreter import Interpreter

    h, w = 37, 52

    @tf.function(input_signature=[tf.TensorSpec([2, h, w, 1], tf.as_dtype(dtype))])
    def edt(images):
        return squared_distance_transform(images)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([edt.get_concrete_function()], edt)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    masks = _random_masks(seed=13, h=h, w=w, n=2)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], masks[..., None].astype(dtype))
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_array_equal(got[..., 0], _references(masks))


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from scipy import ndimage as ndi
    import tensorflow as tf
    from keras_skel.ops.edt import squared_distance_transform
    from keras_skel.training import process_memory_mb

    n = int(sys.argv[1])
    rng = np.random.default_rng(0)
    # Blobs of all sizes and a few background specks: many long rows and columns.
    mask = (ndi.gaussian_filter(rng.random((n, n)), n / 64) > 0.45) | (rng.random((n, n)) < 0.99)
    mask[: n // 2, : n // 2] = ndi.gaussian_filter(rng.random((n // 2, n // 2)), 2) > 0.5
    squared_distance_transform(mask[:8, :8]).numpy()  # traces once, for all sizes
    before = process_memory_mb("VmRSS")
    start = time.perf_counter()
    got = squared_distance_transform(mask).numpy()
    seconds = time.perf_counter() - start
    # This process image's peak (VmHWM), before scipy's reference; ru_maxrss would carry the
    # pytest worker's peak across exec (3.1 GB in one CI run).
    peak = process_memory_mb("VmHWM")
    _, (rows, cols) = ndi.distance_transform_edt(mask, return_indices=True)
    i, j = np.indices(mask.shape)
    expected = (i - rows) ** 2 + (j - cols) ** 2
    print(json.dumps({
        "exact": bool(np.array_equal(got, expected)),
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(peak),
        "rss_increase_mb": round(peak - before),
    }))
    """
)


@pytest.mark.slow
def test_2048_exact_with_bounded_memory(record_property):
    """2048²: exact, and peak RSS far below the 34 GB a [B, H, W, W] brute force would need."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, "2048"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nEDT 2048x2048: {report}")
    for key, value in report.items():
        record_property(key, value)
    assert report["exact"]
    # The whole process (TensorFlow itself ~650 MB, the scipy reference, the input) stays
    # under 3 GB; a brute-force separable min-plus would hold 2048^3 int32 = 34 GB.
    assert report["peak_rss_mb"] < 3 * 1024


def test_saved_model_round_trip_with_dynamic_shapes(tmp_path):
    module = tf.Module()
    module.edt = tf.function(
        squared_distance_transform,
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for h, w, seed in [(37, 53, 21), (64, 17, 22)]:
        masks = _random_masks(seed, h, w, n=3)
        got = loaded.edt(masks[..., None].astype(np.float32)).numpy()[..., 0]
        np.testing.assert_array_equal(got, _references(masks))
