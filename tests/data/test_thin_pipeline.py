import numpy as np
import pytest
import tensorflow as tf

from keras_skel.data.targets import tubed_skeleton
from keras_skel.data.thin_pipeline import (
    encode_targets,
    output_channels,
    thin_deep_supervision_targets,
    thin_evaluation_pipeline,
    thin_samples_dataset,
    thin_training_pipeline,
)


def _samples(shape, classes, count=3):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        labels = np.zeros(shape, np.uint8)
        centre = tuple(s // 2 for s in shape)
        # A thick bar along the last axis through the centre, one class per sample.
        index = tuple(slice(c - 2, c + 3) for c in centre[:-1]) + (slice(2, shape[-1] - 2),)
        labels[index] = rng.integers(1, classes + 1)
        out.append((rng.random(shape).astype(np.float32), labels))
    return out


@pytest.mark.parametrize("shape,size", [((40, 40), (32, 32)), ((20, 24, 24), (16, 16, 16))])
@pytest.mark.parametrize("classes", [1, 3])
def test_training_batches_carry_segmentation_then_tube(shape, size, classes):
    samples = _samples(shape, classes)
    ds = thin_training_pipeline(thin_samples_dataset(samples), size, 2, seed=0, classes=classes, with_tube=True,
                                finite=True)
    x, y = next(iter(ds))
    c = output_channels(classes)
    assert x.shape == (2, *size, 1) and y.shape == (2, *size, 2 * c)
    seg, tube = y[..., :c].numpy(), y[..., c:].numpy()
    assert np.all(tube <= seg)  # the tube lies inside its class
    assert tube.sum() > 0
    if classes > 1:
        np.testing.assert_array_equal(seg.sum(-1), 1)  # one-hot with background
        assert tube[..., 0].sum() == 0


def test_without_augmentation_the_tube_is_the_crop_of_the_whole_samples_tube():
    samples = _samples((32, 32), 2, count=1)
    ds = thin_training_pipeline(thin_samples_dataset(samples), (32, 32), 1, seed=0, classes=2, with_tube=True,
                                augment=False, finite=True)
    _, y = next(iter(ds))
    expected = tubed_skeleton(samples[0][1])
    got = np.argmax(y[0, ..., 3:].numpy(), -1) * (y[0, ..., 3:].numpy().sum(-1) > 0)
    np.testing.assert_array_equal(got, expected)


def test_augmentation_keeps_image_and_targets_aligned():
    image = np.zeros((24, 24), np.float32)
    labels = np.zeros((24, 24), np.uint8)
    labels[5:8, 3:20] = 1
    image[labels > 0] = 1.0  # the image shows the labels: any misalignment shows
    ds = thin_training_pipeline(thin_samples_dataset([(image, labels)]), (24, 24), 8, seed=3, classes=1,
                                with_tube=False, finite=True)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert len({x[i].numpy().tobytes() for i in range(8)}) > 2  # the transforms differ


def test_without_tube_targets_are_the_segmentation_only():
    samples = _samples((32, 32), 1)
    ds = thin_evaluation_pipeline(samples, (32, 32), 2, classes=1, with_tube=False)
    batches = list(ds)
    assert [b[1].shape[-1] for b in batches] == [1, 1]
    assert sum(b[0].shape[0] for b in batches) == 3


def test_deep_supervision_targets_subsample_segmentation_and_maxpool_tube():
    y = np.zeros((1, 8, 8, 2), np.float32)
    y[0, 1, :, 1] = 1  # a tube line on an odd row: subsampling would lose it, max-pooling keeps it
    y[0, 0, 0, 0] = 1
    targets = thin_deep_supervision_targets(tf.constant(y), depth=3, channels=1)
    assert sorted(targets) == ["probability", "side_1", "side_2"]
    assert targets["side_1"].shape == (1, 4, 4, 2)
    assert targets["side_1"][0, 0, :, 1].numpy().tolist() == [1, 1, 1, 1]
    assert targets["side_2"][0, 0, 0, 0] == 1


def test_encode_targets_and_channel_rule():
    labels = tf.constant(np.array([[[0], [2]]], np.uint8))
    assert encode_targets(labels, None, 2).numpy().tolist() == [[[1, 0, 0], [0, 0, 1]]]
    assert encode_targets(labels, None, 1).numpy().tolist() == [[[0], [1]]]
    assert output_channels(1) == 1 and output_channels(4) == 5
    with pytest.raises(ValueError):
        output_channels(0)
