import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.layers import ResizeLike


def test_resizes_to_the_reference_size_at_run_time(tmp_path):
    x = keras.Input((None, None, 2))
    ref = keras.Input((None, None, 1))
    out = ResizeLike(name="r")([x, ref])
    assert tuple(out.shape) == (None, None, None, 2)
    model = keras.Model([x, ref], out)
    small = np.random.default_rng(0).random((2, 4, 5, 2)).astype(np.float32)
    for size in [(16, 20), (13, 7)]:
        got = model([small, np.zeros((2, *size, 1), np.float32)])
        expected = tf.image.resize(small, size, method="bilinear")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected.numpy(), atol=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.get_layer("r").get_config()["interpolation"] == "bilinear"


def test_nearest_and_bad_interpolation():
    layer = ResizeLike("nearest")
    out = layer([np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1), np.zeros((1, 4, 4, 1), np.float32)])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out)[0, :, :, 0],
                                  [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    with pytest.raises(ValueError, match="interpolation"):
        ResizeLike("bicubic")
