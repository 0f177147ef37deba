"""tf.data pipelines for thin-structure segmentation, 2-D images and 3-D volumes.

A *thin sample stream* is a `tf.data.Dataset` of `(image, labels)`: `[*spatial, 1]` float32 in
0..1 and `[*spatial, 1]` uint8 (0 = background, 1..K = classes). The training pipeline:

    stream → tubed skeleton (CPU, `data.targets.tubed_skeleton`, parallel map; cached once per
    dataset for a finite stream) → repeat/shuffle → random crop + flips/rotations → one-hot
    (+ the tube's one-hot) → batch → prefetch

Targets are `y = concat(one_hot(labels), one_hot(tube))` along the channels when the loss uses
the tubed skeleton (Skeleton Recall), `one_hot(labels)` otherwise; with `classes == 1` the
"one-hot" is the single binary channel (sigmoid models), else `classes + 1` channels with the
background first (softmax models). See `losses.functional.thin_segmentation`.

The tube is made before cropping and augmenting, on the whole sample: skeletonization is a
global operation, and a crop's skeleton would grow spurs at the crop edges.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_skel.data.targets import tubed_skeleton

__all__ = [
    "output_channels",
    "thin_samples_dataset",
    "add_tubed_skeleton",
    "encode_targets",
    "thin_training_pipeline",
    "thin_evaluation_pipeline",
    "thin_deep_supervision_targets",
]


def output_channels(classes: int) -> int:
    """Channels of a model (and its one-hot target) for `classes` foreground classes."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    return 1 if classes == 1 else classes + 1


