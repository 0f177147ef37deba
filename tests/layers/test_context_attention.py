import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.layers.context_attention import ContextAttention, attention_matrix_bytes
from tests.harness import run_layer_test


def test_context_attention_dynamic_shape(tmp_path):
    run_layer_test(ContextAttention, dict(key_reduction=4, se_reduction=4),
                   input_shape=(None, None, None, 8), expected_output_shape=(None, None, None, 8),
                   tmp_path=tmp_path)


def test_context_attention_static_shape_default_reductions(tmp_path):
    # 4 channels: query/key and the SE bottleneck fall back to 1 channel.
    run_layer_test(ContextAttention, dict(key_reduction=8, se_reduction=16),
                   input_shape=(2, 3, 5, 4), expected_output_shape=(2, 3, 5, 4), tmp_path=tmp_path)


def _numpy_reference(x, layer):
    """The block's math in NumPy, from the layer's own weights."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)

    def project(conv, v):
        return v @ conv.kernel.numpy()[0, 0] + conv.bias.numpy()

    q, k, v = project(layer.query, flat), project(layer.key, flat), project(layer.value, flat)
    logits = q @ k.transpose(0, 2, 1)  # [N, P, P]
    logits -= logits.max(axis=-1, keepdims=True)
    attention = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    spatial = float(layer.gamma.numpy()) * (attention @ v) + flat
    squeeze = spatial.mean(axis=1)  # [N, C]
    hidden = np.maximum(squeeze @ layer.se_reduce.kernel.numpy() + layer.se_reduce.bias.numpy(), 0)
    excite = 1 / (1 + np.exp(-(hidden @ layer.se_expand.kernel.numpy() + layer.se_expand.bias.numpy())))
    return (spatial * excite[:, None, :]).reshape(n, h, w, c)


def test_context_attention_matches_numpy_reference():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 16)).astype("float32")
    layer = ContextAttention(key_reduction=4, se_reduction=8)
    layer.build(x.shape)
    assert float(layer.gamma.numpy()) == 0.0  # starts as SE(x) · x, no spatial mixing
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))
    layer.gamma.assign(0.7)
    assert layer.query.kernel.shape == (1, 1, 16, 4) and layer.se_reduce.kernel.shape == (16, 2)
    expected = _numpy_reference(x.astype("float64"), layer)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    # The spatial term is large enough here that dropping it would fail the comparison.
    layer.gamma.assign(0.0)
    assert np.abs(_numpy_reference(x.astype("float64"), layer) - expected).max() > 0.1


def test_context_attention_traces_with_unknown_spatial_size():
    layer = ContextAttention(key_reduction=2, se_reduction=2)
    layer.build((None, None, None, 4))
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)])
    for shape in [(1, 5, 7, 4), (3, 2, 2, 4)]:
        assert tuple(fn(tf.zeros(shape)).shape) == shape


def test_context_attention_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = ContextAttention(key_reduction=2, se_reduction=2)
        y = layer(np.random.default_rng(0).normal(size=(1, 4, 4, 8)).astype("float32"))
        assert y.dtype == "bfloat16" and layer.gamma.dtype == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))))
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_context_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        ContextAttention(key_reduction=0)
    with pytest.raises(ValueError, match="channel"):
        ContextAttention().build((None, None, None, None))


def test_attention_matrix_bytes():
    assert attention_matrix_bytes(64, 64) == 64 * 2**20
    assert attention_matrix_bytes(128, 128, batch=2) == 2 * 2**30
