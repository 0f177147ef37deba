import keras
import numpy as np

from keras_skel.layers import InputSkip


def test_adds_a_learned_multiple_of_the_signed_shape():
    logits = np.random.default_rng(0).normal(size=(2, 5, 6, 1)).astype("float32")
    images = (np.random.default_rng(1).random((2, 5, 6, 1)) > 0.5).astype("float32")
    layer = InputSkip(initial_scale=2.5)
    out = layer([logits, images]).numpy()
    np.testing.assert_allclose(out, logits + 2.5 * (2 * images - 1), atol=1e-6)
    assert InputSkip.from_config(layer.get_config()).get_config() == layer.get_config()


def test_scale_trains_and_round_trips(tmp_path):
    logits_in = keras.Input((8, 8, 1))
    images_in = keras.Input((8, 8, 1))
    model = keras.Model([logits_in, images_in], InputSkip(name="skip")([logits_in, images_in]))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(4, 8, 8, 1)).astype("float32"), (rng.random((4, 8, 8, 1)) > 0.5).astype("float32")]
    y = rng.normal(size=(4, 8, 8, 1)).astype("float32")
    before = float(model.get_layer("skip").scale.numpy())
    model.fit(x, y, epochs=1, verbose=0)
    assert float(model.get_layer("skip").scale.numpy()) != before
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
