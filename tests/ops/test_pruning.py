"""Tests for keras_skel.ops.pruning: hand-made cases, agreement with the skan GT rule, TFLite."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.data.targets import prune_terminal_branches
from keras_skel.ops.pruning import prune_spurs
from keras_skel.ops.thinning import thin

pytestmark = pytest.mark.xdist_group("pruning")  # module fixtures built once (setup.cfg)


def _rule(skeleton, min_length=10):
    """The ground-truth rule's pruning: one skan pass, then skeletonize."""
    pruned = prune_terminal_branches(skeleton, min_length=min_length)
    return skeletonize(pruned.astype(bool)).astype(np.uint8)


def _check(skeleton, min_length=10):
    """prune_spurs of a 2-D skeleton, after checking it equals the skan rule."""
    ours = prune_spurs(skeleton, min_length).numpy()
    np.testing.assert_array_equal(ours, _rule(skeleton, min_length))
    return ours


def _f1(ours, reference):
    """Per-image pixel F1 and the dataset-level F1 (counts summed over images)."""
    ours, reference = ours.astype(bool), reference.astype(bool)
    tp = (ours & reference).sum((1, 2))
    errors = (ours != reference).sum((1, 2))
    per_image = np.where(tp + errors > 0, 2 * tp / np.maximum(2 * tp + errors, 1), 1.0)
    return per_image, 2 * tp.sum() / (2 * tp.sum() + errors.sum())


def _plus(top_arm):
    sk = np.zeros((41, 41), np.uint8)
    sk[20, 4:37] = 1
    sk[20:37, 20] = 1
    sk[20 - top_arm : 20, 20] = 1
    return sk


def test_plus_with_one_short_arm():
    sk = _plus(top_arm=5)
    out = _check(sk)
    assert out[15:20, 20].sum() == 0  # the short arm is gone
    assert out[20, 20] == 1  # its junction stays
    assert out[20].sum() == 33 and out[20:37, 20].sum() == 17  # long arms at full length
    assert out.sum() == sk.sum() - 5


def test_long_arms_survive_whole():
    sk = _plus(top_arm=16)
    np.testing.assert_array_equal(_check(sk), thin(sk).numpy())


def test_isolated_short_paths_are_kept():
    sk = np.zeros((30, 30), np.uint8)
    sk[3, 3:6] = 1  # 3 px
    sk[[10, 11, 12, 13], [10, 11, 12, 13]] = 1  # diagonal 4 px
    sk[20, 20] = 1  # a single pixel
    sk[25, 5:7] = 1  # 2 px
    out = _check(sk, 10)
    np.testing.assert_array_equal(out, sk)
    # Also next to a pruned structure in the same image.
    both = np.zeros((41, 80), np.uint8)
    both[:, :41] = _plus(top_arm=5)
    both[5, 60:63] = 1
    out = _check(both)
    assert out[5, 60:63].sum() == 3 and out[15:20, 20].sum() == 0


def test_cycle_with_a_spur():
    ring = np.zeros((40, 40), np.uint8)
    ring[10, 10:31] = ring[30, 10:31] = 1
    ring[10:31, 10] = ring[10:31, 30] = 1
    np.testing.assert_array_equal(_check(ring), thin(ring).numpy())
    short = ring.copy()
    short[5:10, 20] = 1  # 5-px spur
    out = _check(short)
    assert out[5:10, 20].sum() == 0
    np.testing.assert_array_equal(out, thin(ring).numpy())
    long = ring.copy()
    long[0:10, 20] = 1  # 10-px spur: branch_distance 10, not < 10
    np.testing.assert_array_equal(_check(long), thin(long).numpy())


