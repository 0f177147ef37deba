import keras
import numpy as np
import pytest

from keras_skel.layers import ASPP
from tests.harness import run_layer_test


def test_aspp_harness(tmp_path):
    run_layer_test(ASPP, dict(filters=3, rates=[2, 4, 8, 16], use_batchnorm=True),
                   input_shape=(None, None, None, 5), expected_output_shape=(None, None, None, 12), tmp_path=tmp_path)


def test_aspp_without_batchnorm(tmp_path):
    run_layer_test(ASPP, dict(filters=2, rates=[1, 3], use_batchnorm=False),
                   input_shape=(2, 12, 10, 3), expected_output_shape=(2, 12, 10, 4), tmp_path=tmp_path)


def test_branches_are_atrous_with_their_rates():
    layer = ASPP(1, rates=(2, 5), use_batchnorm=False)
    x = np.zeros((1, 21, 21, 1), np.float32)
    x[0, 10, 10, 0] = 1.0
    layer(x)
    for conv in layer.convs:
        conv.kernel.assign(np.ones_like(conv.kernel.numpy()))
        conv.bias.assign(np.zeros_like(conv.bias.numpy()))
    out = keras.ops.convert_to_numpy(layer(x))
    # An impulse spreads to the 3x3 grid of offsets {-r, 0, r} of each branch.
    for channel, rate in enumerate((2, 5)):
        ys, xs = np.nonzero(out[0, ..., channel])
        assert sorted(set(ys - 10)) == [-rate, 0, rate] and sorted(set(xs - 10)) == [-rate, 0, rate]


def test_bad_rates():
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, rates=())
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, rates=(0, 2))
