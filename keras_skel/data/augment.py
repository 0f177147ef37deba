"""Augmentations that keep a 1-px skeleton exact: the 8 D4 transforms (90° rotations × flips).

Free rotation, scaling or shear would resample the target and break its 1-px, 8-connected
form (Panichev & Voloshyna, §3.3); those variations are made at synthesis time instead.
All functions use stateless random ops with an explicit `[2]` seed, so a pipeline is
reproducible for a given seed.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["d4_transform", "random_d4", "random_fit", "add_input_noise"]


def d4_transform(x: tf.Tensor, k: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Rotates `x` (`[H, W, C]`) by `k`·90° and then mirrors it left-right when `flip`."""
    x = tf.image.rot90(x, k=k)
    return tf.cond(flip, lambda: tf.image.flip_left_right(x), lambda: x)


def random_d4(image: tf.Tensor, target: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies one of the 8 D4 transforms, the same one, to `image` and `target`.

    Args:
        image: `[H, W, C]` input.
        target: `[H, W, C']` target.
        seed: `[2]` int seed of the stateless random draw.

    Returns:
        The transformed `(image, target)`; H and W swap for odd rotations.
    """
    draw = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=4, dtype=tf.int32)
    k, flip = draw[0], draw[1] >= 2
    return d4_transform(image, k, flip), d4_transform(target, k, flip)


def random_fit(image: tf.Tensor, target: tf.Tensor, size: tuple[int, int],
               seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Pads (background, centred) and randomly crops `image` and `target` together to `size`.

    Cropping keeps every skeleton pixel where it was (no resampling); images smaller than
    `size` are padded with background.
    """
    stacked = tf.concat([image, target], axis=-1)
    channels = stacked.shape[-1]
    shape = tf.shape(stacked)
    height, width = tf.maximum(shape[0], size[0]), tf.maximum(shape[1], size[1])
    stacked = tf.image.pad_to_bounding_box(
        stacked, (height - shape[0]) // 2, (width - shape[1]) // 2, height, width
    )
    stacked = tf.image.stateless_random_crop(stacked, [size[0], size[1], channels], seed=seed)
    n = image.shape[-1]
    return stacked[..., :n], stacked[..., n:]


def add_input_noise(image: tf.Tensor, std: float, seed: tf.Tensor) -> tf.Tensor:
    """Adds Gaussian noise of standard deviation `std` to the input (not the target)."""
    return image + std * tf.random.stateless_normal(tf.shape(image), seed=seed, dtype=image.dtype)