def thin_samples_dataset(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> tf.data.Dataset:
    """An in-memory thin sample stream from `(image, labels)` arrays (2-D or 3-D, sizes may differ)."""
    if not samples:
        raise ValueError("no samples")
    rank = np.asarray(samples[0][0]).ndim

    def generator():
        for image, labels in samples:
            yield (np.asarray(image, np.float32)[..., None], np.asarray(labels, np.uint8)[..., None])

    return tf.data.Dataset.from_generator(generator, output_signature=(
        tf.TensorSpec([None] * rank + [1], tf.float32), tf.TensorSpec([None] * rank + [1], tf.uint8)))


def add_tubed_skeleton(stream: tf.data.Dataset, radius: int = 2) -> tf.data.Dataset:
    """Maps `(image, labels)` to `(image, labels, tube)` with the tubed skeleton made on the CPU
    (`tubed_skeleton`, NumPy/scikit-image, run in parallel by `tf.data`)."""

    def with_tube(image, labels):
        tube = tf.numpy_function(lambda lab: tubed_skeleton(lab[..., 0], radius)[..., None], [labels], tf.uint8,
                                 stateful=False)
        tube = tf.ensure_shape(tube, labels.shape)
        return image, labels, tube

    return stream.map(with_tube, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def encode_targets(labels: tf.Tensor, tube: tf.Tensor | None, classes: int) -> tf.Tensor:
    """`one_hot(labels)` (and the tube's one-hot after it) in the loss's channel layout."""

    def one_hot(x):
        x = tf.cast(x[..., 0], tf.int32)
        if classes == 1:
            return tf.cast(x > 0, tf.float32)[..., None]
        return tf.one_hot(x, classes + 1, dtype=tf.float32)

    if tube is None:
        return one_hot(labels)
    tube = one_hot(tube)
    if classes > 1:  # the tube has no background channel: it marks structure pixels only
        tube = tf.concat([tf.zeros_like(tube[..., :1]), tube[..., 1:]], axis=-1)
    return tf.concat([one_hot(labels), tube], axis=-1)


def _random_crop_flip(tensors: list[tf.Tensor], size: tuple[int, ...], seed: tf.Tensor, augment: bool):
    """Pads (end, background) and crops all `tensors` the same way; then random flips along
    every spatial axis and, when the last two axes are equal, a random 90° rotation in them."""
    counts = [int(t.shape[-1]) for t in tensors]
    stacked = tf.concat([tf.cast(t, tf.float32) for t in tensors], axis=-1)
    shape = tf.shape(stacked)
    rank = len(size)
    pads = [[0, tf.maximum(size[i] - shape[i], 0)] for i in range(rank)] + [[0, 0]]
    stacked = tf.pad(stacked, pads)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    stacked = tf.image.stateless_random_crop(stacked, [*size, sum(counts)], seed=seeds[0])
    if augment:
        flips = tf.random.stateless_uniform([rank], seed=seeds[1], maxval=2, dtype=tf.int32)
        for axis in range(rank):
            stacked = tf.cond(flips[axis] > 0, lambda a=axis, s=stacked: tf.reverse(s, [a]), lambda s=stacked: s)
        if size[-1] == size[-2]:
            k = tf.random.stateless_uniform([], seed=seeds[2], maxval=4, dtype=tf.int32)
            perm = list(range(rank + 1))
            perm[rank - 2], perm[rank - 1] = perm[rank - 1], perm[rank - 2]
            for turn in range(1, 4):  # a 90° turn = transpose the last two axes, flip one
                stacked = tf.cond(k >= turn, lambda s=stacked: tf.reverse(tf.transpose(s, perm), [rank - 1]),
                                  lambda s=stacked: s)
    stacked = tf.ensure_shape(stacked, [*size, sum(counts)])
    out, start = [], 0
    for t, n in zip(tensors, counts):
        out.append(tf.cast(stacked[..., start:start + n], t.dtype))
        start += n
    return out


def thin_training_pipeline(
    stream: tf.data.Dataset,
    image_size: Sequence[int],
    batch_size: int,
    seed: int,
    classes: int,
    with_tube: bool,
    tube_radius: int = 2,
    augment: bool = True,
    finite: bool = False,
    shuffle_buffer: int = 0,
) -> tf.data.Dataset:
    """Batched, augmented, prefetched thin-structure training data.

    Args:
        stream: `(image, labels)` samples, `[*spatial, 1]` (2-D or 3-D).
        image_size: spatial size of the training crops (2 or 3 entries).
        batch_size: samples per batch.
        seed: seed of the crops and flips.
        classes: foreground classes K (1 = binary).
        with_tube: put the tubed skeleton into the targets (the Skeleton Recall loss).
        tube_radius: radius of the tube's diamond / octahedron.
        augment: random flips (and 90° rotations where the last two sides are equal).
        finite: `stream` is a finite dataset (a folder): its tubes are made once and cached.
        shuffle_buffer: shuffle buffer (0 = none).

    Returns:
        An infinite dataset of `([B, *size, 1], [B, *size, C or 2C])` batches.
    """
    size = tuple(int(s) for s in image_size)
    ds = add_tubed_skeleton(stream, tube_radius) if with_tube else stream
    if finite:
        ds = ds.cache()  # the CPU-side tubes are computed once per dataset
    ds = ds.repeat()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed))

    def transform(sample, draw):
        seed2 = tf.stack([draw, tf.zeros_like(draw)])
        image, labels, *tube = _random_crop_flip(list(sample), size, seed2, augment)
        return image, encode_targets(labels, tube[0] if tube else None, classes)

    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def thin_evaluation_pipeline(samples: Sequence[tuple[np.ndarray, np.ndarray]], image_size: Sequence[int],
                             batch_size: int, classes: int, with_tube: bool, tube_radius: int = 2) -> tf.data.Dataset:
    """Validation batches (validation loss): each sample cropped/padded at its start to
    `image_size`, no augmentation, cached."""
    size = tuple(int(s) for s in image_size)
    ds = thin_samples_dataset(samples)
    ds = add_tubed_skeleton(ds, tube_radius) if with_tube else ds

    def fit(*sample):
        counts = [int(t.shape[-1]) for t in sample]
        stacked = tf.concat([tf.cast(t, tf.float32) for t in sample], axis=-1)
        shape = tf.shape(stacked)
        stacked = tf.pad(stacked, [[0, tf.maximum(s - shape[i], 0)] for i, s in enumerate(size)] + [[0, 0]])
        stacked = tf.ensure_shape(stacked[tuple(slice(0, s) for s in size)], [*size, sum(counts)])
        image, labels = stacked[..., :1], stacked[..., 1:2]
        tube = stacked[..., 2:3] if with_tube else None
        return image, encode_targets(labels, tube, classes)

    ds = ds.apply(tf.data.experimental.assert_cardinality(len(samples)))
    return ds.map(fit, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def thin_deep_supervision_targets(y: tf.Tensor, depth: int, channels: int) -> dict[str, tf.Tensor]:
    """Targets of a deep-supervised thin model: `{"probability": y, "side_k": y at 1/2^k}`.

    The one-hot segmentation is subsampled (nearest: it stays one-hot), the tubed skeleton
    max-pooled (thin tubes survive).

    Args:
        y: batched targets `[N, *spatial, C]` or `[N, *spatial, 2C]`.
        depth: the model's depth (side outputs 1..depth-1).
        channels: C, the model's output channels.
    """
    y = tf.convert_to_tensor(y)
    rank = y.shape.rank - 2
    targets = {"probability": y}
    for k in range(1, depth):
        factor = 2**k
        seg = y[(slice(None),) + (slice(None, None, factor),) * rank + (slice(0, channels),)]
        parts = [seg]
        if y.shape[-1] == 2 * channels:
            parts.append(tf.nn.max_pool(y[..., channels:], factor, factor, padding="SAME"))
        targets[f"side_{k}"] = tf.concat(parts, axis=-1) if len(parts) > 1 else seg
    return targets
