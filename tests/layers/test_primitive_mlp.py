import numpy as np

from keras_skel.layers import PrimitiveMLP
from tests.harness import run_layer_test


def test_primitive_mlp_harness(tmp_path):
    run_layer_test(PrimitiveMLP, dict(primitives=3, units=[8, 3], output_activation="tanh"),
                   input_shape=(None, 3, None, 5), expected_output_shape=(None, 3, None, 3), tmp_path=tmp_path)


def test_each_primitive_has_its_own_mlp():
    layer = PrimitiveMLP(2, (4, 3), output_activation="linear")
    x = np.random.default_rng(0).normal(size=(1, 2, 6, 5)).astype(np.float32)
    out = np.asarray(layer(x))
    for k in range(2):  # primitive k's output is MLP k applied to its own samples only
        hidden = np.maximum(x[0, k] @ layer.kernels[0].numpy()[k] + layer.biases[0].numpy()[k], 0)
        expected = hidden @ layer.kernels[1].numpy()[k] + layer.biases[1].numpy()[k]
        np.testing.assert_allclose(out[0, k], expected, rtol=1e-5, atol=1e-6)