def test_two_junctions_close_together():
    sk = np.zeros((40, 50), np.uint8)
    sk[20, 2:48] = 1
    sk[3:20, 15] = 1  # long arms up at columns 15 and 18: two junctions 3 px apart
    sk[3:20, 18] = 1
    sk[21:24, 17] = 1  # 3-px spur down between them
    sk[21:26, 40] = 1  # 5-px spur down further right
    out = _check(sk)
    assert out[20, 15:19].sum() == 4  # the junction-junction branch stays, however short
    assert out[3:20, 15].sum() == 17 and out[3:20, 18].sum() == 17
    assert out[21:, :].sum() == 0
    # Junctions touching each other: arms leave the line at neighbouring columns.
    touching = np.zeros((40, 50), np.uint8)
    touching[20, 2:48] = 1
    touching[3:20, 15] = 1
    touching[21:38, 16] = 1
    touching[14:20, 30] = 1  # 6-px spur
    out = _check(touching)
    assert out[14:20, 30].sum() == 0
    assert out[3:20, 15].sum() == 17 and out[21:38, 16].sum() == 17 and out[20].sum() == 46


@pytest.mark.parametrize("min_length", [5, 10])
def test_spur_length_threshold_orthogonal(min_length):
    for spur, removed in [(min_length - 1, True), (min_length, False)]:
        sk = np.zeros((31, 41), np.uint8)
        sk[25, 5:36] = 1
        sk[25 - spur : 25, 20] = 1  # branch_distance == spur
        out = _check(sk, min_length)
        assert out[25 - spur : 25, 20].sum() == (0 if removed else spur), (spur, min_length)


def test_spur_length_threshold_diagonal():
    # A diagonal spur of k pixels leaving a horizontal line: skan's spanning tree makes the
    # line pixel next to the junction the junction, so branch_distance = 1 + (k - 1)·√2.
    for spur, removed in [(7, True), (8, False)]:  # 9.49 < 10 <= 10.90
        sk = np.zeros((31, 41), np.uint8)
        sk[25, 5:36] = 1
        rows = 25 - np.arange(1, spur + 1)
        sk[rows, 20 + np.arange(1, spur + 1)] = 1
        out = _check(sk, 10)
        assert out[rows, 20 + np.arange(1, spur + 1)].sum() == (0 if removed else spur)
    # Step counting would remove both: 7 and 8 steps are under 10.


@pytest.mark.parametrize("min_length", [0, 1])
def test_nothing_to_prune_below_one_pixel(min_length):
    sk = _plus(top_arm=1)
    np.testing.assert_array_equal(prune_spurs(sk, min_length).numpy(), thin(sk).numpy())
    _check(sk, min_length)


def test_empty_single_pixel_and_tiny():
    for shape in [(1, 1), (1, 9), (9, 1), (5, 7)]:
        empty = np.zeros(shape, np.uint8)
        np.testing.assert_array_equal(_check(empty), empty)
        dot = empty.copy()
        dot[0, 0] = 1
        np.testing.assert_array_equal(_check(dot), dot)
    block = np.zeros((6, 6), np.uint8)
    block[2:4, 2:4] = 1  # a 2×2 block of junctions: skan's tree makes it a path
    _check(block)
    full_line = np.ones((1, 25), np.uint8)
    np.testing.assert_array_equal(_check(full_line), full_line)


def test_ranks_and_dtypes():
    batch = np.stack([_plus(5), _plus(12), np.zeros((41, 41), np.uint8)])
    expected = np.stack([_rule(s) for s in batch])
    np.testing.assert_array_equal(prune_spurs(batch).numpy(), expected)
    out_4d = prune_spurs(batch[..., None].astype(np.float32))
    assert out_4d.dtype == tf.uint8 and out_4d.shape == (3, 41, 41, 1)
    np.testing.assert_array_equal(out_4d.numpy()[..., 0], expected)
    np.testing.assert_array_equal(prune_spurs(tf.constant(batch[0] > 0)).numpy(), expected[0])


