"""Zhang–Suen thinning of binary maps as TensorFlow graph ops, bit-identical to scikit-image.

`thin` reproduces `skimage.morphology.skeletonize(image)` (2-D, default method "zhang") pixel
for pixel, using only ops that embed in a SavedModel and convert to TFLite builtins (pad,
slice, int32 arithmetic, gather, while loop): the skeleton of a prediction can then be computed identically
at training time, in `predict`, in TF Serving and on device.

The algorithm, as scikit-image runs it: the image is surrounded by background; each iteration
makes two parallel sub-iterations, and each sub-iteration reads the current image, gives every
foreground pixel the 8-bit code of its 8 neighbours, looks the code up in a 256-entry table and
removes all removable pixels at once. Iterations stop when one removes nothing.

The table. Zhang & Suen (1984) remove a pixel when 2 <= B <= 6 (B: foreground neighbours),
A == 1 (A: 0→1 transitions around the ring N, NE, E, ..., NW, N), and in sub-iteration 1
`N·E·S == 0 and E·S·W == 0`, in sub-iteration 2 `N·E·W == 0 and N·S·W == 0`. scikit-image's
table (hard-coded in `_skeletonize_various_cy.pyx`; its origin is undocumented, see
scikit-image issue #6175) departs from those conditions in 25 of the 256 codes, and follows
no symmetry (no rotation or reflection maps it onto itself or one sub-iteration onto the
other). This module derives the paper's table from the conditions above and then applies
those 25 departures, written out as 3×3 pictures in `_SKIMAGE_DEPARTURES`, so that the result
is bit-identical to scikit-image; the tests check that against `skeletonize` itself.

Like scikit-image's, the result is not always 1 px thin: some configurations keep a 2×2 (rarely
3×3) block of foreground (scikit-image issue #8180).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_skel.ops.masks import foreground_nhwc, restore_rank

__all__ = ["thin"]

# Neighbour order of scikit-image's code: bit k is the k-th neighbour clockwise from north-west.
_NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))

# Codes on which scikit-image's table differs from the paper's conditions, as
# {3×3 picture (rows top to bottom, '/'-separated, '#' foreground): sub-iterations that remove
# the centre}. Every one of them changes skeletonize's output on some images.
_SKIMAGE_DEPARTURES: dict[str, tuple[int, ...]] = {
    # Ends of 2-px-wide strokes (two adjacent neighbours). The paper removes them in both
    # sub-iterations; scikit-image in one, or never (SE+S and W+NW).
    "##./.#./...": (1,),
    ".##/.#./...": (1,),
    "..#/.##/...": (1,),
    ".../.##/..#": (2,),
    ".../.#./.##": (),
    ".../.#./##.": (2,),
    ".../##./#..": (2,),
    "#../##./...": (),
    # Outer corners (three neighbours around a diagonal). Paper: both sub-iterations.
    ".##/.##/...": (1,),
    ".../.##/.##": (2,),
    ".../##./##.": (2,),
    "##./##./...": (1,),
    # Inner corners of 4-connected staircases (two orthogonal neighbours, the diagonal between
    # them empty, A == 2). The paper keeps them; removing them keeps 8-connectivity.
    ".#./.##/...": (1, 2),
    "##./.##/...": (1,),
    ".#./.##/..#": (2,),
    ".../.##/.#.": (1, 2),
    ".../.##/##.": (2,),
    "..#/.##/##.": (2,),
    ".../##./.#.": (1, 2),
    "#../##./.#.": (1,),
    ".../##./.##": (2,),
    ".#./##./...": (1, 2),
    ".##/##./...": (1,),
    ".#./##./#..": (1,),
    ".##/##./#..": (1,),
}


def _code_of_picture(picture: str) -> int:
    """Neighbour code of a '/'-separated 3×3 picture (the centre is ignored)."""
    rows = picture.split("/")
    return sum(
        1 << k for k, (dy, dx) in enumerate(_NEIGHBOUR_OFFSETS) if rows[1 + dy][1 + dx] == "#"
    )


def _zhang_suen_removal() -> np.ndarray:
    """`[2, 256]` bool: whether Zhang & Suen's sub-iteration 1 / 2 removes a pixel, per code."""
    removal = np.zeros((2, 256), bool)
    for code in range(256):
        nw, n, ne, e, se, s, sw, w = ((code >> k) & 1 for k in range(8))
        ring = (n, ne, e, se, s, sw, w, nw)  # P2 ... P9 of the paper
        b = sum(ring)
        a = sum(ring[k] == 0 and ring[(k + 1) % 8] == 1 for k in range(8))
        if 2 <= b <= 6 and a == 1:
            removal[0, code] = n * e * s == 0 and e * s * w == 0
            removal[1, code] = n * e * w == 0 and n * s * w == 0
    return removal


