import numpy as np
import pytest
import tensorflow as tf

from keras_skel.data.augment import d4_transform, random_colour, random_d4, random_fit
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


def _colour_image(seed=0, h=16, w=20):
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.float32)
    image[..., 0] = np.linspace(0.1, 0.9, w)[None]
    image[..., 1] = np.linspace(0.8, 0.2, h)[:, None]
    image[..., 2] = rng.uniform(0.0, 1.0, (h, w))
    return image


def test_random_colour_is_seeded_varied_and_in_range():
    image = tf.constant(_colour_image())
    outs = [random_colour(image, tf.constant([s, 3])).numpy() for s in range(12)]
    np.testing.assert_array_equal(outs[0], random_colour(image, tf.constant([0, 3])).numpy())
    assert all(o.shape == (16, 20, 3) and o.min() >= 0.0 and o.max() <= 1.0 for o in outs)
    assert len({o.tobytes() for o in outs}) == 12  # every seed its own look
    # Geometry is kept: each pixel's new colour is a function of its old colour only, so the
    # pixels of one old colour keep one new colour (checked on a two-colour image).
    two = np.zeros((8, 8, 3), np.float32)
    two[2:6, 2:6] = [0.9, 0.3, 0.1]
    two[~np.pad(np.ones((4, 4), bool), 2)] = [0.2, 0.4, 0.7]
    for s in range(8):
        out = random_colour(tf.constant(two), tf.constant([s, 0])).numpy()
        inside = np.pad(np.ones((4, 4), bool), 2)
        assert np.ptp(out[inside], axis=0).max() < 1e-6 and np.ptp(out[~inside], axis=0).max() < 1e-6


def test_random_colour_strength_zero_only_permutes_and_inverts():
    image = _colour_image(1)
    for s in range(10):
        out = random_colour(tf.constant(image), tf.constant([s, 1]), strength=0.0).numpy()
        # no inversion or grey at strength 0: the output is the input's channels reordered
        assert any(np.allclose(out, image[..., list(p)], atol=1e-6)
                   for p in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)))


def test_training_pipeline_colour_augmentation_touches_only_rgb_inputs():
    image = _colour_image(2, 8, 8)
    target = np.eye(8, dtype=np.uint8)
    stream = samples_dataset([(image, target)], image_channels=3)
    plain = next(iter(training_pipeline(stream, (8, 8), 4, seed=0, augment=False, image_channels=3)))
    coloured = next(iter(training_pipeline(stream, (8, 8), 4, seed=0, augment=False, image_channels=3,
                                           colour_strength=1.0)))
    np.testing.assert_array_equal(plain[1].numpy(), coloured[1].numpy())
    assert not np.allclose(plain[0].numpy(), coloured[0].numpy())
    assert len({x.tobytes() for x in coloured[0].numpy()}) == 4  # a new look per sample
    with pytest.raises(ValueError, match="RGB"):
        training_pipeline(samples_dataset([]), (8, 8), 2, seed=0, colour_strength=0.5)


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
