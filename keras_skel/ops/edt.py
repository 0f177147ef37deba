"""Exact Euclidean distance transform of binary maps as TensorFlow graph ops.

`squared_distance_transform` gives, for every foreground pixel, the squared Euclidean distance
to the nearest background pixel as an exact integer, equal to
`scipy.ndimage.distance_transform_edt(mask) ** 2` on every input (2-D, per image of a batch);
`distance_transform` is its square root. Both run eagerly and inside `tf.function` with unknown
batch, height and width, so the distance map CANet takes as input is computed by the same ops
in training, in `predict` and in an exported SavedModel.

The algorithm is the separable one of Saito & Toriwaki / Meijster et al., with both passes made
data-parallel and linear in memory (no `[B, H, W, W]` tensor as a brute-force min-plus needs,
4.8 GB at 1024², see `TF_NOTES.md`):

1. Per column, the 1-D distance g to the nearest background pixel of that column, by
   ⌈log2 H⌉ doubling steps `g = min(g, g[i - s] + s, g[i + s] + s)`, s = 1, 2, 4, … (a jump
   of any length up to 2^k − 1 is a sum of distinct powers of two, all in one direction, so
   the chain of reads stays inside the image and costs exactly the jump's length).
2. Per row, `D(i) = min_j g(j)^2 + (i - j)^2`, the lower envelope of parabolas. The matrix
   `M[i, j] = g(j)^2 + (i - j)^2` is Monge (`M[i, j] + M[i', j'] < M[i, j'] + M[i', j]` for
   i < i', j < j'), so the leftmost minimiser `a(i)` is non-decreasing in i (Aggarwal et al.'s
   monotone minima). The minimisers are found coarse to fine: with `a` known at the multiples
   of 2s, `a` at an odd multiple of s lies between its two neighbours' minimisers. Those
   ranges tile the row, sharing only their end points, so a level scans each row once: every
   j belongs to one half-open range (each pixel carries its range's number from level to
   level: a range splits in two at the minimiser just found), reduced by
   `unsorted_segment_min`, plus one end point per range. ⌈log2 W⌉ + 1 levels in all:
   O(H·W·log W) work and O(H·W) memory. (Felzenszwalb & Huttenlocher's stack-based envelope
   is sequential along the row; this is the data-parallel equivalent.)

Arithmetic is int32 and exact; H and W up to 16384 are supported (a column without background
gets the 1-D distance H + W, whose square must fit in int32 with the row term added).

The graph converts to TFLite builtin ops (WHILE, UNSORTED_SEGMENT_MIN, GATHER, …; checked by
the tests with a fixed input size, results still exact). Speed on this 2-core CPU (busy, so
±30%): about 15 ms at 256², 0.2 s at 1024², 1 s at 2048²; scipy takes 2 ms / 60 ms / 0.3 s.
"""

from __future__ import annotations

import tensorflow as tf

from keras_skel.ops.masks import foreground_bhw, restore_rank

__all__ = ["squared_distance_transform", "distance_transform"]

# Largest H and W for which (H + W)^2 + W^2, the largest sum formed, fits in int32.
_MAX_SIZE = 16384


def _column_distances(background: tf.Tensor) -> tf.Tensor:
    """`[B, H, W]` bool → int32 distance along axis 1 to the nearest background pixel.

    Columns with no background get H + W, larger than any distance in the image.
    """
    shape = tf.shape(background)
    batch, height, width = shape[0], shape[1], shape[2]
    far = height + width
    distance = tf.where(background, 0, far)

    def step(stride: tf.Tensor, distance: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        fill = tf.fill([batch, stride, width], far)
        below = tf.concat([distance[:, stride:, :], fill], axis=1)
        above = tf.concat([fill, distance[:, : height - stride, :]], axis=1)
        distance = tf.minimum(distance, tf.minimum(below, above) + stride)
        return stride * 2, distance

    _, distance = tf.while_loop(
        lambda stride, _: stride < height,
        step,
        [tf.constant(1), distance],
        shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None, None])],
    )
    return distance


