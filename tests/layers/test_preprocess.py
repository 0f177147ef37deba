"""`ShapeInput` has no weights, so the layer harness is applied in the parts that apply:
config round-trip, init arguments in the config, symbolic and eager shapes, save/load — plus
exact values against scipy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from keras_skel.layers.preprocess import INPUT_KINDS, ShapeInput
from tests.harness import _init_args


def _shapes(seed=0, n=2, size=(40, 48)):
    """Blobs with holes of 1, 4, 9, 12, 16, 25 px (some in touching pairs) and a border touch."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *size), bool)
    for m in masks:
        m[3:37, 2:46] = True
        m[:5, 20:30] = True  # touches the border
        for (i, j), (h, w) in zip([(6, 5), (6, 12), (6, 20), (14, 5), (14, 14), (24, 5), (24, 14)],
                                  [(1, 1), (2, 2), (3, 3), (3, 4), (4, 4), (5, 5), (2, 8)]):
            m[i:i + h, j:j + w] = False
        m[rng.random(size) < 0.03] = False  # speckle: more tiny holes
    return masks.astype("float32")[..., None]


def _scipy_input(masks, kind, scale=32.0, hole_area=16):
    out = []
    for m in masks[..., 0] > 0.5:
        shape = m
        if kind == "repaired_distance":
            holes, count = ndimage.label(ndimage.binary_fill_holes(m) & ~m)
            areas = ndimage.sum_labels(np.ones_like(m), holes, index=np.arange(1, count + 1))
            small = np.concatenate([[False], areas < hole_area])
            shape = m | small[holes]
        distance = ndimage.distance_transform_edt(shape) / scale
        channels = {"shape": [m], "distance": [distance], "repaired_distance": [distance],
                    "shape_distance": [m, distance]}[kind]
        out.append(np.stack(channels, axis=-1).astype("float32"))
    return np.stack(out)


def test_config_round_trip_and_init_args():
    layer = ShapeInput(kind="shape_distance", scale=10.0, hole_area=5, name="x")
    config = layer.get_config()
    for name in _init_args(ShapeInput):
        assert name in config
    assert (config["kind"], config["scale"], config["hole_area"]) == ("shape_distance", 10.0, 5)
    assert ShapeInput.from_config(config).get_config() == config
    assert not layer.weights


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
def test_values_match_scipy(kind):
    masks = _shapes()
    expected = _scipy_input(masks, kind, scale=8.0, hole_area=16)
    layer = ShapeInput(kind, scale=8.0, hole_area=16)
    # Symbolic shape with unknown batch and spatial sizes, then eager values.
    symbolic = layer(keras.Input(shape=(None, None, 1)))
    assert tuple(symbolic.shape) == (None, None, None, INPUT_KINDS[kind])
    got = layer(masks).numpy()
    assert got.shape == masks.shape[:3] + (INPUT_KINDS[kind],) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_repair_fills_only_small_holes():
    masks = _shapes(n=1)
    plain = ShapeInput("distance", scale=1.0)(masks).numpy()
    repaired = ShapeInput("repaired_distance", scale=1.0, hole_area=16)(masks).numpy()
    assert repaired[0, 6, 5, 0] > 0 and plain[0, 6, 5, 0] == 0  # 1-px hole filled
    assert repaired[0, 14, 14, 0] == 0  # 16-px hole: not below 16, kept
    assert repaired[0, 24, 5, 0] == 0  # 25-px loop kept
    nothing = ShapeInput("repaired_distance", scale=1.0, hole_area=0)(masks).numpy()
    np.testing.assert_array_equal(nothing, plain)


def test_binarizes_at_half_and_scale_is_fixed():
    grey = np.zeros((1, 1, 6, 1), "float32")
    grey[0, 0, 1:5, 0] = [0.6, 1.0, 0.9, 0.4]  # 0.4 is background
    np.testing.assert_array_equal(ShapeInput("shape")(grey).numpy()[0, 0, :, 0], [0, 1, 1, 1, 0, 0])
    # No per-image normalization: a larger shape elsewhere leaves a small one's values alone.
    small = np.zeros((1, 32, 64, 1), "float32")
    small[0, 4:10, 4:12] = 1
    both = small.copy()
    both[0, 2:30, 30:62] = 1
    a, b = ShapeInput("distance")(small).numpy(), ShapeInput("distance")(both).numpy()
    np.testing.assert_array_equal(a[:, :, :20], b[:, :, :20])
    assert a.max() == pytest.approx(3 / 32)


def test_dynamic_graph_and_save_load(tmp_path):
    inputs = keras.Input(shape=(None, None, 1))
    model = keras.Model(inputs, ShapeInput("repaired_distance", scale=4.0, hole_area=9)(inputs))
    masks = _shapes(seed=1)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored.predict(masks, verbose=0), model.predict(masks, verbose=0))
    fn = tf.function(restored, input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    np.testing.assert_allclose(fn(masks[:1, :24, :32]).numpy(),
                               _scipy_input(masks[:1, :24, :32], "repaired_distance", 4.0, 9), rtol=1e-6)


def test_mixed_precision_dtype_and_jit_flag():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert ShapeInput("distance")(_shapes(n=1)).dtype == tf.bfloat16
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert ShapeInput("shape").supports_jit and not ShapeInput("distance").supports_jit


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        ShapeInput("sdf")
    with pytest.raises(ValueError, match="scale"):
        ShapeInput(scale=0.0)
    with pytest.raises(ValueError, match=r"\[N, H, W, 1\]"):
        ShapeInput()(keras.Input(shape=(None, None, 3)))
