"""Training targets and inputs made from a binary shape (NumPy / scikit-image / skan, CPU).

The ground-truth rule for binary shapes lives here, once (DESIGN.md §3, "Ground-truth
convention for binary shapes"): `skimage.morphology.skeletonize` of the clean shape, one pass
that removes every terminal branch (skan ``branch_type`` 1, junction → endpoint) shorter than
10 px while keeping the junction pixel, then `skeletonize` once more to drop the corner pixels
the removal can leave. `skeleton_target` is also the toolkit's "classical" baseline model.

References:
    Zhang & Suen, "A fast parallel algorithm for thinning digital patterns", CACM 1984
    (the 2-D method of `skimage.morphology.skeletonize`).
    Nunez-Iglesias et al., "A new Python library to analyse skeleton images confirms malaria
    parasite remodelling of the red blood cell membrane skeleton", PeerJ 2018 (skan).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from skimage.morphology import diamond, octahedron, skeletonize

__all__ = [
    "prune_terminal_branches",
    "skeleton_target",
    "distance_input",
    "class_weight_map",
    "tubed_skeleton",
    "flux_target",
]

# skan's branch types (see `skan.summarize`): 0 endpoint-endpoint, 1 junction-endpoint,
# 2 junction-junction, 3 cycle.
_TERMINAL = 1

_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)


def _as_binary_2d(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W); got shape {image.shape}")
    return image != 0


def _bbox_crop(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """Bounding box of the nonzero pixels grown by `pad` (clipped), or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, mask.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, mask.shape[1])
    return slice(r0, r1), slice(c0, c1)


def prune_terminal_branches(skeleton: np.ndarray, min_length: float = 10.0) -> np.ndarray:
    """Removes the short terminal branches of a skeleton in one pass.

    Every terminal branch (skan ``branch_type`` 1: junction → endpoint) whose skan
    ``branch_distance`` is under `min_length` is removed, except its junction pixel (a path
    pixel with more than 2 skeleton neighbours). Isolated paths (no junction), cycles,
    junction-to-junction branches and isolated pixels are kept whatever their length. The pass
    is not repeated: a branch that becomes terminal because of a removal stays.

    Args:
        skeleton: 2-D array, nonzero = skeleton pixel (normally 1 px wide, 8-connected).
        min_length: terminal branches with ``branch_distance < min_length`` (pixels, diagonal
            steps count sqrt(2)) are removed.

    Returns:
        uint8 array of the same shape with values 0/1. It may contain corner pixels where a
        branch was removed; `skeleton_target` thins once more.

    Raises:
        ValueError: if `skeleton` is not 2-D.

    Example:
        >>> sk = np.zeros((21, 41), np.uint8)
        >>> sk[10, 5:36] = 1          # long horizontal line
        >>> sk[4:10, 20] = 1          # 6-px spur on top of it
        >>> out = prune_terminal_branches(sk)
        >>> int(out[4:10, 20].sum()), int(out[10].sum())
        (0, 31)
    """
    sk = _as_binary_2d(skeleton, "skeleton")
    out = sk.astype(np.uint8)
    crop = _bbox_crop(sk, pad=1)
    if crop is None:
        return out
    sub = sk[crop]
    # skan cannot build a graph without a single edge (empty or isolated pixels only).
    n_neighbours = ndi.convolve(sub.astype(np.uint8), _NEIGHBOURS, mode="constant")
    if not (sub & (n_neighbours > 0)).any():
        return out

    # Imported here: skan pulls pandas and numba (and numba compiles on first use).
    from skan import Skeleton

    graph = Skeleton(sub, keep_images=False)
    indptr, indices = graph.paths.indptr, graph.paths.indices
    src = indices[indptr[:-1]]
    dst = indices[indptr[1:] - 1]
    deg_src, deg_dst = graph.degrees[src], graph.degrees[dst]
    # Same classification as skan.summarize's 'branch_type' column.
    branch_type = np.full(src.shape, 2)
    branch_type[(deg_src == 1) | (deg_dst == 1)] = 1
    branch_type[(deg_src == 1) & (deg_dst == 1)] = 0
    branch_type[src == dst] = 3
    lengths = graph.path_lengths()

    sub_out = out[crop]
    for i in np.flatnonzero((branch_type == _TERMINAL) & (lengths < min_length)):
        pixel_ids = graph.path(i)
        pixel_ids = pixel_ids[graph.degrees[pixel_ids] <= 2]
        coords = np.round(graph.coordinates[pixel_ids]).astype(np.intp)
        sub_out[coords[:, 0], coords[:, 1]] = 0
    return out


