"""Augmentations that keep a 1-px skeleton exact: the 8 D4 transforms (90° rotations × flips).

Free rotation, scaling or shear would resample the target and break its 1-px, 8-connected
form (Panichev & Voloshyna, §3.3); those variations are made at synthesis time instead.
All functions use stateless random ops with an explicit `[2]` seed, so a pipeline is
reproducible for a given seed.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["d4_transform", "random_d4", "random_fit", "add_input_noise", "random_colour"]


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


def random_colour(image: tf.Tensor, seed: tf.Tensor, strength: float = 1.0) -> tf.Tensor:
    """Photometric augmentation of an RGB image in [0, 1] (`[H, W, 3]`), for natural images.

    A random permutation of the colour channels, inversion (probability 0.2 × `strength`),
    hue shift (up to ±0.5 × `strength` of the colour circle), saturation ×[1 − 0.7s, 1 + 0.7s],
    contrast ×[1 − 0.5s, 1 + 0.5s], brightness ±0.15s and, with probability 0.1 × `strength`,
    grey: it multiplies the looks of a fixed set of textures, so a model cannot learn that a
    given colour or pattern is the object (or the background). Geometry is untouched, so the
    skeleton target stays as it is.
    """
    s = float(strength)
    seeds = tf.random.experimental.stateless_split(seed, 8)
    image = tf.convert_to_tensor(image)
    order = tf.argsort(tf.random.stateless_uniform([3], seed=seeds[0]))
    image = tf.gather(image, order, axis=-1)
    draws = tf.random.stateless_uniform([2], seed=seeds[1])
    image = tf.where(draws[0] < 0.2 * s, 1.0 - image, image)
    if s > 0:
        image = tf.image.stateless_random_hue(image, min(0.5 * s, 0.5), seeds[2])
        image = tf.image.stateless_random_saturation(image, max(1.0 - 0.7 * s, 0.0), 1.0 + 0.7 * s, seeds[3])
        image = tf.image.stateless_random_contrast(image, max(1.0 - 0.5 * s, 0.0), 1.0 + 0.5 * s, seeds[4])
        image = tf.image.stateless_random_brightness(image, 0.15 * s, seeds[5])
    grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    image = tf.where(draws[1] < 0.1 * s, grey, image)
    return tf.clip_by_value(image, 0.0, 1.0)
