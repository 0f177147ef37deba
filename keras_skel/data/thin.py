"""Synthetic thin structures on textured backgrounds: vessels, cracks and roads, 2-D and 3-D.

A source of images with *thin* labelled structures, for training and checking segmenters on
the kind of data Skeleton Recall is about (``data synth --task thin [--classes K] [--3d]``):

- ``vessels``: branching trees. Each branch is a smooth random walk that tapers (2-D widths
  from 6-7 px at the roots to 1-2 px at the tips; 3-D radii from 2-3 voxels to 0.5: tubes
  drawn as unions of balls); children split off at 30-75 degrees and are thinner than their
  parent where they leave it. Branches stop short of every other branch (a gap of at least
  2.5 px in 2-D, 1.5 voxels in 3-D) and taper there, so each tree is one connected component
  without loops. Roots enter through the image border, or several radiate from one point.
- ``cracks``: jagged, branching thin polylines (2-D widths 1-4 px, thickest in the middle of
  a crack; 3-D radii 0.5-1.25). A crack that runs into another one ends *on* it (a
  T-junction), so cracks form connected networks.
- ``roads``: a rotated, irregular grid of straight-ish roads of widths 2-7 px, some of them
  curved, some cut between two crossings (T-junctions, missing blocks), sometimes a diagonal
  highway on top. In 3-D: a jittered lattice of rods along the three axes (a scaffold or pipe
  network) of radii 0.8-2.5 voxels, half of the lattice's rods present, some bowed, some cut
  between two nodes.

Label components smaller than 12 px (a road clipping a corner) are dropped, and 1-px gaps
between structures are filled, so that no label pixel is ambiguous at the label's own
resolution.

Appearance: a smooth background field plus a finer texture, a few unlabelled blob-like
distractors of either polarity, the structures darker or brighter than what lies beneath them
with a contrast that varies slowly along them, a soft one-pixel halo outside their edge, and
Gaussian pixel noise. Binary samples draw a polarity (mostly dark for vessels and cracks, mostly
bright for roads) and a contrast of 0.14-0.32; the background spans two to three and a half
times that contrast where the grey range allows (0.3-0.8 of it), so no global threshold gives
the labels (the best one reaches a Dice of about 0.4-0.8), but every labelled pixel stands out
from its neighbourhood. Nothing is clipped: the background leaves room for the structures.

Classes (``classes=K > 1``): every structure piece (a vessel or crack branch, a road or rod)
gets one class, and each class has a fixed, signed contrast (`class_contrasts`): odd classes
are darker, even classes brighter than the background, with magnitudes on a ladder from 0.14
to 0.32; so a network tells the classes apart by local polarity and contrast, as in images
where artery and vein, or road types, differ in brightness. Pieces are ranked by size and the
``K`` largest get ``K`` different classes, so every class appears in almost every sample. Where
pieces overlap the wider one wins (the parent at a branch point, the wider road at a
crossing). The geometry does not depend on ``K``: ``labels > 0`` is the same for every ``K``.

A sample depends only on ``(seed, index, size, classes, kind)``, drawn from
``np.random.default_rng([seed, index, stream])`` with separate streams for the geometry, the
class assignment and the appearance. Everything here works without TensorFlow except
`thin_source`.

Example:
    >>> image, labels = make_thin_sample(seed=0, index=3, size=(128, 128), classes=3)
    >>> image.shape, image.dtype, labels.dtype, int(labels.max()) <= 3
    ((128, 128), dtype('float32'), dtype('uint8'), True)
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage as ndi
from scipy.special import ndtr

from keras_skel.errors import ConfigError, DataError

__all__ = [
    "THIN_KINDS",
    "MAX_CLASSES",
    "class_contrasts",
    "thin_kind_of",
    "make_thin_sample",
    "write_thin_dataset",
    "load_thin_folder",
    "thin_source",
]

THIN_KINDS: tuple[str, ...] = ("vessels", "cracks", "roads")
MAX_CLASSES = 8
_MIN_SIDE = 16
_MIN_PART = 12  # px (2-D) or voxels (3-D): smaller label components are dropped

# Sub-streams of np.random.default_rng([seed, index, stream]). The geometry has its own stream
# so that the labels do not change when the look (or the number of classes) does.
_GEOMETRY_STREAM, _LOOK_STREAM, _KIND_STREAM, _CLASS_STREAM = 0, 1, 2, 3

DATASET_INFO = "dataset.json"


# ----------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------


def _check_args(size, classes, kind) -> tuple[tuple[int, ...], int, str | None]:
    try:
        shape = tuple(int(s) for s in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (H, W) or (D, H, W) integers; got {size!r}") from None
    if len(shape) not in (2, 3):
        raise ConfigError(
            f"size must have 2 entries (H, W: a 2-D image) or 3 (D, H, W: a 3-D volume); "
            f"got {len(shape)}: {size!r}"
        )
    if min(shape) < _MIN_SIDE:
        raise ConfigError(f"every side of size must be ≥ {_MIN_SIDE}; got {shape}")
    if isinstance(classes, bool) or int(classes) != classes or not 1 <= classes <= MAX_CLASSES:
        raise ConfigError(
            f"classes must be an integer from 1 (binary) to {MAX_CLASSES}; got {classes!r}"
        )
    if kind is not None and kind not in THIN_KINDS:
        raise ConfigError(
            f"unknown thin-structure kind {kind!r}; expected one of {', '.join(THIN_KINDS)} "
            "(or None for a mix)"
        )
    return shape, int(classes), kind


def _check_seed(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ConfigError(f"{name} must be an integer ≥ 0; got {value!r}")
    return int(value)


def thin_kind_of(seed: int, index: int) -> str:
    """The kind of sample `index` of a mixed set (``kind=None``) made with `seed`.

    Indices come in blocks of three, each a random permutation of `THIN_KINDS`, so the kinds
    stay balanced in any small set.

    Args:
        seed: dataset seed (≥ 0).
        index: sample index (≥ 0).

    Returns:
        One of `THIN_KINDS`.

    Example:
        >>> sorted(thin_kind_of(0, i) for i in range(3)) == sorted(THIN_KINDS)
        True
    """
    block, slot = divmod(_check_seed("index", index), len(THIN_KINDS))
    order = np.random.default_rng([_check_seed("seed", seed), block, _KIND_STREAM]).permutation(
        len(THIN_KINDS)
    )
    return THIN_KINDS[int(order[slot])]


def class_contrasts(classes: int) -> np.ndarray:
    """The signed contrast of each label value when ``classes > 1``.

    Class ``k`` is drawn darker than the background under it for odd ``k`` and brighter for
    even ``k``; the magnitude climbs a ladder from 0.14 to 0.32 every two classes, so a class
    is told by the polarity and strength of its local contrast. (The binary case, ``classes=1``,
    draws a random polarity and contrast per sample instead.)

    Args:
        classes: number of structure classes, 2 to `MAX_CLASSES` (1 is accepted too and gives
            the multi-class ladder's first rung).

    Returns:
        float32 array of ``classes + 1`` contrasts, index 0 (background) being 0.

    Example:
        >>> [round(float(c), 2) for c in class_contrasts(3)]
        [0.0, -0.14, 0.14, -0.32]
    """
    _check_args((_MIN_SIDE, _MIN_SIDE), classes, None)
    levels = (classes + 1) // 2
    mags = np.linspace(0.14, 0.32, levels) if levels > 1 else np.array([0.23])
    out = np.zeros(classes + 1, np.float32)
    for k in range(1, classes + 1):
        out[k] = (-1.0 if k % 2 else 1.0) * mags[(k - 1) // 2]
    return out


# ----------------------------------------------------------------------------------------
# Geometry. A structure is a list of pieces: centre-line points (array index coordinates,
# (row, col) or (z, row, col)) with a radius per point. Pieces of one group share a class.
# ----------------------------------------------------------------------------------------


@dataclass
class _Piece:
    points: np.ndarray  # (N, ndim) float
    radii: np.ndarray  # (N,) float, ≥ 0.5
    group: int


@dataclass(frozen=True)
class _Style:
    """Per-dimension scale of a kind: radii, walk step and free gap between branches in px,
    and branch length as a multiple of the image's mean side."""

    r_root: tuple[float, float]
    r_tip: float
    step: float
    gap: float
    reach: float = 1.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _perp_basis(d: np.ndarray) -> np.ndarray:
    """Rows: an orthonormal basis of the directions perpendicular to the unit vector `d`."""
    if d.size == 2:
        return np.array([[-d[1], d[0]]])
    a = np.zeros(3)
    a[int(np.argmin(np.abs(d)))] = 1.0
    u = _unit(a - a.dot(d) * d)
    return np.stack([u, np.cross(d, u)])


def _turn(rng: np.random.Generator, d: np.ndarray, angle: float) -> np.ndarray:
    """`d` turned by `angle` radians towards a random perpendicular direction."""
    basis = _perp_basis(d)
    w = basis.T @ _unit(rng.standard_normal(len(basis)))
    return _unit(math.cos(angle) * d + math.sin(angle) * w)


def _walk(rng, start, d, n: int, step: float, curl: float, corr: float, jag: float = 0.0,
          meander: float = 0.0, calm: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random walk of `n` steps starting at `start` that always advances along `d`.

    The heading is ``d`` plus a perpendicular offset made of smoothed noise (correlated over
    `corr` steps): its running sum scaled by `curl` (a smooth curve that drifts away from
    ``d``), itself scaled by `meander` (a line that wiggles about ``d``), plus white noise
    `jag` (a jagged line). As the component along ``d`` stays 1, the walk never turns back on
    itself: no self-crossings. The first `calm` steps go straight along ``d``: a branch
    leaves its parent at its branching angle rather than creeping along it.

    Returns:
        (points (n + 1, ndim), unit headings (n + 1, ndim)).
    """
    basis = _perp_basis(d)
    turn = rng.standard_normal((n, len(basis)))
    if corr > 0:
        # gaussian_filter1d shrinks white noise's std by about (2 sqrt(pi) corr) ** 0.5.
        turn = ndi.gaussian_filter1d(turn, corr, axis=0, mode="nearest")
        turn *= math.sqrt(2 * math.sqrt(math.pi) * corr)
    white = rng.standard_normal(turn.shape) if jag else None
    turn[:calm] = 0.0
    off = curl * np.cumsum(turn, axis=0)
    if meander:
        off += meander * turn
    if jag:
        white[:calm] = 0.0
        off += jag * white
    heading = d + off @ basis
    heading /= np.linalg.norm(heading, axis=1, keepdims=True)
    points = np.empty((n + 1, d.size))
    points[0] = start
    np.cumsum(heading * step, axis=0, out=points[1:])
    points[1:] += start
    return points, np.vstack([heading[:1], heading])


def _inside(points: np.ndarray, shape) -> np.ndarray:
    return np.all((points > -0.5) & (points < np.asarray(shape) - 0.5), axis=1)


def _lookup(canvas: np.ndarray, points: np.ndarray) -> np.ndarray:
    """canvas at the rounded points; False outside the canvas."""
    idx = np.rint(points).astype(np.intp)
    ok = np.all((idx >= 0) & (idx < np.asarray(canvas.shape)), axis=1)
    out = np.zeros(len(points), bool)
    out[ok] = canvas[tuple(idx[ok].T)] > 0
    return out


def _values(canvas: np.ndarray, points: np.ndarray) -> np.ndarray:
    """canvas at the rounded points; 0 outside the canvas."""
    idx = np.rint(points).astype(np.intp)
    ok = np.all((idx >= 0) & (idx < np.asarray(canvas.shape)), axis=1)
    out = np.zeros(len(points), canvas.dtype)
    out[ok] = canvas[tuple(idx[ok].T)]
    return out


def _free_run(points, heading, radii, owner, skip: int, parent: int | None) -> tuple[int, bool]:
    """How many leading points stay inside the canvas and off the other pieces.

    `owner` holds, for each pixel within a gap of a piece drawn so far, that piece's index
    + 1 (0 elsewhere). The first `skip` points, still inside the `parent` piece they start
    from, may cross that one but no other (a loop through a neighbouring branch); with no
    parent (trunks radiating from one point) they are not checked. Besides the centre line,
    the two (2-D) or four (3-D) points at the piece's radius on either side are probed, so a
    thick branch does not graze another one.

    Returns:
        (count, whether the run was stopped by another piece rather than the border).
    """
    n = len(points)
    outside = ~_inside(points, owner.shape)
    if points.shape[1] == 2:  # the exact normal at every point
        sides = [np.stack([-heading[:, 1], heading[:, 0]], axis=1)]
    else:  # the normals of the start heading: the walk stays within 90 degrees of it
        sides = list(_perp_basis(_unit(heading[0])))
    probes = [points] + [points + s * radii[:, None] * b for b in sides for s in (-1.0, 1.0)]
    hit = np.zeros(n, bool)
    for p in probes:
        found = _values(owner, p)
        hit |= (found > 0) & ((found != parent + 1) | (np.arange(n) >= skip) if parent is not None
                              else np.arange(n) >= skip)
    bad = outside | hit
    if not bad.any():
        return n, False
    first = int(np.argmax(bad))
    return first, bool(hit[first] and not outside[first])


def _clear_steps(distance: float, angle: float, step: float) -> int:
    """Steps a branch leaving its parent at `angle` takes to get `distance` px away from it
    (the stretch `_free_run` must not check against the parent it starts in)."""
    return int(math.ceil(distance / (step * max(math.sin(angle), 0.3)))) + 1


# Drawing --------------------------------------------------------------------------------

_SHIFT = 4  # cv2 drawing with 4 fractional bits: sub-pixel centre lines


@functools.lru_cache(maxsize=128)
def _ball(quarters: int) -> np.ndarray:
    """Boolean ball of radius quarters / 4 voxels (centre voxel always set)."""
    r = quarters / 4.0
    big = int(math.floor(r + 1e-6))
    g = np.arange(-big, big + 1)
    d2 = g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2
    return d2 <= r * r + 1e-6


def _draw(canvas: np.ndarray, points: np.ndarray, radii: np.ndarray, value: int,
          pad: float = 0.0) -> None:
    """Draws a tube of about the given radii (+ `pad`) along `points` into `canvas`, in place.

    Fast and a bit generous (OpenCV draws a thickness t as t + 1 px for an even t and t + 2
    for an odd one; voxel balls are centred on whole voxels): for the occupancy maps that
    keep branches apart.
    The labels are drawn with `_draw_labels`. 2-D: OpenCV polylines with round caps, one call
    per run of equal thickness; 3-D: a union of voxel balls, one per point.
    """
    if canvas.ndim == 2:
        xy = np.rint(points[:, ::-1] * (1 << _SHIFT)).astype(np.int32)
        if len(points) == 1:
            t = max(1, int(round(2 * (radii[0] + pad))))
            cv2.circle(canvas, tuple(int(v) for v in xy[0]), (t // 2) << _SHIFT, int(value), -1,
                       cv2.LINE_8, _SHIFT)
            return
        seg_r = 0.5 * (radii[:-1] + radii[1:]) + pad
        thick = np.maximum(1, np.rint(2 * seg_r)).astype(int)
        cuts = np.flatnonzero(np.diff(thick)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(thick)]):
            cv2.polylines(canvas, [xy[a : b + 1]], False, int(value), int(thick[a]), cv2.LINE_8,
                          _SHIFT)
        return
    shape = canvas.shape
    centres = np.rint(points).astype(int)
    quarters = np.rint(4 * (radii + pad)).astype(int)
    keep = np.ones(len(points), bool)
    keep[1:] = np.any(centres[1:] != centres[:-1], axis=1) | (quarters[1:] != quarters[:-1])
    for (z, y, x), q in zip(centres[keep].tolist(), quarters[keep].tolist()):
        ball = _ball(q)
        r = ball.shape[0] // 2
        lo = (z - r, y - r, x - r)
        z0, y0, x0 = (max(v, 0) for v in lo)
        z1, y1, x1 = (min(c + r + 1, s) for c, s in zip((z, y, x), shape))
        if z0 >= z1 or y0 >= y1 or x0 >= x1:
            continue
        sub = ball[z0 - lo[0] : z1 - lo[0], y0 - lo[1] : y1 - lo[1], x0 - lo[2] : x1 - lo[2]]
        canvas[z0:z1, y0:y1, x0:x1][sub] = value


def _draw_labels(shape, pieces: list[_Piece], values: list[int]) -> np.ndarray:
    """The label map of `pieces` (later pieces drawn over earlier ones), widths true to 2 r.

    2-D: drawn at twice the resolution and reduced by majority (a pixel is set when at least
    two of its four sub-pixels are), which gives even widths too; parts thinner than 1.5 px
    are drawn as 1-px 8-connected lines at full resolution, so thin tips stay connected.
    3-D: balls of radius r around the exact (sub-voxel) centre; parts thinner than 1.8 voxels
    as single voxels along the 26-connected centre line.
    """
    if len(shape) == 3:
        labels = np.zeros(shape, np.uint8)
        for piece, value in zip(pieces, values):
            _draw_balls(labels, piece.points, piece.radii, value)
        return labels
    h, w = shape
    thin = np.zeros(shape, np.uint8)
    fine = np.zeros((2 * h, 2 * w), np.uint8)
    one = 1 << _SHIFT
    for piece, value in zip(pieces, values):
        pts, radii = piece.points, piece.radii
        if len(pts) == 1:
            pts, radii = np.vstack([pts, pts]), np.r_[radii, radii]
        seg_r = 0.5 * (radii[:-1] + radii[1:])
        # OpenCV draws an even thickness t as t + 1 sub-pixels (an odd t as t + 2): aim at
        # 4 r - 1 sub-pixels, which the majority rule turns into about 2 r pixels.
        thick = np.where(seg_r < 0.75, 0, np.maximum(2, 2 * np.rint(2 * seg_r - 1))).astype(int)
        lo_xy = np.rint(pts[:, ::-1] * one).astype(np.int32)
        hi_xy = np.rint((2 * pts[:, ::-1] + 0.5) * one).astype(np.int32)
        cuts = np.flatnonzero(np.diff(thick)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(thick)]):
            if thick[a] == 0:
                cv2.polylines(thin, [lo_xy[a : b + 1]], False, int(value), 1, cv2.LINE_8, _SHIFT)
            else:
                cv2.polylines(fine, [hi_xy[a : b + 1]], False, int(value), int(thick[a]),
                              cv2.LINE_8, _SHIFT)
    sub = fine.reshape(h, 2, w, 2).transpose(0, 2, 1, 3).reshape(h, w, 4)
    first = np.argmax(sub > 0, axis=2)[..., None]
    coarse = np.where((sub > 0).sum(axis=2) >= 2, np.take_along_axis(sub, first, 2)[..., 0], 0)
    return np.where(coarse > 0, coarse, thin).astype(np.uint8)


def _draw_balls(canvas: np.ndarray, points: np.ndarray, radii: np.ndarray, value: int) -> None:
    """3-D labels: union of balls of radius r around sub-voxel centres, in place."""
    shape = canvas.shape
    thin = radii < 0.9
    if thin.any():
        _draw(canvas, points[thin], np.full(int(thin.sum()), 0.5), value)
    for c, r in zip(points[~thin].tolist(), radii[~thin].tolist()):
        lo = [max(int(math.floor(v - r)), 0) for v in c]
        hi = [min(int(math.ceil(v + r)) + 1, s) for v, s in zip(c, shape)]
        if any(a >= b for a, b in zip(lo, hi)):
            continue
        dz, dy, dx = ((np.arange(a, b) - v) ** 2 for a, b, v in zip(lo, hi, c))
        ball = dz[:, None, None] + dy[None, :, None] + dx[None, None, :] <= r * r
        canvas[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][ball] = value


# Vessels --------------------------------------------------------------------------------

_VESSEL_STYLE = {2: _Style((2.8, 3.5), 0.5, 1.5, 2.5), 3: _Style((1.8, 2.8), 0.5, 1.0, 1.5, 1.4)}


def _border_start(rng, shape, tries_clear: np.ndarray | None = None):
    """A point on a random face of the box (away from the corners) and the inward normal."""
    nd = len(shape)
    for _ in range(8):
        axis = int(rng.integers(nd))
        side = int(rng.integers(2))
        p = np.array([rng.uniform(0.15, 0.85) * (s - 1) for s in shape])
        p[axis] = 0.0 if side == 0 else shape[axis] - 1.0
        if tries_clear is None or not _lookup(tries_clear, p[None])[0]:
            break
    d = np.zeros(nd)
    d[axis] = 1.0 if side == 0 else -1.0
    return p, d


def _vessel_pieces(rng: np.random.Generator, shape: tuple[int, ...]) -> list[_Piece]:
    nd = len(shape)
    style = _VESSEL_STYLE[nd]
    extent = float(np.mean(shape))
    owner = np.zeros(shape, np.int32)  # piece index + 1 within a gap of each piece
    queue: deque = deque()
    n_trees = int(rng.integers(1, 4) if nd == 2 else rng.integers(2, 5))
    if rng.random() < 0.3:  # several trunks radiating from one point (an optic disc, a hilum)
        centre = np.array([rng.uniform(0.3, 0.7) * (s - 1) for s in shape])
        first = _unit(rng.standard_normal(nd))
        for k in range(n_trees + 1):
            d = first if k == 0 else _turn(rng, first, rng.uniform(0.8, math.pi))
            r0 = rng.uniform(*style.r_root)
            queue.append((centre, d, r0, 0, int((2 * r0 + style.gap) / style.step) + 2, None))
    else:
        for _ in range(n_trees):
            p, normal = _border_start(rng, shape)
            d = _turn(rng, normal, rng.uniform(0.0, 0.6))
            queue.append((p, d, rng.uniform(*style.r_root), 0, 0, None))
    pieces: list[_Piece] = []
    while queue and len(pieces) < 64:
        start, d, r0, depth, skip, parent = queue.popleft()
        length = max(extent * style.reach * rng.uniform(0.45, 0.9) * (r0 / style.r_root[1]) ** 0.7,
                     4 * style.step + skip * style.step)
        n = int(length / style.step)
        points, heading = _walk(rng, start, d, n, style.step, rng.uniform(0.015, 0.04), 4.0,
                                calm=skip)
        r_end = max(style.r_tip, r0 * rng.uniform(0.35, 0.6)) if r0 > 1.0 else style.r_tip
        radii = np.linspace(r0, r_end, n + 1)
        keep, blocked = _free_run(points, heading, radii, owner, skip, parent)
        if keep < max(3, skip + int(6 / style.step)):
            continue  # a stub that would only thicken the branch it leaves
        points, heading, radii = points[:keep], heading[:keep], radii[:keep].copy()
        if blocked:  # taper a branch stopped by another one: no blunt ends inside the image
            k = min(keep - skip, int(8 / style.step))
            radii[-k:] = np.linspace(radii[-k], style.r_tip, k)
        me = len(pieces)
        pieces.append(_Piece(points, radii, me))
        _draw(owner, points, radii, me + 1, pad=style.gap)
        if depth >= 4:
            continue
        j = skip + int(rng.uniform(0.05, 0.11) * extent / style.step)
        side = 1.0 if rng.random() < 0.5 else -1.0
        while j < keep - 3:
            rc = radii[j] * rng.uniform(0.5, 0.8)
            if rc >= style.r_tip:
                angle = rng.uniform(0.5, 1.3)
                if nd == 2:  # alternate sides, as real vessel trees do
                    side = -side
                    c, s = math.cos(side * angle), math.sin(side * angle)
                    h = heading[j]
                    dc = np.array([c * h[0] - s * h[1], s * h[0] + c * h[1]])
                else:
                    dc = _turn(rng, heading[j], angle)
                queue.append((points[j], dc, rc, depth + 1,
                              _clear_steps(radii[j] + rc + style.gap, angle, style.step), me))
            j += max(2, int(rng.uniform(0.06, 0.17) * extent / style.step))
    return pieces


# Cracks ---------------------------------------------------------------------------------

_CRACK_STYLE = {2: _Style((1.0, 2.0), 0.5, 2.0, 2.0), 3: _Style((0.75, 1.25), 0.5, 1.0, 1.5, 1.4)}


def _crack_pieces(rng: np.random.Generator, shape: tuple[int, ...]) -> list[_Piece]:
    nd = len(shape)
    style = _CRACK_STYLE[nd]
    extent = float(np.mean(shape))
    owner = np.zeros(shape, np.int32)  # crack index + 1 within a gap: where a new one stops
    drawn = np.zeros(shape, np.uint8)  # the cracks themselves: where a stopped one may join
    jag, meander = rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5)
    queue: deque = deque()
    for _ in range(int(rng.integers(2, 5) if nd == 2 else rng.integers(3, 7))):
        if rng.random() < 0.5:
            p, normal = _border_start(rng, shape, owner)
            d = _turn(rng, normal, rng.uniform(0.0, 0.8))
        else:
            p = np.array([rng.uniform(0.15, 0.85) * (s - 1) for s in shape])
            d = _unit(rng.standard_normal(nd))
        length = extent * style.reach * rng.uniform(0.6, 1.2)
        queue.append((p, d, length, rng.uniform(*style.r_root), 0, 0, None))
    pieces: list[_Piece] = []
    while queue and len(pieces) < 48:
        start, d, length, r_max, depth, skip, parent = queue.popleft()
        n = max(3, int(length / style.step))
        points, heading = _walk(rng, start, d, n, style.step, 0.01, 2.5, jag=jag,
                                meander=meander, calm=skip)
        t = np.linspace(0.0, 1.0, n + 1)
        if depth == 0:  # thickest in the middle, hair-thin at both ends
            radii = style.r_tip + (r_max - style.r_tip) * np.sin(np.pi * t) ** 0.6
        else:  # a branch leaves its parent at its widest and thins out
            radii = style.r_tip + (r_max - style.r_tip) * (1.0 - t) ** 0.8
        keep, blocked = _free_run(points, heading, radii, owner, skip, parent)
        if keep < max(2, skip + int(6 / style.step)):
            continue  # a stub that would only thicken the crack it leaves
        points, heading, radii = points[:keep], heading[:keep], radii[:keep]
        if blocked:
            # Run on straight into the crack ahead: a T-junction instead of a near-miss gap.
            reach = np.arange(0.5, style.gap + r_max + 3.0, 0.5)
            ahead = points[-1] + reach[:, None] * heading[-1]
            hits = _lookup(drawn, ahead)
            if hits.any():
                points = np.vstack([points, ahead[int(np.argmax(hits))]])
                radii = np.r_[radii, radii[-1]]
        me = len(pieces)
        pieces.append(_Piece(points, radii, me))
        _draw(owner, points, radii, me + 1, pad=style.gap)
        _draw(drawn, points, radii, 1)
        if depth >= 2:
            continue
        for _ in range(int(rng.poisson(len(points) * style.step / 20.0))):
            j = int(rng.integers(1, len(points) - 1)) if len(points) > 2 else 0
            rc = max(style.r_tip, radii[j] * rng.uniform(0.6, 0.95))
            angle = rng.uniform(0.45, 1.4)
            dc = _turn(rng, heading[j], angle)
            queue.append((points[j], dc, length * rng.uniform(0.25, 0.7), rc, depth + 1,
                          _clear_steps(radii[j] + rc + style.gap, angle, style.step), me))
    return pieces


# Roads ----------------------------------------------------------------------------------


def _grid_lines(rng, half: float, spacing: float) -> np.ndarray:
    """Irregularly spaced offsets covering [-half, half]."""
    out, t = [], -half + rng.uniform(0.0, spacing)
    while t < half:
        out.append(t)
        t += spacing * rng.uniform(0.7, 1.3)
    return np.array(out)


def _cut_between(rng, u: np.ndarray, crossings: np.ndarray) -> list[np.ndarray]:
    """Index runs of a road (positions `u`) after maybe cutting it between two crossings."""
    runs = [np.arange(len(u))]
    inner = crossings[(crossings > u.min()) & (crossings < u.max())]
    if len(inner) >= 2 and rng.random() < 0.35:
        a = int(rng.integers(len(inner) - 1))
        b = min(a + int(rng.integers(1, 3)), len(inner) - 1)
        runs = [np.flatnonzero(u <= inner[a]), np.flatnonzero(u >= inner[b])]
        if rng.random() < 0.5:  # a dead end instead of a missing block: keep one side only
            runs = [runs[int(rng.integers(2))]]
    return [r for r in runs if len(r) >= 2]


def _wobble(rng, u: np.ndarray, spacing: float, curved: bool) -> np.ndarray:
    """Sideways offset along a road: a slow bow when `curved`, else a px-scale wiggle."""
    smooth = ndi.gaussian_filter1d(rng.standard_normal(len(u)), 12.0, mode="nearest")
    out = smooth / (smooth.std() + 1e-9) * rng.uniform(0.3, 1.2)
    if curved:
        wave = rng.uniform(2.5, 5.0) * spacing
        out += rng.uniform(0.08, 0.2) * spacing * np.sin(2 * np.pi * u / wave + rng.uniform(0, 7))
    return out


def _road_pieces(rng: np.random.Generator, shape: tuple[int, ...]) -> list[_Piece]:
    return _road_grid(rng, shape) if len(shape) == 2 else _rod_lattice(rng, shape)


def _road_grid(rng: np.random.Generator, shape: tuple[int, ...]) -> list[_Piece]:
    h, w = shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    half = 0.5 * math.hypot(h, w) + 8.0
    theta = rng.uniform(0, math.pi)
    axes = [np.array([math.cos(theta), math.sin(theta)]),
            np.array([-math.sin(theta), math.cos(theta)])]
    spacing = max(20.0, rng.uniform(0.22, 0.38) * min(h, w))
    lines = [_grid_lines(rng, half, spacing * rng.uniform(0.85, 1.2)) for _ in range(2)]
    u = np.arange(-half, half, 1.5)
    pieces: list[_Piece] = []
    roads = [(f, t) for f in range(2) for t in lines[f]]
    if rng.random() < 0.3:
        roads.append((2, rng.uniform(-0.3, 0.3) * half))  # a diagonal highway
        diag_angle = theta + rng.choice([-1, 1]) * rng.uniform(0.45, 1.1)
    for group, (family, offset) in enumerate(roads):
        if family < 2:
            along, across = axes[family], axes[1 - family]
            crossings = lines[1 - family]
            r = rng.uniform(1.0, 3.5)
        else:
            along = np.array([math.cos(diag_angle), math.sin(diag_angle)])
            across = np.array([-along[1], along[0]])
            crossings = np.array([])
            r = rng.uniform(2.5, 3.5)
        side = offset + _wobble(rng, u, spacing, curved=rng.random() < 0.25)
        points = centre + u[:, None] * along + side[:, None] * across
        for run in _cut_between(rng, u, crossings):
            pts = points[run]
            near = np.all((pts > -r - 2) & (pts < np.array([h, w]) + r + 1), axis=1)
            if near.sum() < 2:
                continue
            idx = np.flatnonzero(near)
            pts = pts[idx[0] : idx[-1] + 1]
            pieces.append(_Piece(pts, np.full(len(pts), r), group))
    return pieces


def _rod_lattice(rng: np.random.Generator, shape: tuple[int, ...]) -> list[_Piece]:
    nd = len(shape)
    spacing = max(8.0, rng.uniform(0.22, 0.34) * float(np.mean(shape)))
    grid = [(s - 1) / 2 + _grid_lines(rng, (s - 1) / 2 + 1, spacing) for s in shape]
    pieces: list[_Piece] = []
    group = 0
    for axis in range(nd):
        others = [a for a in range(nd) if a != axis]
        u = np.arange(-2.0, shape[axis] + 1.0, 1.0)
        for c0 in grid[others[0]]:
            for c1 in grid[others[1]]:
                if rng.random() > 0.5:  # half of the lattice's rods: an open scaffold
                    continue
                r = rng.uniform(0.8, 2.5)
                curved = rng.random() < 0.25
                points = np.empty((len(u), nd))
                points[:, axis] = u
                points[:, others[0]] = c0 + _wobble(rng, u, spacing, curved) * 0.6
                points[:, others[1]] = c1 + _wobble(rng, u, spacing, curved) * 0.6
                for run in _cut_between(rng, u, grid[axis]):
                    pieces.append(_Piece(points[run], np.full(len(run), r), group))
                group += 1
    return pieces


_GENERATORS: dict[str, Callable[[np.random.Generator, tuple[int, ...]], list[_Piece]]] = {
    "vessels": _vessel_pieces,
    "cracks": _crack_pieces,
    "roads": _road_pieces,
}


# Least share of the image (2-D, 3-D) a sample's structures should cover; about the 10th
# percentile of a single draw.
_MIN_COVER = {"vessels": (0.05, 0.008), "cracks": (0.04, 0.002), "roads": (0.12, 0.03)}


def _cover(pieces: list[_Piece], shape) -> float:
    """Rough pixel count of the pieces: centre-line length inside the image times width."""
    total = 0.0
    for p in pieces:
        inside = _inside(p.points, shape)
        if inside.sum() < 2:
            continue
        steps = np.linalg.norm(np.diff(p.points, axis=0), axis=1)
        width = 2 * p.radii[1:] if len(shape) == 2 else math.pi * p.radii[1:] ** 2
        total += float(np.sum((steps * np.maximum(width, 1.0))[inside[1:]]))
    return total


def _rasterize(pieces: list[_Piece], shape, classes: int, rng: np.random.Generator) -> np.ndarray:
    """The label map: pieces drawn thinnest first (the wider one wins an overlap)."""
    groups = sorted({p.group for p in pieces})
    size = dict.fromkeys(groups, 0.0)
    for p in pieces:
        size[p.group] += float(np.sum(p.radii[_inside(p.points, shape)]))
    # The K largest groups get K different classes: every class shows in almost every sample.
    order = sorted(groups, key=lambda g: -size[g])
    perm = rng.permutation(classes)
    klass = {g: int(perm[rank % classes]) + 1 for rank, g in enumerate(order)}
    ordered = sorted(pieces, key=lambda p: float(p.radii.max()))
    labels = _draw_labels(shape, ordered, [klass[p.group] for p in ordered])
    # Fill 1-px gaps between structures (closing): a background pixel squeezed between two
    # structures is ambiguous at the label's own resolution. It takes a neighbour's class.
    mask = (labels > 0).astype(np.uint8)
    if len(shape) == 2:
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        fill = (closed > 0) & (mask == 0)
        if fill.any():
            labels[fill] = cv2.dilate(labels, np.ones((3, 3), np.uint8))[fill]
        _, parts, stats, _ = cv2.connectedComponentsWithStats((labels > 0).astype(np.uint8), 8)
        sizes = stats[:, cv2.CC_STAT_AREA]
    else:
        # Padded: scipy's erosion treats the outside as background, which would leave gaps
        # next to the border open.
        closed = ndi.binary_closing(np.pad(mask, 2), np.ones((3, 3, 3), bool))[2:-2, 2:-2, 2:-2]
        fill = closed & (mask == 0)
        if fill.any():
            labels[fill] = ndi.maximum_filter(labels, 3)[fill]
        parts, _ = ndi.label(labels > 0, np.ones((3, 3, 3), bool))
        sizes = np.bincount(parts.ravel())
    # Drop specks (a road clipping an image corner): nothing to learn a structure from.
    specks = sizes < _MIN_PART
    specks[0] = False
    if specks.any():
        labels[specks[parts]] = 0
    return labels


# ----------------------------------------------------------------------------------------
# Appearance
# ----------------------------------------------------------------------------------------

# Chance that a binary sample's structures are darker than the background.
_DARK_ODDS = {"vessels": 0.7, "cracks": 0.9, "roads": 0.3}


def _field(rng: np.random.Generator, shape: tuple[int, ...], cell: float) -> np.ndarray:
    """Smooth random field with features about `cell` px wide, zero mean and unit std."""
    if cell <= 10.0:
        # Fine texture: blurred white noise, isotropic (a coarse grid's interpolation would
        # show as a lattice in 3-D projections).
        noise = rng.standard_normal(shape, dtype=np.float32)
        if len(shape) == 2:
            out = cv2.GaussianBlur(noise, (0, 0), cell / 3.0)
        else:
            out = ndi.gaussian_filter(noise, cell / 3.0, truncate=3.0)
        return (out - out.mean()) / (out.std() + 1e-6)
    # Coarse fields: noise on a grid three points per feature, blurred there (so that the
    # field is smooth at the grid's scale and the grid does not show), then upsampled.
    grid = tuple(max(4, int(math.ceil(3 * s / cell)) + 1) for s in shape)
    small = ndi.gaussian_filter(rng.standard_normal(grid).astype(np.float32), 1.0, mode="wrap")
    if len(shape) == 2:
        out = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    else:
        # Bicubic in 3-D: each grid plane resized in (H, W), then all columns along D at once.
        d, h, w = shape
        planes = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_CUBIC) for p in small])
        out = cv2.resize(planes.reshape(grid[0], h * w), (h * w, d), interpolation=cv2.INTER_CUBIC)
        out = out.reshape(shape)
    return (out - out.mean()) / (out.std() + 1e-6)


def _unit_range(field: np.ndarray) -> np.ndarray:
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _blobs(rng, shape, amplitude: float, count: int) -> np.ndarray:
    """Unlabelled Gaussian spots of either polarity: things a threshold would pick up."""
    out = np.zeros(shape, np.float32)
    nd = len(shape)
    for _ in range(count):
        centre = [rng.uniform(0, s - 1) for s in shape]
        sigma = rng.uniform(1.5, 5.0) if nd == 2 else rng.uniform(1.2, 3.5)
        height = amplitude * rng.uniform(0.5, 1.0) * (1 if rng.random() < 0.5 else -1)
        reach = int(math.ceil(3 * sigma))
        spans, profiles = [], []
        for c, s in zip(centre, shape):
            a, b = max(int(c) - reach, 0), min(int(c) + reach + 2, s)
            spans.append(slice(a, b))
            profiles.append(np.exp(-0.5 * ((np.arange(a, b) - c) / sigma) ** 2))
        bump = profiles[0]
        for prof in profiles[1:]:
            bump = np.multiply.outer(bump, prof)
        out[tuple(spans)] += (height * bump).astype(np.float32)
    return out


def _render(rng: np.random.Generator, labels: np.ndarray, kind: str, classes: int) -> np.ndarray:
    shape = labels.shape
    nd = len(shape)
    extent = float(np.mean(shape))
    if classes == 1:
        sign = -1.0 if rng.random() < _DARK_ODDS[kind] else 1.0
        table = np.array([0.0, sign * rng.uniform(0.14, 0.32)], np.float32)
        floor = rng.uniform(0.6, 0.85)  # slow contrast changes along the structures
        noise_sd = rng.uniform(0.01, 0.04)
    else:
        # Fixed per class, so the class is readable from the image; small per-sample jitter.
        table = class_contrasts(classes) * np.float32(rng.uniform(0.95, 1.05))
        floor = 0.92
        noise_sd = rng.uniform(0.01, 0.03)
    contrast = table[labels]
    contrast *= (floor + (1.0 - floor) * _unit_range(_field(rng, shape, extent / 3))).astype(
        np.float32
    )
    # A soft halo outside the edge, as an imaging system's blur would give; the labelled
    # pixels keep their full contrast so that the label boundary stays well defined.
    if nd == 2:
        halo = cv2.GaussianBlur(contrast, (0, 0), 0.7)
    else:
        halo = ndi.gaussian_filter(contrast, 0.7, truncate=2.5)
    structures = np.where(labels > 0, contrast, halo)
    # The background spans a random part of the grey range that leaves room for the darkest
    # and the brightest structure (no clipping, so every structure stays visible), at least
    # twice the structures' contrast where it can (so no global threshold finds them). The
    # field is made about uniform (normal CDF) so that the span is used, not just its middle.
    mean_contrast = float(np.abs(table[1:]).mean())
    lo = 0.03 + max(0.0, -float(table.min()))
    hi = 0.97 - max(0.0, float(table.max()))
    span = min(hi - lo, max(mean_contrast * rng.uniform(2.0, 3.5), (hi - lo) * rng.uniform(0.3, 0.8)))
    base = lo + rng.uniform(0.0, 1.0) * (hi - lo - span)
    image = base + span * ndtr(_field(rng, shape, extent / rng.uniform(1.5, 4.0)))
    image += rng.uniform(0.01, 0.04) * _field(rng, shape, rng.uniform(3.0, 8.0))
    expected = 3.0 * np.prod(shape) / (128.0**2 if nd == 2 else 48.0**3)
    image += _blobs(rng, shape, mean_contrast, int(rng.poisson(expected)))
    image += structures
    image += rng.standard_normal(shape, dtype=np.float32) * np.float32(noise_sd)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------


def make_thin_sample(
    seed: int,
    index: int,
    size: tuple[int, ...],
    classes: int = 1,
    kind: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One image (or volume) of thin structures on a textured background, and its labels.

    Args:
        seed: dataset seed (≥ 0).
        index: sample index (≥ 0).
        size: ``(H, W)`` for a 2-D image or ``(D, H, W)`` for a 3-D volume; every side ≥ 16.
        classes: number of structure classes, 1 (binary) to `MAX_CLASSES`. Class ``k``
            has the fixed signed contrast ``class_contrasts(classes)[k]``.
        kind: ``vessels``, ``cracks`` or ``roads``; None takes `thin_kind_of(seed, index)`.

    Returns:
        ``(image, labels)`` of shape `size`: image float32 in [0, 1]; labels uint8, 0 for
        background and 1 … `classes` for the structures.

    Raises:
        ConfigError: (a ValueError) `size` not of length 2 or 3 or a side under 16,
            `classes` outside 1 … 8, an unknown `kind`, a negative seed or index.

    Example:
        >>> image, labels = make_thin_sample(1, 0, (32, 48, 48), kind="vessels")
        >>> image.shape, sorted(np.unique(labels).tolist())
        ((32, 48, 48), [0, 1])
    """
    shape, classes, kind = _check_args(size, classes, kind)
    seed, index = _check_seed("seed", seed), _check_seed("index", index)
    if kind is None:
        kind = thin_kind_of(seed, index)
    rng = np.random.default_rng([seed, index, _GEOMETRY_STREAM])
    # A structure that hits the border or itself early can leave a nearly empty image: draw
    # again (from the same stream, so still deterministic) and keep the fullest of a few.
    wanted = _MIN_COVER[kind][len(shape) - 2] * math.prod(shape)
    best, best_cover = None, -1.0
    for _ in range(5):
        pieces = _GENERATORS[kind](rng, shape)
        cover = _cover(pieces, shape)
        if cover > best_cover:
            best, best_cover = pieces, cover
        if cover >= wanted:
            break
    labels = _rasterize(best, shape, classes, np.random.default_rng([seed, index, _CLASS_STREAM]))
    image = _render(np.random.default_rng([seed, index, _LOOK_STREAM]), labels, kind, classes)
    return image, labels


_ID_FILE = re.compile(r"^\d{6}\.(png|npy)$")


def _atomic_write(path: Path, write: Callable[[object], None]) -> None:
    """Writes through a hidden temp file renamed onto `path`: never a half-written `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not write {path}: {err}") from err


def _png_writer(array: np.ndarray, path: Path) -> Callable[[object], None]:
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise DataError(f"could not encode {path} as PNG")
    return lambda handle: handle.write(encoded.tobytes())


def write_thin_dataset(
    out_dir: str | os.PathLike,
    count: int,
    size: tuple[int, ...],
    seed: int = 0,
    classes: int = 1,
    kind: str | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> Path:
    """Writes a thin-structure dataset folder.

    Layout, with ``<id> = f"{index:06d}"`` for index 0 … count - 1, each sample from
    ``make_thin_sample(seed, index, size, classes, kind)``:

    - 2-D: ``images/<id>.png`` (8-bit grey) and ``labels/<id>.png`` (8-bit, values 0 … K);
    - 3-D: ``images/<id>.npy`` (float32 [D, H, W] in [0, 1]) and ``labels/<id>.npy`` (uint8);
    - ``dataset.json``: ``{"task": "thin", "classes": K, "ndim": 2|3, "size": [...],
      "seed": s, "count": n, "kind": kind or "mixed", "generator": ...}``, written last.

    Every file is written under a hidden temporary name and renamed when complete, so an
    interrupted run leaves no half-written file named like a finished one, and no
    ``dataset.json`` (`load_thin_folder` refuses such a folder).

    Args:
        out_dir: dataset folder (created if missing).
        count: number of samples.
        size: ``(H, W)`` or ``(D, H, W)``.
        seed: dataset seed.
        classes: number of structure classes (1 … 8).
        kind: ``vessels``, ``cracks``, ``roads`` or None (a balanced mix).
        progress: show a progress bar on the terminal.
        overwrite: allow writing into a non-empty folder. The old ``dataset.json`` and the
            ``<6 digits>.png`` / ``.npy`` files of ``images/`` and ``labels/`` are deleted
            first, so the folder holds exactly the new set; other files are left alone.

    Returns:
        The dataset folder, as a `Path`.

    Raises:
        DataError: `out_dir` is not empty (and not `overwrite`), is a file, or a file cannot
            be written.
        ConfigError: bad `size`, `classes`, `kind`, `count` or `seed` (see `make_thin_sample`).

    Example:
        >>> import tempfile
        >>> root = write_thin_dataset(tempfile.mkdtemp(), 2, (32, 32), progress=False)
        >>> sorted(p.name for p in (root / "images").iterdir())
        ['000000.png', '000001.png']
    """
    shape, classes, kind = _check_args(size, classes, kind)
    seed = _check_seed("seed", seed)
    count = _check_seed("count", count)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    existing = sorted(out.iterdir()) if out.is_dir() else []
    if existing and not overwrite:
        raise DataError(
            f"{out} is not empty ({len(existing)} entries, e.g. {existing[0].name}); refusing "
            "to overwrite it: choose an empty folder or pass overwrite=True (CLI: --overwrite)"
        )
    images, labels_dir = out / "images", out / "labels"
    try:
        # The old description goes first: a folder caught half-rewritten has none.
        (out / DATASET_INFO).unlink(missing_ok=True)
        for d in (images, labels_dir):
            d.mkdir(parents=True, exist_ok=True)
            for p in d.iterdir():
                if p.is_file() and (_ID_FILE.match(p.name) or p.name.endswith(".tmp")):
                    p.unlink()
    except OSError as err:
        raise DataError(f"cannot prepare dataset folder {out}: {err}") from err

    def write_one(index: int) -> None:
        image, labels = make_thin_sample(seed, index, shape, classes, kind)
        name = f"{index:06d}"
        if len(shape) == 2:
            pixels = np.rint(image * 255.0).astype(np.uint8)
            _atomic_write(images / f"{name}.png", _png_writer(pixels, images / f"{name}.png"))
            _atomic_write(labels_dir / f"{name}.png",
                          _png_writer(labels, labels_dir / f"{name}.png"))
        else:
            _atomic_write(images / f"{name}.npy", lambda f: np.save(f, image))
            _atomic_write(labels_dir / f"{name}.npy", lambda f: np.save(f, labels))

    if progress:
        import click

        with click.progressbar(range(count), label=f"Writing {out}") as bar:
            for index in bar:
                write_one(index)
    else:
        for index in range(count):
            write_one(index)
    info = dict(task="thin", classes=classes, ndim=len(shape), size=list(shape), seed=seed,
                count=count, kind=kind or "mixed", generator="keras_skel.data.thin")
    text = json.dumps(info, indent=2).encode()
    _atomic_write(out / DATASET_INFO, lambda f: f.write(text))
    return out


def _read_info(root: Path) -> dict:
    path = root / DATASET_INFO
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found (or not a folder)")
    if not path.is_file():
        raise DataError(
            f"{path}: missing; a thin-structure dataset folder holds dataset.json, images/ and "
            "labels/ (write one with write_thin_dataset or `keras-skel data synth --task thin`)"
        )
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read as JSON ({err})") from err
    if not isinstance(info, dict) or info.get("task") != "thin":
        found = info.get("task") if isinstance(info, dict) else type(info).__name__
        raise DataError(f"{path}: expected a thin-structure dataset (task 'thin'); found {found!r}")
    classes, ndim, size = info.get("classes"), info.get("ndim"), info.get("size")
    if not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES:
        raise DataError(f"{path}: 'classes' must be an integer 1 … {MAX_CLASSES}; found {classes!r}")
    if ndim not in (2, 3):
        raise DataError(f"{path}: 'ndim' must be 2 or 3; found {ndim!r}")
    if not (isinstance(size, list) and len(size) == ndim
            and all(isinstance(s, int) and s > 0 for s in size)):
        raise DataError(f"{path}: 'size' must be a list of {ndim} positive integers; found {size!r}")
    return info


def _read_array(path: Path, ndim: int, what: str) -> np.ndarray:
    """An image (`what` = "image") or label map from a .png (2-D) or .npy (3-D) file."""
    if ndim == 2:
        try:
            array = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        except (OSError, cv2.error) as err:
            raise DataError(f"{path}: cannot be read ({err})") from err
        if array is None:
            raise DataError(f"{path}: not a readable PNG image")
        if array.dtype != np.uint8 or array.ndim != 2:
            raise DataError(
                f"{path}: found a {array.dtype} image of shape {array.shape}; expected an 8-bit "
                f"grey {what} (2-D)"
            )
        return array
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as a .npy array ({err})") from err
    expected = "float" if what == "image" else "uint8"
    if array.ndim != 3:
        raise DataError(
            f"{path}: found a {array.ndim}-D array of shape {array.shape}; the dataset is 3-D, "
            f"expected a {expected} array [D, H, W]"
        )
    if what == "image" and array.dtype.kind != "f":
        raise DataError(f"{path}: found a {array.dtype} array; expected float32 values in [0, 1]")
    if what != "image" and array.dtype != np.uint8:
        raise DataError(f"{path}: found a {array.dtype} array; expected uint8 labels")
    return array


def load_thin_folder(root: str | os.PathLike) -> tuple[dict, list[tuple[str, np.ndarray, np.ndarray]]]:
    """Reads a folder written by `write_thin_dataset`.

    Args:
        root: the dataset folder (holding ``dataset.json``, ``images/`` and ``labels/``).

    Returns:
        ``(info, samples)``: the parsed ``dataset.json`` and, sorted by id, one
        ``(id, image, labels)`` per sample: image float32 in [0, 1], labels uint8, both of
        the shape ``info["size"]``.

    Raises:
        DataError: naming the file at fault, for a missing or malformed ``dataset.json``, a
            missing ``images/`` or ``labels/`` folder, an image without a label file or the
            reverse, a file of the other dimensionality (``.npy`` in a 2-D set, ``.png`` in
            a 3-D one, an array of the wrong rank), a size that differs from the labels' or
            from ``dataset.json``'s, image values outside [0, 1], a label value above
            ``classes``, or a sample count that differs from ``dataset.json``'s.

    Example:
        >>> import tempfile
        >>> root = write_thin_dataset(tempfile.mkdtemp(), 2, (32, 32), classes=3, progress=False)
        >>> info, samples = load_thin_folder(root)
        >>> info["classes"], len(samples), samples[0][1].dtype
        (3, 2, dtype('float32'))
    """
    root = Path(root)
    info = _read_info(root)
    ndim, classes, size = info["ndim"], info["classes"], tuple(info["size"])
    suffix, other = (".png", ".npy") if ndim == 2 else (".npy", ".png")
    found: dict[str, dict[str, Path]] = {}
    for sub in ("images", "labels"):
        folder = root / sub
        if not folder.is_dir():
            raise DataError(f"{folder}: missing; expected a folder of <id>{suffix} files")
        files = {}
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not p.is_file():
                continue  # hidden files: temporaries of an interrupted writer, OS litter
            if p.suffix.lower() == other:
                raise DataError(
                    f"{p}: a {other} file in a {ndim}-D dataset ({root / DATASET_INFO} says "
                    f"ndim={ndim}); expected {suffix} files"
                )
            if p.suffix.lower() == suffix:
                files[p.stem] = p
        found[sub] = files
    for have, lack in (("images", "labels"), ("labels", "images")):
        for stem, path in found[have].items():
            if stem not in found[lack]:
                raise DataError(f"{path}: has no matching {root / lack / (stem + suffix)}")
    count = info.get("count")
    if isinstance(count, int) and count != len(found["images"]):
        raise DataError(
            f"{root / DATASET_INFO}: says count={count} but {root / 'images'} holds "
            f"{len(found['images'])} {suffix} files"
        )
    samples = []
    for stem in sorted(found["images"]):
        image_path, label_path = found["images"][stem], found["labels"][stem]
        image = _read_array(image_path, ndim, "image")
        labels = _read_array(label_path, ndim, "labels")
        if image.shape != labels.shape:
            raise DataError(
                f"{image_path}: shape {image.shape} differs from {label_path}'s {labels.shape}"
            )
        if image.shape != size:
            raise DataError(
                f"{image_path}: shape {image.shape} differs from size {list(size)} in "
                f"{root / DATASET_INFO}"
            )
        top = int(labels.max()) if labels.size else 0
        if top > classes:
            raise DataError(
                f"{label_path}: holds label value {top} but {root / DATASET_INFO} says "
                f"classes={classes} (values 0 … {classes})"
            )
        if ndim == 2:
            image = image.astype(np.float32) / np.float32(255.0)
        else:
            image = image.astype(np.float32)
            if not np.all(np.isfinite(image)) or image.min() < 0.0 or image.max() > 1.0:
                raise DataError(f"{image_path}: image values must be finite and in [0, 1]")
        samples.append((stem, image, labels))
    return info, samples


def thin_source(
    size: tuple[int, ...],
    seed: int = 0,
    classes: int = 1,
    kind: str | None = None,
    num_parallel_calls: int | None = None,
):
    """An endless `tf.data` stream of fresh thin-structure samples, made on the fly.

    Element ``i`` is ``make_thin_sample(seed, i, size, classes, kind)``: the stream is
    reproducible, and a `model.fit` that keeps drawing from it sees new samples every epoch.

    Args:
        size: ``(H, W)`` or ``(D, H, W)``.
        seed: stream seed (use another seed for a validation stream).
        classes: number of structure classes (1 … 8).
        kind: ``vessels``, ``cracks``, ``roads`` or None (a balanced mix).
        num_parallel_calls: parallel map calls (default ``tf.data.AUTOTUNE``). The output
            order stays deterministic either way.

    Returns:
        `tf.data.Dataset` of ``(image, labels)``: image float32 ``[*size, 1]`` in [0, 1],
        labels uint8 ``[*size, 1]`` with values 0 … `classes`, static shapes.

    Raises:
        ConfigError: bad `size`, `classes`, `kind` or `seed`.

    Example:
        >>> ds = thin_source((64, 64), classes=3).batch(4)  # doctest: +SKIP
        >>> image, labels = next(iter(ds))  # [4, 64, 64, 1] float32 and uint8  # doctest: +SKIP
    """
    import tensorflow as tf  # lazy: this module must import without TensorFlow

    shape, classes, kind = _check_args(size, classes, kind)
    seed = _check_seed("seed", seed)
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls

    def make(index):
        image, labels = make_thin_sample(seed, int(index), shape, classes, kind)
        return image[..., None], labels[..., None]

    def to_tensors(index):
        image, labels = tf.numpy_function(make, [index], [tf.float32, tf.uint8], stateful=False)
        image.set_shape((*shape, 1))
        labels.set_shape((*shape, 1))
        return image, labels

    return tf.data.Dataset.counter().map(to_tensors, num_parallel_calls=parallel,
                                         deterministic=True)
