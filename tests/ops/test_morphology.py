"""Tests for keras_skel.ops.morphology: exactness vs scipy.ndimage, borders, ranks, TFLite."""

import numpy as np
import pytest
import skimage.morphology
import tensorflow as tf
from scipy import ndimage as ndi

from keras_skel.ops.morphology import (
    binary_closing,
    binary_dilation,
    binary_erosion,
    binary_opening,
    disk,
)

OPS = {
    "dilation": (binary_dilation, ndi.binary_dilation),
    "erosion": (binary_erosion, ndi.binary_erosion),
    "closing": (binary_closing, ndi.binary_closing),
    "opening": (binary_opening, ndi.binary_opening),
}
RADII = range(6)
# Odd, non-square and degenerate sizes.
SIZES = [(1, 23), (23, 1), (1, 1), (2, 2), (37, 53), (101, 80), (64, 64)]


def _masks(seed, h, w):
    """Sparse and dense random masks plus smooth blobs, 8 of them, bool `[8, h, w]`."""
    rng = np.random.default_rng(seed)
    masks = [rng.random((h, w)) < p for p in (0.02, 0.1, 0.5, 0.8, 0.97)]
    for sigma in (1.0, 2.5, 4.0):
        smooth = ndi.gaussian_filter(rng.random((h, w)), sigma)
        masks.append(smooth > np.median(smooth))
    return np.stack(masks)


def _scipy(reference, masks, radius):
    return np.stack([reference(m, structure=disk(radius)) for m in masks]).astype(np.uint8)


@pytest.mark.parametrize("radius", range(11))
def test_disk_equals_skimage(radius):
    expected = skimage.morphology.disk(radius)
    assert disk(radius).dtype == np.uint8
    np.testing.assert_array_equal(disk(radius), expected)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_matches_scipy_on_random_masks(name, size):
    ours, reference = OPS[name]
    masks = _masks(sum(size), *size)
    for radius in RADII:
        got = ours(masks, radius).numpy()
        assert got.dtype == np.uint8 and got.shape == masks.shape
        np.testing.assert_array_equal(got, _scipy(reference, masks, radius), err_msg=f"r={radius}")


@pytest.mark.parametrize("radius", RADII)
def test_closing_and_opening_are_the_compositions(radius):
    masks = _masks(3, 37, 53)
    dilated = binary_dilation(masks, radius)
    eroded = binary_erosion(masks, radius)
    np.testing.assert_array_equal(
        binary_closing(masks, radius).numpy(), binary_erosion(dilated, radius).numpy()
    )
    np.testing.assert_array_equal(
        binary_opening(masks, radius).numpy(), binary_dilation(eroded, radius).numpy()
    )
    # scipy's closing is the same composition, border included (border_value=0 in both steps).
    ref_dilated = ndi.binary_dilation(masks[0], structure=disk(radius))
    np.testing.assert_array_equal(
        ndi.binary_closing(masks[0], structure=disk(radius)),
        ndi.binary_erosion(ref_dilated, structure=disk(radius)),
    )


def test_closing_is_not_extensive_at_the_border():
    # The outside is background for the erosion too: a full image loses a border of width r,
    # exactly as in scipy; skimage's closing (default mode="ignore") keeps it.
    full = np.ones((9, 12), np.uint8)
    ours = binary_closing(full, 2).numpy()
    np.testing.assert_array_equal(ours, ndi.binary_closing(full, structure=disk(2)))
    np.testing.assert_array_equal(ours, ndi.binary_erosion(full, structure=disk(2)))
    assert ours[2:-2, 2:-2].all() and ours.sum() == 5 * 8
    assert skimage.morphology.closing(full.astype(bool), disk(2)).all()


def test_erosion_is_not_the_complement_of_dilation_at_the_border():
    full = np.ones((7, 7), np.uint8)
    complement = 1 - binary_dilation(1 - full, 1).numpy()
    assert complement.all()
    assert binary_erosion(full, 1).numpy().sum() == 25


