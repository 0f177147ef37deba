"""Hole filling of binary maps as TensorFlow graph ops, exact against scipy.ndimage.

A hole is a connected component of background (4-connected, the default structure of
`scipy.ndimage.binary_fill_holes` and `scipy.ndimage.label` in 2-D) that does not touch the
image border. `fill_holes` fills all of them, as `binary_fill_holes` does, or only those
smaller than `max_area` pixels: CANet's "repaired" input fills the small holes that boundary
noise punches into a shape (< 16 px) and keeps the real loops.

The background components are labelled in the graph by min-label propagation with hooking and
pointer jumping (the scheme of Shiloach & Vishkin, as in FastSV): every pixel holds a pointer
to a pixel of its component with a smaller or equal flat index. One round takes, per pixel,
the least pointer along its whole horizontal run of background, then along its vertical run
(`unsorted_segment_min` over run ids, so a straight corridor is crossed in one round), lowers
the pointer of the pixel it points to (hooking), and jumps pointers to their pointer's pointer.
Rounds repeat in a `tf.while_loop` until nothing changes, which leaves one label per
component; `unsorted_segment_max/sum` then tell which components touch the border and how
large they are. No `tf.nn.dilation2d` (it blocks TFLite builtins, see `TF_NOTES.md`).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["fill_holes"]


def _run_segments(background: tf.Tensor, axis: int) -> tf.Tensor:
    """`[B, H, W]` bool → int32 id of each background pixel's run along `axis` (1 or 2).

    Ids are unique over the batch and lie in [0, B·H·W); foreground pixels get B·H·W.
    """
    shape = tf.shape(background)
    batch, height, width = shape[0], shape[1], shape[2]
    if axis == 2:
        before = tf.pad(background[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
    else:
        before = tf.pad(background[:, :-1, :], [[0, 0], [1, 0], [0, 0]])
    starts = tf.cast(background & tf.logical_not(before), tf.int32)
    run = tf.cumsum(starts, axis=axis) - 1  # run number within the row / column
    if axis == 2:
        line = tf.reshape(tf.range(batch * height), [batch, height, 1])
        segment = line * width + run
    else:
        line = tf.reshape(tf.range(batch * width), [batch, 1, width])
        segment = line * height + run
    return tf.where(background, segment, batch * height * width)


def _background_components(background: tf.Tensor) -> tf.Tensor:
    """`[B, H, W]` bool → `[B, H, W]` int32 label of each pixel's 4-connected component.

    Labels are flat pixel indices in [0, B·H·W), one per component; foreground gets B·H·W.
    """
    shape = tf.shape(background)
    pixels = shape[0] * shape[1] * shape[2]
    dump = tf.reshape(pixels, [1])  # the label and segment of foreground pixels
    rows = tf.reshape(_run_segments(background, 2), [-1])
    columns = tf.reshape(_run_segments(background, 1), [-1])
    flat_background = tf.reshape(background, [-1])
    labels = tf.where(flat_background, tf.range(pixels), pixels)

    def round_(labels: tf.Tensor, _: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        least = tf.gather(tf.math.unsorted_segment_min(labels, rows, pixels + 1), rows)
        least = tf.gather(tf.math.unsorted_segment_min(least, columns, pixels + 1), columns)
        # Hooking: the pixel each label points to takes the least label seen by its pointers.
        hooked = tf.math.unsorted_segment_min(least, labels, pixels + 1)[:pixels]
        updated = tf.minimum(tf.minimum(labels, least), hooked)
        # Pointer jumping; foreground points to the dump, which points to itself.
        updated = tf.gather(tf.concat([updated, dump], 0), updated)
        return updated, tf.reduce_any(tf.not_equal(updated, labels))

    labels, _ = tf.while_loop(
        lambda _, changed: changed,
        round_,
        [labels, tf.constant(True)],
        shape_invariants=[tf.TensorShape([None]), tf.TensorShape([])],
    )
    return tf.reshape(labels, shape)


def _fill_bhw(foreground: tf.Tensor, max_area: tf.Tensor | None) -> tf.Tensor:
    """`[B, H, W]` bool → `[B, H, W]` bool with holes (of area < `max_area`) filled."""
    background = tf.logical_not(foreground)
    shape = tf.shape(foreground)
    height, width = shape[1], shape[2]
    pixels = shape[0] * height * width
    labels = tf.reshape(_background_components(background), [-1])

    i = tf.reshape(tf.range(height), [1, height, 1])
    j = tf.reshape(tf.range(width), [1, 1, width])
    border = tf.equal(i, 0) | tf.equal(i, height - 1) | tf.equal(j, 0) | tf.equal(j, width - 1)
    on_border = tf.reshape(tf.cast(background & border, tf.int32), [-1])
    touches = tf.math.unsorted_segment_max(on_border, labels, pixels + 1)
    hole = tf.equal(tf.gather(touches, labels), 0)
    if max_area is not None:
        ones = tf.cast(tf.reshape(background, [-1]), tf.int32)
        area = tf.math.unsorted_segment_sum(ones, labels, pixels + 1)
        hole = hole & (tf.gather(area, labels) < max_area)
    return foreground | (background & tf.reshape(hole, shape))


# Eager calls run the loop as one graph; the signature's None dims make that a single trace.
_fill_all_graph = tf.function(
    lambda foreground: _fill_bhw(foreground, None),
    input_signature=[tf.TensorSpec([None, None, None], tf.bool)],
)
_fill_small_graph = tf.function(
    _fill_bhw,
    input_signature=[tf.TensorSpec([None, None, None], tf.bool), tf.TensorSpec([], tf.int32)],
)


def fill_holes(mask: tf.Tensor, max_area: int | tf.Tensor | None = None) -> tf.Tensor:
    """Fills the holes of a binary map: background regions that do not touch the border.

    With `max_area=None` this equals `scipy.ndimage.binary_fill_holes(m)` (default structure)
    for each 2-D image `m` of the batch; otherwise only holes of fewer than `max_area` pixels
    are filled, and larger ones (real loops of a shape) are kept. Background connectivity is
    4 (edge neighbours), as scipy's default; holes touching the border at a corner only are
    still holes. Shapes inside a filled hole are part of the filled region; a hole's area
    counts its background pixels only. Pure TensorFlow ops (exact, see the module docstring);
    works eagerly and inside `tf.function` with unknown batch, height and width. The number
    of loop rounds is data dependent (a few for blobs, more for long winding corridors) and
    a batch runs until its slowest image converges.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground. N·H·W below 2^31.
        max_area: fill only holes with area < `max_area` pixels (an int or int32 scalar
            tensor); None fills all holes.

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`: the foreground plus the filled holes.

    Raises:
        ValueError: if the rank of `mask` is unknown or not 2, 3 or 4, or a rank-4 `mask` has a
            static channel dimension other than 1.

    Example:
        >>> ring = np.ones([5, 5], np.uint8)
        >>> ring[1:4, 1:4] = 0  # a 3×3 hole
        >>> ring[2, 2] = 1
        >>> fill_holes(ring).numpy().min()
        1
        >>> fill_holes(ring, max_area=8).numpy()[1:4, 1:4]  # 8 px: not below 8, kept
        array([[0, 0, 0],
               [0, 1, 0],
               [0, 0, 0]], dtype=uint8)

    References:
        `scipy.ndimage.binary_fill_holes`. Y. Shiloach and U. Vishkin, "An O(log n) parallel
        connectivity algorithm", Journal of Algorithms 3(1):57-67, 1982. Y. Zhang, A. Azad and
        Z. Hu, "FastSV: a distributed-memory connected component algorithm with fast
        convergence", SIAM PP 2020. CANet's repaired distance map: see
        `keras_skel.models.canet`.
    """
    mask = tf.convert_to_tensor(mask)
    rank = mask.shape.rank
    if rank not in (2, 3, 4):
        found = "unknown rank" if rank is None else f"rank {rank}, shape {mask.shape}"
        raise ValueError(
            f"fill_holes expects a mask of shape [H, W], [N, H, W] or [N, H, W, 1]; got {found}"
        )
    if rank == 4 and mask.shape[-1] not in (None, 1):
        raise ValueError(
            f"fill_holes expects one channel in a rank-4 mask [N, H, W, 1]; got shape {mask.shape}"
        )
    foreground = tf.not_equal(mask, tf.zeros([], mask.dtype))
    if rank == 2:
        foreground = tf.expand_dims(foreground, 0)
    elif rank == 4:
        # Fails at run time if an unknown channel dimension is not 1.
        shape = tf.shape(foreground)
        foreground = tf.reshape(foreground, [shape[0], shape[1], shape[2]])

    eager = tf.executing_eagerly()
    if max_area is None:
        filled = _fill_all_graph(foreground) if eager else _fill_bhw(foreground, None)
    else:
        max_area = tf.cast(max_area, tf.int32)
        filled = _fill_small_graph(foreground, max_area) if eager else _fill_bhw(foreground, max_area)

    filled = tf.cast(filled, tf.uint8)
    if rank == 2:
        return tf.squeeze(filled, [0])
    if rank == 4:
        return tf.expand_dims(filled, -1)
    return filled