def _lower_envelope(cost: tf.Tensor) -> tf.Tensor:
    """`[R, W]` int32 cost f → `[R, W]` int32 `min_j f[r, j] + (i - j)^2` (exact).

    Monotone-minima divide and conquer, see the module docstring.
    """
    shape = tf.shape(cost)
    rows, width = shape[0], shape[1]
    j = tf.range(width)
    row_ids = tf.expand_dims(tf.range(rows), 1)

    # Level 0: the leftmost minimiser for i = 0, over the whole row.
    value = cost + j * j
    least = tf.reduce_min(value, axis=1, keepdims=True)
    argmin = tf.reduce_min(tf.where(tf.equal(value, least), j, width), axis=1, keepdims=True)
    # `slot - 1` for each j: the last k with argmin[k] <= j (-1 if none), j's range below.
    slot = tf.where(j >= argmin, 1, 0)

    # The coarsest stride: the smallest power of two >= W, so that position 0 is the only
    # multiple of it in the row.
    (top,) = tf.while_loop(lambda s: s < width, lambda s: (s * 2,), (tf.constant(1),))

    def level(
        stride: tf.Tensor, argmin: tf.Tensor, slot: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        # `argmin[:, k]` is known at positions k * 2s; find it at the odd multiples of s,
        # (2q + 1) s < W. Query q searches [argmin[q], high[q]] (high: the next known
        # minimiser, or the row's end). The half-open ranges [argmin[q], argmin[q + 1]) tile
        # the row: j is in range `slot - 1`; slot 0 (before argmin[0]) and slot count + 1
        # (from argmin[count] on, if known) are dumps. The shared end point high[q] is
        # added below.
        stride = stride // 2
        known = tf.shape(argmin)[1]
        count = (width + stride - 1) // stride - known
        high = tf.concat([argmin[:, 1:], tf.fill([rows, 1], width - 1)], axis=1)[:, :count]

        slots = count + 2
        segment = row_ids * slots + slot
        query = tf.clip_by_value(slot - 1, 0, count - 1)
        offset = (2 * stride) * query + (stride - j)
        value = cost + offset * offset
        least = tf.math.unsorted_segment_min(value, segment, rows * slots)
        leftmost = tf.where(tf.equal(value, tf.gather(least, segment)), j, width)
        least_j = tf.math.unsorted_segment_min(leftmost, segment, rows * slots)
        least = tf.reshape(least, [rows, slots])[:, 1:-1]
        least_j = tf.reshape(least_j, [rows, slots])[:, 1:-1]

        # The end point (if the range [argmin[q], high[q]) is empty, `least` is INT32_MAX).
        end_offset = (2 * tf.range(count) + 1) * stride - high
        end_value = tf.gather(cost, high, batch_dims=1) + end_offset * end_offset
        found = tf.where(least <= end_value, least_j, high)

        # Interleave: minimisers at positions 0, s, 2s, … < W.
        padded = tf.concat([found, tf.fill([rows, known - count], 0)], axis=1)
        merged = tf.reshape(tf.stack([argmin, padded], axis=2), [rows, 2 * known])
        # New slots: range k splits into 2k and 2k + 1 at found[k]. The dumps' `found` are
        # chosen so that slot 0 stays 0 and slot count + 1 becomes 2 count + 1.
        found = tf.concat([tf.fill([rows, 1], -1), found, tf.fill([rows, 1], width)], axis=1)
        past_found = tf.cast(tf.gather(tf.reshape(found, [-1]), segment) <= j, tf.int32)
        slot = 2 * slot + (past_found - 1)
        return stride, merged[:, : known + count], slot

    _, argmin, _ = tf.while_loop(
        lambda stride, *_: stride > 1,
        level,
        [top, argmin, slot],
        shape_invariants=[
            tf.TensorShape([]),
            tf.TensorShape([None, None]),
            tf.TensorShape([None, None]),
        ],
    )
    argmin = argmin[:, :width]  # W == 0 leaves level 0's column
    offset = j - argmin
    return tf.gather(cost, argmin, batch_dims=1) + offset * offset


def _squared_edt_bhw(foreground: tf.Tensor) -> tf.Tensor:
    """`[B, H, W]` bool → `[B, H, W]` int32 squared EDT, scipy's convention included."""
    background = tf.logical_not(foreground)
    shape = tf.shape(foreground)
    batch, height, width = shape[0], shape[1], shape[2]
    column = _column_distances(background)
    envelope = _lower_envelope(tf.reshape(column * column, [batch * height, width]))
    squared = tf.reshape(envelope, [batch, height, width])

    # No background at all: scipy's feature transform then points every pixel at (-1, 0).
    i = tf.expand_dims(tf.range(height), 1)
    j = tf.expand_dims(tf.range(width), 0)
    no_background = (i + 1) * (i + 1) + j * j
    has_background = tf.reduce_any(background, axis=[1, 2], keepdims=True)
    return tf.where(has_background, squared, tf.expand_dims(no_background, 0))


# Eager calls run the loops as one graph; the signature's None dims make that a single trace.
_squared_edt_graph = tf.function(
    _squared_edt_bhw, input_signature=[tf.TensorSpec([None, None, None], tf.bool)]
)


def squared_distance_transform(mask: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distance from each foreground pixel to the nearest background pixel.

    Exact: equals `scipy.ndimage.distance_transform_edt(m) ** 2` for each 2-D image `m` of
    the batch (the tests compare as integers). Background pixels get 0; pixels outside the
    image are not background. Pure TensorFlow ops with O(H·W) memory and O(H·W·log max(H, W))
    work (see the module docstring); works eagerly and inside `tf.function` with unknown
    batch, height and width, and converts to TFLite builtin ops.

    An image with no background pixel at all gets what scipy returns for it, which is
    well defined though arbitrary: the distance to the virtual pixel (-1, 0) just above the
    top-left corner, i.e. `(i + 1)^2 + j^2` at row i, column j. Test
    `tf.reduce_any(mask == 0)` first if such images need another meaning.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground. H and W up to 16384.

    Returns:
        int32 tensor with the shape of `mask`: squared distances (exact integers).

    Raises:
        ValueError: if the rank of `mask` is unknown or not 2, 3 or 4, a rank-4 `mask` has a
            static channel dimension other than 1, or a static H or W exceeds 16384.

    Example:
        >>> square = np.zeros([5, 6], np.uint8)
        >>> square[1:4, 1:6] = 1
        >>> squared_distance_transform(square).numpy()
        array([[0, 0, 0, 0, 0, 0],
               [0, 1, 1, 1, 1, 1],
               [0, 1, 4, 4, 4, 4],
               [0, 1, 1, 1, 1, 1],
               [0, 0, 0, 0, 0, 0]], dtype=int32)

    References:
        T. Saito and J. Toriwaki, "New algorithms for Euclidean distance transformation of an
        n-dimensional digitized picture with applications", Pattern Recognition 27(11), 1994.
        A. Meijster, J. Roerdink and W. Hesselink, "A general algorithm for computing distance
        transforms in linear time", Mathematical Morphology and its Applications to Image and
        Signal Processing, 2000. A. Aggarwal, M. Klawe, S. Moran, P. Shor and R. Wilber,
        "Geometric applications of a matrix-searching algorithm", Algorithmica 2, 1987
        (monotone minima of Monge matrices).
    """
    foreground, rank = foreground_bhw(mask, "squared_distance_transform", max_size=_MAX_SIZE)
    if tf.executing_eagerly():
        squared = _squared_edt_graph(foreground)
    else:
        squared = _squared_edt_bhw(foreground)
    return restore_rank(squared, rank)


def distance_transform(mask: tf.Tensor) -> tf.Tensor:
    """Euclidean distance from each foreground pixel to the nearest background pixel.

    The square root of `squared_distance_transform(mask)` (see there for the exact semantics,
    including images without background): matches `scipy.ndimage.distance_transform_edt(m)`
    for each 2-D image `m` to float32 rounding.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground.

    Returns:
        float32 tensor with the shape of `mask`.

    Raises:
        ValueError: as `squared_distance_transform`.

    Example:
        >>> distance_transform(np.array([[0, 1, 1, 1]])).numpy()
        array([[0., 1., 2., 3.]], dtype=float32)

    Reference:
        See `squared_distance_transform`.
    """
    foreground, rank = foreground_bhw(mask, "distance_transform", max_size=_MAX_SIZE)
    if tf.executing_eagerly():
        squared = _squared_edt_graph(foreground)
    else:
        squared = _squared_edt_bhw(foreground)
    return restore_rank(tf.sqrt(tf.cast(squared, tf.float32)), rank)