def test_tf_function_with_unknown_dims():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
    def prune_3d(x):
        return prune_spurs(x, 10)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
    def prune_4d(x):
        return prune_spurs(x, 6)

    for sk in (_plus(5), np.pad(_plus(7), ((3, 0), (0, 9)))):
        np.testing.assert_array_equal(prune_3d(sk[None]).numpy()[0], _rule(sk))
        got = prune_4d(sk[None, :, :, None].astype(np.float32)).numpy()[0, :, :, 0]
        np.testing.assert_array_equal(got, _rule(sk, 6))


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="shape \\[H, W\\]"):
        prune_spurs(np.zeros(5))
    with pytest.raises(ValueError, match="rank 5"):
        prune_spurs(np.zeros((1, 2, 3, 4, 1)))
    with pytest.raises(ValueError, match="one channel"):
        prune_spurs(np.zeros((1, 4, 4, 2)))
    for min_length in (-1, 2.5, True, None):
        with pytest.raises(ValueError, match="min_length"):
            prune_spurs(np.zeros((4, 4)), min_length)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8)])
    def unknown_rank(x):
        return prune_spurs(x)

    with pytest.raises(ValueError, match="unknown rank"):
        unknown_rank.get_concrete_function()


@pytest.fixture(scope="module")
def noisy_skeletons():
    """skeletonize of 240 noisy synthetic shapes (all 8 families), uint8 [240, 128, 128]."""
    images = [make_shape_sample(0, i, (128, 128), noise=2.0)[0] for i in range(240)]
    return np.stack([skeletonize(image.astype(bool)) for image in images]).astype(np.uint8)


def test_agreement_with_skan_rule(noisy_skeletons):
    """Measured: 240/240 identical, F1 1.0 (module docstring). Floors leave room for skan's
    tie order among equal-length junction edges, which can differ between machines."""
    reference = np.stack([_rule(sk) for sk in noisy_skeletons])
    assert (noisy_skeletons.sum() - reference.sum()) / len(reference) > 5  # pruning happens
    ours = prune_spurs(noisy_skeletons).numpy()
    identical = sum(np.array_equal(a, b) for a, b in zip(ours, reference))
    per_image, total = _f1(ours, reference)
    assert identical >= 235, identical
    assert per_image.mean() >= 0.999 and total >= 0.999, (per_image.mean(), total)
    assert per_image.min() >= 0.95, per_image.min()


@pytest.mark.parametrize("min_length", [3, 17])
def test_agreement_at_other_lengths(noisy_skeletons, min_length):
    skeletons = noisy_skeletons[:80]
    reference = np.stack([_rule(sk, min_length) for sk in skeletons])
    ours = prune_spurs(skeletons, min_length).numpy()
    identical = sum(np.array_equal(a, b) for a, b in zip(ours, reference))
    assert identical >= 78, identical


def test_agreement_on_ragged_skeletons():
    """Skeletons of thresholded smooth noise hold rings of junction pixels, where skan's own
    result depends on its edge order (module docstring: 70/100 identical, mean F1 0.998)."""
    rng = np.random.default_rng(1)
    skeletons = []
    for _ in range(60):
        smooth = ndi.gaussian_filter(rng.random((70, 90)), rng.uniform(1.0, 3.0))
        skeletons.append(skeletonize(smooth > np.quantile(smooth, rng.uniform(0.2, 0.8))))
    skeletons = np.stack(skeletons).astype(np.uint8)
    reference = np.stack([_rule(sk) for sk in skeletons])
    per_image, total = _f1(prune_spurs(skeletons).numpy(), reference)
    assert per_image.mean() >= 0.995 and total >= 0.99, (per_image.mean(), total)


def test_tflite_builtin_ops_only(noisy_skeletons):
    from ai_edge_litert.interpreter import Interpreter

    @tf.function(input_signature=[tf.TensorSpec([4, 128, 128, 1], tf.float32)])
    def prune(x):
        return prune_spurs(x, 10)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [prune.get_concrete_function()], prune
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    # The images with the most pruning among the first 40, so that the loops run.
    candidates = noisy_skeletons[:40]
    removed = candidates.sum((1, 2)) - np.stack([_rule(s) for s in candidates]).sum((1, 2))
    skeletons = candidates[np.argsort(-removed, kind="stable")[:4]]
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"], skeletons[..., None].astype(np.float32)
    )
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[..., 0]
    np.testing.assert_array_equal(out, np.stack([_rule(sk) for sk in skeletons]))
