import keras
import numpy as np
import pytest

from keras_skel.inference import infer_stride
from keras_skel.layers.input_skip import InputSkip
from keras_skel.models.denoiser import build_shape_denoiser
from keras_skel.registry import MODELS

TINY = dict(stem_filters=4, filters=8, dilations=(1, 2))


def _square(h, w, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((1, h, w, 1), "float32")
    x[0, h // 4:3 * h // 4, w // 4:3 * w // 4] = 1
    flip = rng.random((h, w)) < 0.02
    x[0, flip, 0] = 1 - x[0, flip, 0]
    return x


def test_builds_registered_with_stride_two_and_probabilities():
    assert MODELS.get("shape_denoiser") is build_shape_denoiser
    model = build_shape_denoiser(**TINY)
    assert model.input_shape == (None, None, None, 1) and infer_stride(model) == 2
    out = np.asarray(model(_square(16, 24)))
    assert out.shape == (1, 16, 24, 1) and np.all((out >= 0) & (out <= 1))
    names = {layer.name for layer in model.layers}
    assert {"stem_conv1", "down_pool", "ctx1_conv1", "ctx2_conv2", "up", "fuse_conv2", "head", "input_skip"} <= names


def test_input_skip_makes_it_the_identity_without_corrections():
    """With the head zeroed, the output is sigmoid(±skip_scale): the input shape itself."""
    model = build_shape_denoiser(skip_scale=4.0, **TINY)
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = np.zeros((1, 20, 22, 1), "float32")
    x[0, 3:15, 5:19] = 0.8  # binarized at 0.5
    out = np.asarray(model(x))[0, ..., 0]
    inside = x[0, ..., 0] > 0.5
    np.testing.assert_allclose(out[inside], 1 / (1 + np.exp(-4.0)), rtol=1e-6)
    np.testing.assert_allclose(out[~inside], 1 / (1 + np.exp(4.0)), rtol=1e-5)
    assert isinstance(model.get_layer("input_skip"), InputSkip)


def test_context_reaches_about_75_px_each_way_and_no_further():
    """The docstring's claim (about 150 px of context): a pixel 70 px from the output pixel
    changes it, one 100 px away cannot (outside the receptive field)."""
    keras.utils.set_random_seed(1)
    model = build_shape_denoiser()
    base = np.zeros((1, 256, 256, 1), "float32")
    base[0, 100:156, 100:156] = 1

    def centre(x):
        return float(np.asarray(model(x))[0, 128, 128, 0])

    near, far = base.copy(), base.copy()
    near[0, 128, 128 + 70] = 1
    far[0, 128, 128 + 100] = 1
    reference = centre(base)
    assert centre(near) != reference
    assert centre(far) == reference


def test_fine_blocks_start_as_the_model_without_them_and_train():
    """Zero-initialized full-resolution blocks: with the other layers' weights copied by name,
    the deeper model gives the shallower one's answer until it trains, and a step moves them."""
    keras.utils.set_random_seed(3)
    plain = build_shape_denoiser(**TINY)
    fine = build_shape_denoiser(fine_dilations=(1, 3), **TINY)
    names = {layer.name for layer in fine.layers}
    assert {"fine1_conv1", "fine1_conv2", "fine2_add"} <= names and not any("fine" in n for n in
                                                                          (layer.name for layer in plain.layers))
    assert fine.get_layer("fine2_conv1").dilation_rate == (3, 3)
    for layer in plain.layers:
        if layer.weights:
            fine.get_layer(layer.name).set_weights(layer.get_weights())
    x = _square(32, 40, seed=4)
    np.testing.assert_array_equal(np.asarray(fine(x)), np.asarray(plain(x)))
    fine.compile(optimizer=keras.optimizers.SGD(0.5), loss="binary_crossentropy")
    fine.train_on_batch(x, np.clip(1 - x, 0, 1))
    assert np.abs(fine.get_layer("fine1_conv2").get_weights()[0]).max() > 0


@pytest.mark.parametrize("bad", [dict(input_channels=3), dict(dilations=()), dict(dilations=(1, 0)),
                                 dict(filters=0), dict(fine_dilations=(2, 0))])
def test_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        build_shape_denoiser(**{**TINY, **bad})


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = build_shape_denoiser(**TINY)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", compile=False)  # safe_mode: no Lambda layers
    x = _square(32, 40)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
