from keras_skel.layers import ResidualBlock
from tests.harness import run_layer_test


def test_residual_block_projection(tmp_path):
    run_layer_test(ResidualBlock, dict(filters=6, kernel_size=3, use_batchnorm=True, activation="relu"),
                   input_shape=(None, None, None, 3), expected_output_shape=(None, None, None, 6),
                   tmp_path=tmp_path)


def test_residual_block_identity_no_bn(tmp_path):
    run_layer_test(ResidualBlock, dict(filters=4, kernel_size=1, use_batchnorm=False, activation="elu"),
                   input_shape=(2, 8, 10, 4), expected_output_shape=(2, 8, 10, 4), tmp_path=tmp_path)


def test_identity_shortcut_has_no_projection():
    import numpy as np

    block = ResidualBlock(4)
    block(np.zeros((1, 4, 4, 4), "float32"))
    assert block.projection is None
    other = ResidualBlock(4)
    other(np.zeros((1, 4, 4, 2), "float32"))
    assert other.projection is not None


def test_plain_block_without_shortcut(tmp_path):
    import numpy as np

    run_layer_test(ResidualBlock, dict(filters=5, kernel_size=3, use_batchnorm=True, activation="relu", shortcut=False),
                   input_shape=(None, None, None, 3), expected_output_shape=(None, None, None, 5), tmp_path=tmp_path)
    plain = ResidualBlock(4, use_batchnorm=False, shortcut=False)
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 4)).astype("float32")
    out = plain(x).numpy()
    assert plain.projection is None
    # No shortcut: the output is the double convolution alone.
    expected = plain.act(plain.conv2(plain.act(plain.conv1(x)))).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