def _skimage_removal() -> np.ndarray:
    """`[2, 256]` bool: the table scikit-image's `skeletonize` uses (paper + departures)."""
    removal = _zhang_suen_removal()
    for picture, subiterations in _SKIMAGE_DEPARTURES.items():
        code = _code_of_picture(picture)
        removal[:, code] = [1 in subiterations, 2 in subiterations]
    return removal


def _neighbour_code(x: tf.Tensor) -> tf.Tensor:
    """8-bit neighbour code of every pixel of an int32 0/1 `[N, H, W, 1]` image.

    Shifted slices of a one-pixel zero border (scikit-image's background border) weighted by
    powers of two, in int32: exact by construction, and integer tensors are left alone by
    TFLite's full-integer quantization, which would otherwise quantize a float convolution's
    codes and pick wrong table entries.
    """
    shape = tf.shape(x)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    code = tf.zeros_like(x)
    for k, (dy, dx) in enumerate(_NEIGHBOUR_OFFSETS):
        code += tf.slice(padded, [0, 1 + dy, 1 + dx, 0], shape) * (1 << k)
    return code


def _thin_nhwc(image: tf.Tensor) -> tf.Tensor:
    """Thins an int32 0/1 `[N, H, W, 1]` tensor; returns int32 0/1 of the same shape."""
    removal = _skimage_removal().astype(np.int32)
    tables = (tf.constant(removal[0]), tf.constant(removal[1]))

    def subiteration(x: tf.Tensor, table: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        removed = tf.gather(table, _neighbour_code(x)) * x
        return x - removed, removed

    def body(x: tf.Tensor, _: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, removed_1 = subiteration(x, tables[0])
        x, removed_2 = subiteration(x, tables[1])
        # Images of a batch that already converged are fixed points, so running the loop until
        # the slowest one converges leaves them as scikit-image returns them.
        changed = tf.reduce_max(removed_1 + removed_2) > 0
        return x, changed

    thinned, _ = tf.while_loop(lambda _, changed: changed, body, [image, tf.constant(True)])
    return thinned


# Eager calls run the loop as one graph (a Python-driven loop costs ~0.1 ms per op per step);
# the signature's None dims make that a single trace for every shape.
_thin_nhwc_graph = tf.function(
    _thin_nhwc, input_signature=[tf.TensorSpec([None, None, None, 1], tf.int32)]
)


def thin(mask: tf.Tensor) -> tf.Tensor:
    """Thins a binary map to a skeleton, bit-identical to `skimage.morphology.skeletonize`.

    Zhang–Suen parallel thinning with scikit-image's lookup table (see the module docstring for
    how that table is derived and where it departs from the paper). Pixels outside the image
    are background. Pure TensorFlow ops: works eagerly and inside `tf.function` with unknown
    batch, height and width, and converts to TFLite builtin ops. The number of loop iterations
    is data dependent (about half the thickness of the thickest object); a batch runs until its
    slowest image converges.

    Args:
        mask: `[H, W]`, `[N, H, W]` or `[N, H, W, 1]` tensor (or array) of any numeric or bool
            dtype; nonzero pixels are foreground.

    Returns:
        uint8 tensor of 0/1 with the shape of `mask`: the skeleton.

    Raises:
        ValueError: if the rank of `mask` is unknown or not 2, 3 or 4, or a rank-4 `mask` has a
            static channel dimension other than 1.

    Example:
        >>> bar = np.zeros([5, 9], np.uint8)
        >>> bar[1:4, 1:8] = 1
        >>> thin(bar).numpy()
        array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 1, 0, 0],
               [0, 1, 1, 1, 1, 1, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)

    Reference:
        T. Y. Zhang and C. Y. Suen, "A fast parallel algorithm for thinning digital patterns",
        Communications of the ACM 27(3):236-239, 1984. https://doi.org/10.1145/357994.358023
    """
    image, rank = foreground_nhwc(mask, "thin", tf.int32)
    thinned = _thin_nhwc_graph(image) if tf.executing_eagerly() else _thin_nhwc(image)
    return restore_rank(tf.cast(thinned, tf.uint8), rank)
