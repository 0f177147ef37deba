import keras
import numpy as np
import pytest

from keras_skel.data.targets import flux_target
from keras_skel.losses import BalancedFluxLoss, functional
from keras_skel.registry import LOSSES


def test_balanced_flux_l2_hand_value():
    # 1×5 image: a context pixel, a skeleton pixel, 3 background pixels.
    y = np.zeros((1, 1, 5, 3), "float32")
    y[0, 0, 0, :2] = (0.0, 1.0)  # context, flux points right
    y[0, 0, 1, 2] = 1.0  # skeleton
    pred = np.zeros((1, 1, 5, 2), "float32")
    pred[0, 0, 1] = (0.0, 0.2)  # skeleton pixel: error 0.04
    pred[0, 0, 3] = (0.5, 0.0)  # a background pixel: error 0.25
    # Weights: foreground (context + skeleton) 3/5, background 2/5; context error 1.
    expected = 0.6 * 1.0 + 0.6 * 0.04 + 0.4 * 0.25
    assert float(functional.balanced_flux_l2(y, pred)[0]) == pytest.approx(expected, rel=1e-6)


def test_counts_are_per_image():
    y = np.zeros((2, 1, 4, 3), "float32")
    y[0, 0, 0, :2] = (1.0, 0.0)  # image 0: one context pixel of 4
    y[1, 0, :3, :2] = (1.0, 0.0)  # image 1: three context pixels of 4
    got = np.asarray(functional.balanced_flux_l2(y, np.zeros((2, 1, 4, 2), "float32")))
    np.testing.assert_allclose(got, [3 / 4 * 1, 1 / 4 * 3], rtol=1e-6)


def test_wrong_channels_raise():
    with pytest.raises(ValueError, match="skeleton"):
        functional.balanced_flux_l2(np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 4, 4, 2), "float32"))


def test_training_lowers_it_and_it_saves(tmp_path):
    skel = np.zeros((16, 16), bool)
    skel[8, 2:14] = True
    y = np.concatenate([flux_target(skel, 3), skel[..., None]], -1)[None].astype("float32")
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 1)).astype("float32")
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    loss = LOSSES.build("flux")
    assert isinstance(loss, BalancedFluxLoss)
    model.compile(keras.optimizers.Adam(0.05), loss=loss)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").loss.get_config() == loss.get_config()