@pytest.mark.parametrize("radius", [0, 1, 3, 5])
def test_edge_cases(radius):
    for h, w in [(1, 1), (1, 17), (17, 1), (11, 11)]:
        empty = np.zeros((h, w), np.uint8)
        full = np.ones((h, w), np.uint8)
        for name, (ours, reference) in OPS.items():
            for mask in (empty, full):
                np.testing.assert_array_equal(
                    ours(mask, radius).numpy(),
                    reference(mask, structure=disk(radius)).astype(np.uint8),
                    err_msg=f"{name} {h}x{w} r={radius}",
                )
    dot = np.zeros((13, 13), np.uint8)
    dot[6, 6] = 1
    np.testing.assert_array_equal(
        binary_dilation(dot, radius).numpy()[6 - radius : 7 + radius, 6 - radius : 7 + radius],
        disk(radius),
    )
    assert binary_dilation(dot, radius).numpy().sum() == disk(radius).sum()
    assert binary_erosion(dot, radius).numpy().sum() == (1 if radius == 0 else 0)
    # 1-px lines: horizontal, vertical, diagonal, and touching the border.
    lines = np.zeros((4, 15, 19), np.uint8)
    lines[0, 7, 2:17] = 1
    lines[1, 1:14, 9] = 1
    lines[2][np.arange(15), np.arange(15)] = 1
    lines[3, 0, :] = 1
    for name, (ours, reference) in OPS.items():
        np.testing.assert_array_equal(
            ours(lines, radius).numpy(), _scipy(reference, lines, radius), err_msg=name
        )


def test_ranks_dtypes_and_shapes():
    masks = _masks(5, 21, 34)
    expected = binary_dilation(masks, 2).numpy()
    for op in (binary_dilation, binary_erosion, binary_closing, binary_opening):
        batch = op(masks, 2).numpy()
        np.testing.assert_array_equal(op(masks[..., None], 2).numpy()[..., 0], batch)
        np.testing.assert_array_equal(op(masks[1], 2).numpy(), batch[1])
        assert op(masks[..., None], 2).shape == (8, 21, 34, 1)
        assert op(masks[1], 2).shape == (21, 34)
    # Nonzero is foreground, whatever the dtype.
    weights = np.where(masks, 0.25, 0.0).astype(np.float32)
    np.testing.assert_array_equal(binary_dilation(weights, 2).numpy(), expected)
    np.testing.assert_array_equal(binary_dilation(tf.constant(masks), 2).numpy(), expected)
    np.testing.assert_array_equal(binary_dilation(masks.astype(np.int32) * 7, 2).numpy(), expected)


def test_tf_function_with_unknown_dims():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.uint8)])
    def close_2d(x):
        return binary_closing(x, 2)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.bool)])
    def open_4d(x):
        return binary_opening(x, 3)

    for size in [(37, 53), (1, 40), (64, 64)]:
        masks = _masks(7, *size)
        np.testing.assert_array_equal(
            close_2d(masks[2].astype(np.uint8)).numpy(),
            ndi.binary_closing(masks[2], structure=disk(2)).astype(np.uint8),
        )
        np.testing.assert_array_equal(
            open_4d(masks[..., None]).numpy()[..., 0], _scipy(ndi.binary_opening, masks, 3)
        )


@pytest.mark.parametrize("op", [binary_dilation, binary_erosion, binary_closing, binary_opening])
def test_invalid_arguments_raise(op):
    with pytest.raises(ValueError, match="shape \\[H, W\\]"):
        op(np.zeros(5), 1)
    with pytest.raises(ValueError, match="rank 5"):
        op(np.zeros((1, 2, 3, 4, 1)), 1)
    with pytest.raises(ValueError, match="one channel"):
        op(np.zeros((1, 4, 4, 3)), 1)
    for radius in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="radius"):
            op(np.zeros((4, 4)), radius)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def unknown_rank(x):
        return op(x, 1)

    with pytest.raises(ValueError, match="unknown rank"):
        unknown_rank.get_concrete_function()


def test_tflite_builtin_ops_only():
    """dilation + erosion + closing convert with TFLITE_BUILTINS only and match scipy."""
    from ai_edge_litert.interpreter import Interpreter

    @tf.function(input_signature=[tf.TensorSpec([2, 37, 53, 1], tf.float32)])
    def morphology(x):
        return tf.concat(
            [binary_dilation(x, 2), binary_erosion(x, 3), binary_closing(x, 1)], axis=-1
        )

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [morphology.get_concrete_function()], morphology
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    masks = _masks(11, 37, 53)[[2, 6]]
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"], masks[..., None].astype(np.float32)
    )
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert out.dtype == np.uint8 and out.shape == (2, 37, 53, 3)
    np.testing.assert_array_equal(out[..., 0], _scipy(ndi.binary_dilation, masks, 2))
    np.testing.assert_array_equal(out[..., 1], _scipy(ndi.binary_erosion, masks, 3))
    np.testing.assert_array_equal(out[..., 2], _scipy(ndi.binary_closing, masks, 1))
