"""The mask-layout contract every op of `keras_skel.ops` shares (`ops/masks.py`), tested once for
all of them: `[H, W]`, `[N, H, W]` and `[N, H, W, 1]` give the same result in the layout given,
also inside `tf.function` with unknown sizes; wrong ranks fail at trace time with a message, an
unknown channel count other than 1 fails at run time. Exactness against each op's reference is
tested in the op's own file."""

import functools

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi

from keras_skel.ops import (
    binary_closing,
    binary_dilation,
    binary_erosion,
    binary_opening,
    distance_transform,
    fill_holes,
    prune_spurs,
    squared_distance_transform,
    thin,
)

OPS = {
    "thin": thin,
    "prune_spurs": prune_spurs,
    "fill_holes": fill_holes,
    "fill_holes_area": functools.partial(fill_holes, max_area=6),
    "squared_distance_transform": squared_distance_transform,
    "distance_transform": distance_transform,
    "binary_dilation": functools.partial(binary_dilation, radius=2),
    "binary_erosion": functools.partial(binary_erosion, radius=1),
    "binary_closing": functools.partial(binary_closing, radius=2),
    "binary_opening": functools.partial(binary_opening, radius=1),
}


def _masks(n=3, h=29, w=45, seed=7):
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random((n, h, w)), (0, 2.5, 2.5))
    masks = smooth > np.quantile(smooth, 0.4)
    masks[0, 5:7, 3:40] = True  # a 2-px bar, so thinning and pruning have work
    return masks


@pytest.mark.parametrize("name", OPS)
def test_every_layout_gives_the_batch_result(name):
    op = OPS[name]
    masks = _masks()
    batch = op(masks).numpy()
    assert batch.shape == masks.shape
    np.testing.assert_array_equal(op(masks[1]).numpy(), batch[1])
    np.testing.assert_array_equal(op(masks[..., None].astype(np.float32)).numpy(), batch[..., None])
    for spec_shape, to_input in [
        ([None, None], lambda m: m[1]),
        ([None, None, None], lambda m: m),
        ([None, None, None, 1], lambda m: m[..., None]),
        ([None, None, None, None], lambda m: m[..., None]),
    ]:
        fn = tf.function(op, input_signature=[tf.TensorSpec(spec_shape, tf.float32)])
        got = fn(to_input(masks).astype(np.float32)).numpy()
        np.testing.assert_array_equal(got, to_input(batch))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", [(), (5,), (1, 5, 5, 1, 1), (2, 5, 5, 3)],
                         ids=["rank0", "rank1", "rank5", "rank4-3-channels"])
def test_wrong_shape_raises_value_error(name, shape):
    with pytest.raises(ValueError, match=r"\[N, H, W, 1\]"):
        OPS[name](np.zeros(shape, np.uint8))


@pytest.mark.parametrize("name", OPS)
def test_unknown_rank_raises_value_error_at_trace_time(name):
    fn = tf.function(OPS[name], input_signature=[tf.TensorSpec(None, tf.uint8)])
    with pytest.raises(ValueError, match="unknown rank"):
        fn.get_concrete_function()


@pytest.mark.parametrize("name", OPS)
def test_unknown_channel_that_is_not_one_fails_at_run_time(name):
    fn = tf.function(OPS[name], input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8)])
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(np.ones((1, 5, 5, 3), np.uint8))