def skeleton_target(shape: np.ndarray, prune_length: float = 10.0) -> np.ndarray:
    """Ground-truth skeleton of a binary shape (and the toolkit's classical baseline).

    `skimage.morphology.skeletonize` (2-D default method), then `prune_terminal_branches`,
    then `skeletonize` once more to drop the corner pixels the removal can leave.

    Args:
        shape: 2-D bool or numeric array; nonzero = shape.
        prune_length: terminal branches shorter than this many pixels are removed.

    Returns:
        uint8 array (H, W) with values 0/1, a 1-px wide skeleton.

    Raises:
        ValueError: if `shape` is not 2-D.

    Example:
        >>> shape = np.zeros((40, 80), np.uint8)
        >>> shape[10:30, 10:70] = 1
        >>> sk = skeleton_target(shape)
        >>> sk.dtype, bool((skeletonize(sk) == sk).all())
        (dtype('uint8'), True)
    """
    mask = _as_binary_2d(shape, "shape")
    out = np.zeros(mask.shape, np.uint8)
    # skeletonize treats the outside as background, so working on the bounding box (+1 px)
    # gives the same result and saves time on small shapes in large images.
    crop = _bbox_crop(mask, pad=1)
    if crop is None:
        return out
    sk = skeletonize(mask[crop])
    sk = prune_terminal_branches(sk, min_length=prune_length)
    out[crop] = skeletonize(sk.astype(bool))
    return out


