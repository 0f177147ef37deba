"""tf.data pipelines: sample streams → fit to size → D4 augmentation → noise → batch → prefetch.

A *sample stream* is a `tf.data.Dataset` of `(image, target)` pairs, `[H, W, 1]` float32 in
0..1, from a synthetic source or a folder. These functions turn it into the batched training
and validation datasets `model.fit` consumes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_skel.data.augment import add_input_noise, random_colour, random_d4, random_fit

__all__ = ["training_pipeline", "evaluation_pipeline", "samples_dataset", "split_indices"]


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/validation split of `range(count)`; at least one sample on each side."""
    if count < 2:
        raise ValueError(f"need at least 2 samples to split, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(max(1, int(round(count * val_fraction))), count - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def samples_dataset(samples: Sequence[tuple[np.ndarray, np.ndarray]], image_channels: int = 1) -> tf.data.Dataset:
    """An in-memory sample stream from `(image, skeleton)` arrays of any (differing) sizes:
    `(H, W)` binary shapes (`image_channels` 1) or `(H, W, C)` images."""

    def generator():
        for image, skeleton in samples:
            image = np.asarray(image, np.float32)
            yield (image[..., None] if image.ndim == 2 else image, np.asarray(skeleton, np.float32)[..., None])

    spec = tf.TensorSpec([None, None, 1], tf.float32)
    image_spec = tf.TensorSpec([None, None, image_channels], tf.float32)
    return tf.data.Dataset.from_generator(generator, output_signature=(image_spec, spec))


def training_pipeline(
    stream: tf.data.Dataset,
    image_size: tuple[int, int],
    batch_size: int,
    seed: int,
    augment: bool = True,
    input_noise_std: float = 0.0,
    shuffle_buffer: int = 0,
    *,
    image_channels: int = 1,
    target_fn=None,
    colour_strength: float = 0.0,
) -> tf.data.Dataset:
    """Batched, augmented, prefetched training data from a sample stream.

    Args:
        stream: `(image, target)` pairs, `[H, W, 1]` each (sizes may differ).
        image_size: `(height, width)` of the training crops; for D4 rotations to keep a fixed
            shape it must be square when `augment` is on.
        batch_size: samples per batch.
        seed: seed of the crop, D4 and noise draws.
        augment: apply a random D4 transform to each pair.
        input_noise_std: standard deviation of Gaussian noise added to the input (0 = off).
        shuffle_buffer: shuffle buffer size (0 = no shuffling, e.g. for fresh synthetic
            samples).
        image_channels: channels of the input images (1 binary shapes, 3 RGB).
        target_fn: maps each cropped, augmented `[h, w, 1]` skeleton to the training target
            (`data.natural_pipeline`: the flux field made after the D4 transform, so its
            vectors turn with the image); None keeps the target as it is.
        colour_strength: strength of `random_colour` on RGB inputs (0 = off).

    Returns:
        An infinite dataset of `([B, h, w, image_channels], [B, h, w, C])` batches (call
        `.take` or pass `steps_per_epoch`).
    """
    if augment and image_size[0] != image_size[1]:
        raise ValueError(f"D4 augmentation needs a square image_size, got {tuple(image_size)}")
    size = tuple(int(s) for s in image_size)
    ds = stream.repeat()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    if colour_strength and image_channels != 3:
        raise ValueError(f"colour augmentation needs RGB inputs, got {image_channels} channel(s)")
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).batch(4 if colour_strength else 3))

    def transform(pair, draws):
        image, target = pair
        seeds = tf.stack([draws, tf.zeros_like(draws)], axis=1)
        image, target = random_fit(image, target, size, seeds[0])
        if augment:
            image, target = random_d4(image, target, seeds[1])
        if input_noise_std > 0:
            image = add_input_noise(image, input_noise_std, seeds[2])
        if colour_strength:
            image = random_colour(image, seeds[3], colour_strength)
        image = tf.reshape(image, [size[0], size[1], image_channels])
        target = tf.reshape(target, [size[0], size[1], 1])
        return image, (target if target_fn is None else target_fn(target))

    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_pipeline(samples: Sequence[tuple[np.ndarray, np.ndarray]], image_size: tuple[int, int],
                        batch_size: int, *, image_channels: int = 1, target_fn=None) -> tf.data.Dataset:
    """Validation batches for `model.fit` (val loss): each sample padded/cropped to `image_size`
    around its centre, no augmentation, cached; `image_channels` and `target_fn` as in
    `training_pipeline`."""
    size = tuple(int(s) for s in image_size)

    def centre(image, target):
        stacked = tf.image.resize_with_crop_or_pad(tf.concat([image, target], -1), size[0], size[1])
        target = tf.reshape(stacked[..., image_channels:], [*size, 1])
        image = tf.reshape(stacked[..., :image_channels], [*size, image_channels])
        return image, (target if target_fn is None else target_fn(target))

    # A known cardinality lets Keras count validation steps instead of running into the end of
    # the data (which it reports as "input ran out of data" the first time).
    ds = samples_dataset(samples, image_channels).apply(tf.data.experimental.assert_cardinality(len(samples)))
    ds = ds.map(centre, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)
