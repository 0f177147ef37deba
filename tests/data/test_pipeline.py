import numpy as np
import pytest
import tensorflow as tf

from keras_skel.data.augment import d4_transform, random_d4, random_fit
from keras_skel.data.pipeline import evaluation_pipeline, samples_dataset, split_indices, training_pipeline


def _asym(h=6, w=6):
    x = np.zeros((h, w, 1), np.float32)
    x[0, 1] = 1
    x[2, 4] = 1
    return x


def test_d4_produces_the_eight_distinct_transforms():
    x = tf.constant(_asym())
    seen = {d4_transform(x, k, tf.constant(f)).numpy().tobytes() for k in range(4) for f in (False, True)}
    assert len(seen) == 8


def test_random_d4_applies_same_transform_to_input_and_target():
    x = tf.constant(_asym())
    for s in range(20):
        a, b = random_d4(x, x * 2, tf.constant([s, 0]))
        np.testing.assert_array_equal(a.numpy() * 2, b.numpy())


def test_d4_keeps_a_skeleton_one_pixel_thin():
    from skimage.morphology import skeletonize

    skel = skeletonize(np.pad(np.ones((5, 20), bool), 4))[..., None].astype(np.float32)
    for k in range(4):
        for f in (False, True):
            out = d4_transform(tf.constant(skel), k, tf.constant(f)).numpy()[..., 0].astype(bool)
            assert out.sum() == skel.sum()
            np.testing.assert_array_equal(skeletonize(out), out)


def test_random_fit_pads_small_and_crops_large():
    small = tf.ones((5, 7, 1))
    a, b = random_fit(small, small, (8, 8), tf.constant([1, 2]))
    assert a.shape == (8, 8, 1) and float(tf.reduce_sum(a)) == 35.0
    big = tf.reshape(tf.range(400, dtype=tf.float32), (20, 20, 1))
    a, b = random_fit(big, big + 1, (8, 8), tf.constant([3, 4]))
    assert a.shape == (8, 8, 1)
    np.testing.assert_array_equal(a.numpy() + 1, b.numpy())


def test_training_pipeline_batches_deterministically():
    samples = [(np.eye(10, dtype=bool), np.eye(10, dtype=np.uint8)), (np.ones((12, 9), bool), np.zeros((12, 9)))]
    make = lambda: training_pipeline(samples_dataset(samples), (8, 8), 3, seed=5, shuffle_buffer=2)  # noqa: E731
    first = [b[0].numpy() for b in make().take(2)]
    second = [b[0].numpy() for b in make().take(2)]
    assert first[0].shape == (3, 8, 8, 1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_training_pipeline_rejects_non_square_with_augment():
    with pytest.raises(ValueError, match="square"):
        training_pipeline(samples_dataset([]), (8, 16), 2, seed=0)


def test_input_noise_only_touches_input():
    samples = [(np.ones((8, 8), bool), np.ones((8, 8)))]
    x, y = next(iter(training_pipeline(samples_dataset(samples), (8, 8), 1, seed=0, augment=False,
                                       input_noise_std=0.1)))
    assert not np.allclose(x.numpy(), 1.0)
    np.testing.assert_array_equal(y.numpy(), 1.0)


def test_evaluation_pipeline_centres():
    samples = [(np.ones((4, 4), bool), np.ones((4, 4)))]
    x, y = next(iter(evaluation_pipeline(samples, (8, 8), 2)))
    assert x.shape == (1, 8, 8, 1) and float(tf.reduce_sum(x)) == 16 and x[0, 2, 2, 0] == 1


def test_split_indices_is_seeded_and_disjoint():
    tr, va = split_indices(10, 0.2, seed=3)
    assert len(va) == 2 and len(tr) == 8 and not set(tr) & set(va)
    tr2, va2 = split_indices(10, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    with pytest.raises(ValueError):
        split_indices(1, 0.5, 0)
