"""Shape handling shared by the mask ops of `keras_skel.ops`.

Every op takes `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` masks of any numeric or bool dtype
(nonzero = foreground) and returns the layout it was given; this module checks the rank at
trace time and converts in and out once, for all of them.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["foreground_bhw", "foreground_nhwc", "restore_rank"]


def foreground_bhw(mask: tf.Tensor, name: str, what: str = "mask",
                   max_size: int | None = None) -> tuple[tf.Tensor, int]:
    """Checks `mask`'s shape; returns its `[B, H, W]` bool foreground (nonzero) and its rank.

    Raises:
        ValueError: (naming the op `name` and its argument `what`) at trace time on a wrong or
            unknown rank, a static channel dimension other than 1, or a static H or W above
            `max_size`.
    """
    mask = tf.convert_to_tensor(mask)
    rank = mask.shape.rank
    if rank not in (2, 3, 4):
        found = "unknown rank" if rank is None else f"rank {rank}, shape {mask.shape}"
        raise ValueError(f"{name} expects a {what} of shape [H, W], [N, H, W] or [N, H, W, 1]; got {found}")
    if rank == 4 and mask.shape[-1] not in (None, 1):
        raise ValueError(f"{name} expects one channel in a rank-4 {what} [N, H, W, 1]; got shape {mask.shape}")
    spatial = mask.shape[1:3] if rank == 4 else mask.shape[-2:]
    if max_size is not None and any(size is not None and size > max_size for size in spatial):
        raise ValueError(f"{name} supports H and W up to {max_size}; got shape {mask.shape}")

    if mask.dtype == tf.bool:
        foreground = mask
    else:
        if mask.dtype in (tf.uint8, tf.int8, tf.uint16, tf.int16):
            # Exact, and TFLite builtins have no NOT_EQUAL kernel for these types.
            mask = tf.cast(mask, tf.int32)
        foreground = tf.not_equal(mask, tf.zeros([], mask.dtype))
    if rank == 2:
        foreground = tf.expand_dims(foreground, 0)
    elif rank == 4:
        # Static channel entry dropped; fails at run time if an unknown channel count is not 1.
        shape = tf.shape(foreground)
        foreground = tf.reshape(foreground, [shape[0], shape[1], shape[2]])
    return foreground, rank


def foreground_nhwc(mask: tf.Tensor, name: str, dtype: tf.DType, what: str = "mask") -> tuple[tf.Tensor, int]:
    """Like `foreground_bhw`, as a 0/1 `[N, H, W, 1]` tensor of `dtype` (static channel 1, which
    conv2d needs and TFLite builtins want)."""
    foreground, rank = foreground_bhw(mask, name, what)
    return tf.expand_dims(tf.cast(foreground, dtype), -1), rank


def restore_rank(result: tf.Tensor, rank: int) -> tf.Tensor:
    """`[B, H, W]` or `[B, H, W, 1]` → the layout the op was given (`rank` 2, 3 or 4)."""
    if result.shape.rank == 4:
        result = tf.squeeze(result, [3])
    if rank == 2:
        return tf.squeeze(result, [0])
    if rank == 4:
        return tf.expand_dims(result, -1)
    return result
