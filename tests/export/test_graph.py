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
