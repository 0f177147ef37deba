"""The in-graph PNG decoding of `predict_png` follows the same binarization rule as the
dataset reader (DESIGN.md §3), so REST/PNG clients and folder users see the same shapes."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.data.io import read_binary_image
from keras_skel.export.graph import decode_binary_png


def _variants():
    rng = np.random.default_rng(0)
    grey = (rng.random((23, 31)) * 255).astype(np.uint8)
    shape = rng.random((23, 31)) > 0.5
    yield "grey8", grey
    yield "grey16", (rng.random((23, 31)) * 65535).astype(np.uint16)
    yield "rgb", (rng.random((23, 31, 3)) * 255).astype(np.uint8)
    yield "rgba_alpha_shape", np.dstack([np.full((23, 31, 3), 200, np.uint8), shape.astype(np.uint8) * 255])
    yield "rgba_constant_alpha", np.dstack([(rng.random((23, 31, 3)) * 255).astype(np.uint8),
                                           np.full((23, 31), 255, np.uint8)])
    yield "edges_127_128", np.array([[127, 128, 0, 255]], np.uint8)


@pytest.mark.parametrize("name,image", list(_variants()))
def test_graph_decoding_matches_the_dataset_reader(name, image, tmp_path):
    path = tmp_path / f"{name}.png"
    assert cv2.imwrite(str(path), image)
    expected = read_binary_image(path)
    got = decode_binary_png(tf.constant(path.read_bytes())).numpy()[..., 0] > 0.5
    np.testing.assert_array_equal(got, expected)


class _CountingNet:
    """A stand-in network (a fixed nonlinear map, not D4-symmetric) that counts how often it is
    traced into a graph."""

    def __init__(self):
        self.traces = 0

    def __call__(self, x, training=False):
        self.traces += 1
        weights = tf.reshape(tf.range(1.0, 10.0), [3, 3, 1, 1]) / 45.0
        return tf.sigmoid(tf.nn.conv2d(x, weights, 1, "SAME") * 4.0 - 1.0 + x[:, :1, :, :])


def test_tta_traces_the_network_once_and_matches_inline_calls():
    """With D4 TTA the serving graph calls one traced network function 8 times instead of tracing
    the network 8 times (`traced_once`), in every graph built from the same model, and gives
    the same probabilities as the 8 inline calls."""
    from keras_skel.export.graph import d4_average, probability_of

    images = tf.constant((np.random.default_rng(1).random((2, 12, 18, 1)) > 0.5).astype(np.float32))
    net = _CountingNet()
    traced = tf.function(lambda x: probability_of(net, x, stride=1, tta=True), autograph=False)
    got = traced(images).numpy()
    traced(images[:, :10]).numpy()  # a second graph (other shape) reuses the traced network
    assert net.traces == 1
    inline = _CountingNet()
    want = d4_average(lambda x: inline(x), images).numpy()
    assert inline.traces == 8
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(want - inline(images).numpy()).max() > 0.01  # the views differ: the average is a real one
    # The 8 call ops stay calls to one function that TensorFlow may not inline before optimizing
    # the graph (a loaded SavedModel's first call would otherwise optimize 8 copies of the network).
    graph_def = traced.get_concrete_function(images).graph.as_graph_def()
    calls = [n.attr["f"].func.name for n in graph_def.node if n.op in ("PartitionedCall", "StatefulPartitionedCall")]
    assert len(calls) == 8 and len(set(calls)) == 1
    (called,) = [f for f in graph_def.library.function if f.signature.name == calls[0]]
    assert called.attr["_noinline"].b