def distance_input(shape: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Euclidean distance transform of a binary shape, a model input variant.

    Each shape pixel holds its distance to the nearest background pixel (so 1 on the
    boundary); background pixels hold 0.

    Args:
        shape: 2-D bool or numeric array; nonzero = shape.
        normalize: divide by the maximum so values lie in [0, 1] (an empty shape gives zeros).

    Returns:
        float32 array (H, W).

    Raises:
        ValueError: if `shape` is not 2-D.

    Example:
        >>> d = distance_input(np.pad(np.ones((3, 3)), 1), normalize=False)
        >>> float(d.max())
        2.0
    """
    mask = _as_binary_2d(shape, "shape")
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    if normalize:
        peak = float(dist.max())
        if peak > 0:
            dist /= peak
    return dist


def class_weight_map(skeleton: np.ndarray, w_pos: float, w_neg: float) -> np.ndarray:
    """Per-pixel loss weights: `w_pos` on skeleton pixels, `w_neg` elsewhere.

    Skeleton pixels are typically ~1% of an image; weighting them up counters the imbalance
    (as the class-balanced cross-entropy of HED, Xie & Tu, ICCV 2015).

    Args:
        skeleton: array of any shape; nonzero = skeleton pixel.
        w_pos: weight of skeleton pixels.
        w_neg: weight of the other pixels.

    Returns:
        float32 array of the same shape as `skeleton`.

    Example:
        >>> class_weight_map(np.array([[0, 1]]), w_pos=9.0, w_neg=1.0).tolist()
        [[1.0, 9.0]]
    """
    return np.where(np.asarray(skeleton) != 0, np.float32(w_pos), np.float32(w_neg)).astype(
        np.float32
    )


def tubed_skeleton(labels: np.ndarray, radius: int = 2) -> np.ndarray:
    """The tubed skeleton of a label map, the target of the Skeleton Recall loss.

    The Tubed Skeletonization of Kirchhoff et al.: binarize the labels (any class is
    foreground), skeletonize the foreground (`skimage.morphology.skeletonize`; Zhang-Suen in
    2-D, Lee et al. in 3-D), dilate the skeleton with a diamond of `radius` (2-D) or its 3-D
    equivalent, the octahedron, so the loss sees a tube rather than a 1-px line, then multiply
    by the label map, which gives every tube pixel the class of the structure under it and
    drops the tube where it leaves the structure.

    Made on the CPU while loading data (NumPy / scikit-image): this is what makes the loss
    cheap in the training step, unlike clDice's soft skeleton in the graph.

    Args:
        labels: integer label map `[H, W]` or `[D, H, W]`; 0 = background, 1..K = classes.
        radius: tube radius (the paper's 2).

    Returns:
        uint8 label map of the same shape: the class on tube pixels, 0 elsewhere.

    Raises:
        ValueError: for a rank other than 2 or 3, a negative radius or labels outside 0..255.

    Example:
        >>> labels = np.zeros((5, 9), np.uint8); labels[2, 1:8] = 3  # a 1-px line of class 3
        >>> bool((tubed_skeleton(labels) == labels).all())  # the tube is cut back to the line
        True

    Reference:
        Kirchhoff et al., "Skeleton Recall Loss for Connectivity Conserving and Resource
        Efficient Segmentation of Thin Tubular Structures", ECCV 2024.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be 2-D [H, W] or 3-D [D, H, W]; got shape {labels.shape}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels must lie in 0..255, got {labels.min()}..{labels.max()}")
    foreground = labels > 0
    if not foreground.any():
        return np.zeros(labels.shape, np.uint8)
    skeleton = skeletonize(foreground)
    if radius:
        footprint = diamond(radius) if labels.ndim == 2 else octahedron(radius)
        skeleton = ndi.binary_dilation(skeleton, structure=footprint)
    return (skeleton * labels).astype(np.uint8)


def flux_target(skeleton: np.ndarray, radius: int = 7) -> np.ndarray:
    """The context-flux ground truth of DeepFlux (Wang et al., CVPR 2019, eq. 1).

    The context region `Rc` is the skeleton dilated by a disk of `radius` minus the skeleton;
    every context pixel `p` holds the unit vector from `p` to its nearest skeleton pixel `Np`
    (found with a Euclidean distance transform that returns nearest indices); skeleton and
    background pixels hold (0, 0).

    Channel order is (row, column), i.e. (dy, dx) with rows growing downwards, the order
    NumPy indexes in; `ops.flux_to_skeleton` reads the same order.

    Args:
        skeleton: 2-D array, nonzero = skeleton pixel.
        radius: radius of the context disk (the paper's r = 7).

    Returns:
        float32 array `[H, W, 2]`; context vectors have length 1.

    Raises:
        ValueError: if `skeleton` is not 2-D or `radius < 1`.

    Example:
        >>> skel = np.zeros((5, 5), bool); skel[2, 2] = True
        >>> flux_target(skel, radius=1)[1, 2].tolist()   # above the pixel: points down
        [1.0, 0.0]
    """
    mask = _as_binary_2d(skeleton, "skeleton")
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    flux = np.zeros(mask.shape + (2,), np.float32)
    if not mask.any():
        return flux
    from skimage.morphology import disk

    context = ndi.binary_dilation(mask, structure=disk(radius)) & ~mask
    # distance_transform_edt of the non-skeleton gives, for every pixel, the index of its
    # nearest skeleton pixel (ties broken by scipy's scan order).
    _, (near_r, near_c) = ndi.distance_transform_edt(~mask, return_indices=True)
    rows, cols = np.nonzero(context)
    vec = np.stack([near_r[rows, cols] - rows, near_c[rows, cols] - cols], axis=-1).astype(np.float64)
    vec /= np.linalg.norm(vec, axis=-1, keepdims=True)
    flux[rows, cols] = vec.astype(np.float32)
    return flux
