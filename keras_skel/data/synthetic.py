"""Synthetic binary shapes and their ground-truth skeletons, for training skeletonizers.

Eight shape families, drawn so that every block of ``len(FAMILIES)`` consecutive indices holds
each family once (see `family_of`):

- ``blob``: smooth blobs, Fourier-perturbed radius or thresholded smoothed noise.
- ``polygon``: convex, star-like (non-convex) and rectilinear (L, T, U, cross…) polygons.
- ``stroke``: thick splines and polylines of varying width, sometimes crossing.
- ``tree``: branching trees, starfish-like radial shapes and stick figures (tapered limbs).
- ``animal``: quadrupeds, lizards, insects, birds and fish (body + tapered limbs and tail).
- ``glyph``: letters, digits and symbols from the DejaVu / STIX fonts matplotlib ships.
- ``hershey``: OpenCV Hershey-font text drawn with thick strokes.
- ``holes``: rings, blobs minus inner blobs, frames, spectacles and holed letters (O, B, 8…).

Every shape is scaled, rotated, mirrored and placed at random at synthesis time, inside the
image with a margin; the target is `skeleton_target` of the transformed *clean* shape, while
the input may carry boundary noise (`add_boundary_noise`). A sample depends only on
``(seed, index, size, noise)``, so any sample can be regenerated alone and in parallel.

Only fonts shipped by pip packages are used (matplotlib's ``mpl-data/fonts/ttf`` and OpenCV's
built-in Hershey fonts), never fonts of the operating system.

Example:
    >>> image, skeleton = make_shape_sample(seed=0, index=7, size=(128, 128))
    >>> image.shape, image.dtype, int(skeleton.max())
    ((128, 128), dtype('uint8'), 1)
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage as ndi
from skimage.morphology import skeletonize

from keras_skel.data.targets import skeleton_target
from keras_skel.errors import ConfigError, DataError

__all__ = [
    "FAMILIES",
    "HELDOUT_FAMILIES",
    "SPLITS",
    "NOISE_STYLES",
    "TARGETS",
    "family_of",
    "make_shape",
    "add_boundary_noise",
    "make_shape_sample",
    "write_shapes_dataset",
    "shapes_source",
]

FAMILIES: tuple[str, ...] = (
    "blob",
    "polygon",
    "stroke",
    "tree",
    "animal",
    "glyph",
    "hershey",
    "holes",
)

# Sub-streams of np.random.default_rng([seed, index, stream]): the clean shape does not
# depend on the noise level, so the same (seed, index) has the same target at any noise.
_SHAPE_STREAM, _NOISE_STREAM, _FAMILY_STREAM = 0, 1, 2

_SHIFT = 4  # cv2 drawing with 4 fractional bits: sub-pixel vertex positions
_ONE = 1 << _SHIFT

# Glyphs. Symbols exist in DejaVu Sans (checked); letters in every listed font.
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghklmnopqrstuvwxyz0123456789"
_SYMBOLS = "&@%#?$§¶€£¥ßæøŒαβγδζθλμξπσφψωΓΔΘΛΞΠΣΦΨΩЖЯБДЮФ"
_PICTOS = "★♥♦♣♠☂☁☯✈✿❄⚓⚡☘♞♛♜♫♪✂☎☕⚙✝✌❀✪✱✲✸✹➔➜➤⬆⌘"
_HOLED = "ABDOPQRabdegopq0468&@%BØΘΦ"
_HOLED_HERSHEY = "ABDOPQRabdegopq04689&@%"
_TTF_FONTS = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneral.ttf",
)
_PICTO_FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")
# The held-out split (`split="heldout"`): font families and shape kinds no training sample of
# `split="train"` uses, for checks of generalization. Computer Modern (TeX's fonts, shipped by
# matplotlib) is never used for training in any split; birds are drawn only in the held-out
# split and in `split="all"` (the default, every variant).
_HELDOUT_FONTS = ("cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")
_HELDOUT_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghkmnopqrstuvwxyz0123456789"
HELDOUT_FAMILIES: tuple[str, ...] = ("animal", "glyph")
SPLITS: tuple[str, ...] = ("all", "train", "heldout")
NOISE_STYLES: tuple[str, ...] = ("field", "bumps", "mixed")
# What a model learns: the skeleton itself, or the clean shape (skeletonized afterwards).
TARGETS: tuple[str, ...] = ("skeleton", "shape")
_HERSHEY_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghkmnopqrstuvwxyz0123456789&@%#?$"
_HERSHEY_FACES = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)


# ----------------------------------------------------------------------------------------
# Geometry: shapes are built from primitives in "unit" coordinates (the shape spans about
# [-1, 1]^2, y up) and rasterized after the random pose, so edges stay crisp at any scale.
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Poly:
    points: np.ndarray  # (N, 2) x, y
    value: int = 1  # 1 adds to the shape, 0 cuts out of it


@dataclass(frozen=True)
class _Capsule:
    """Convex hull of two discs: a tapered limb."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    value: int = 1


@dataclass(frozen=True)
class _Pose:
    theta: float
    flip: bool
    aspect: float
    fill: float  # fraction of the free box the shape's extent takes along its tight axis
    ux: float  # position of the shape in the remaining free space, 0..1
    uy: float

    def linear(self) -> np.ndarray:
        c, s = math.cos(self.theta), math.sin(self.theta)
        rot = np.array([[c, -s], [s, c]])
        stretch = np.diag([math.sqrt(self.aspect), 1.0 / math.sqrt(self.aspect)])
        mirror = np.diag([-1.0 if self.flip else 1.0, 1.0])
        return rot @ stretch @ mirror


def _draw_pose(rng: np.random.Generator) -> _Pose:
    return _Pose(
        theta=rng.uniform(0, 2 * math.pi),
        flip=bool(rng.random() < 0.5),
        aspect=math.exp(rng.uniform(-0.2, 0.2)),
        fill=rng.uniform(0.55, 0.95),
        ux=rng.random(),
        uy=rng.random(),
    )


@dataclass(frozen=True)
class _Canvas:
    height: int
    width: int
    margin: float  # free border (px) kept around the shape
    r_min: float  # thinnest limb radius (px) drawn


def _dir(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _ellipse(center, a: float, b: float, angle: float = 0.0, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    pts = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(center, float)


def _fourier_radius(rng: np.random.Generator, n: int, roughness: float, harmonics: int = 7):
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, harmonics + 1):
        r += rng.normal(0, roughness) / k**0.9 * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    return t, r


def _fourier_blob(rng, center=(0.0, 0.0), scale=1.0, roughness=0.22, r_floor=0.3, n=96):
    t, r = _fourier_radius(rng, n, roughness)
    r = np.maximum(r, r_floor) / max(r.max(), 1e-6)
    pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1) * scale
    return pts + np.asarray(center, float)


def _catmull_rom(ctrl: np.ndarray, per_segment: int = 10) -> np.ndarray:
    p = np.vstack([2 * ctrl[0] - ctrl[1], ctrl, 2 * ctrl[-1] - ctrl[-2]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(ctrl[-1:])
    return np.vstack(out)


def _chain(points: np.ndarray, radii: np.ndarray, value: int = 1) -> list[_Capsule]:
    return [
        _Capsule(points[i], points[i + 1], float(radii[i]), float(radii[i + 1]), value)
        for i in range(len(points) - 1)
    ]


def _limb(
    rng, start, angle, length, r0, r1, bend=0.25, segments=3
) -> tuple[list, np.ndarray, float]:
    """A slightly curved tapered limb; returns (capsules, end point, end angle)."""
    pts, a = [np.asarray(start, float)], angle
    for _ in range(segments):
        a += rng.normal(0, bend)
        pts.append(pts[-1] + length / segments * _dir(a))
    radii = np.linspace(r0, r1, segments + 1)
    return _chain(np.array(pts), radii), pts[-1], a


# ---------------------------------------------------------------------------- families


def _pick(rng: np.random.Generator, table: dict[str, tuple[float, Callable]]) -> Callable:
    """Draws one builder of a {name: (weight, builder)} table."""
    weights = np.array([w for w, _ in table.values()])
    return list(table.values())[int(rng.choice(len(table), p=weights / weights.sum()))][1]


def _poly(*points, value: int = 1) -> _Poly:
    return _Poly(np.array(points, float), value)


def _jointed(start, a1, a2, l1, l2, r0, r1, r2) -> list[_Capsule]:
    """A two-segment limb (thigh + shin, arm + forearm) with straight segments."""
    knee = np.asarray(start, float) + l1 * _dir(a1)
    return [
        _Capsule(np.asarray(start, float), knee, r0, r1),
        _Capsule(knee, knee + l2 * _dir(a2), r1, r2),
    ]


def _tail(rng, start, angle, length, r0, r1, curl) -> list[_Capsule]:
    """A tapered curve that turns by `curl` radians over its length (tails, antennae)."""
    n = 8
    pts, a = [np.asarray(start, float)], angle
    for _ in range(n):
        a += curl / n + rng.normal(0, 0.08)
        pts.append(pts[-1] + length / n * _dir(a))
    return _chain(np.array(pts), np.linspace(r0, r1, n + 1))


# Blobs ------------------------------------------------------------------------------------


def _fourier_shape(rng, canvas):
    pts = _fourier_blob(rng, roughness=rng.uniform(0.12, 0.35), r_floor=0.35)
    pts[:, 1] *= rng.uniform(0.45, 1.0)
    return [_Poly(pts)]


def _noise_blob(rng, canvas, res: int = 96) -> np.ndarray:
    """Thresholded smoothed noise, its largest component filled: a field (> 0 inside)."""
    yy, xx = np.mgrid[-1 : 1 : res * 1j, -1 : 1 : res * 1j].astype(np.float32)
    for _ in range(10):
        grid = int(rng.integers(4, 9))
        small = rng.standard_normal((grid, grid)).astype(np.float32)
        field = cv2.resize(small, (res, res), interpolation=cv2.INTER_CUBIC)
        field /= field.std() + 1e-6
        field += rng.uniform(1.2, 2.2) * (1 - 1.8 * (xx**2 + yy**2))  # keeps it off the edge
        n, labels, stats, _ = cv2.connectedComponentsWithStats((field > 0).astype(np.uint8), 8)
        if n < 2:
            continue
        keep = ndi.binary_fill_holes(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))
        if keep.sum() >= 0.08 * res * res:
            return np.where(keep, np.abs(field) + 0.02, -np.abs(field) - 0.02)
    return 0.7 - np.sqrt(xx**2 + yy**2)  # a disc


# Polygons ---------------------------------------------------------------------------------


def _convex_polygon(rng, canvas):
    k = int(rng.integers(3, 9))
    if rng.random() < 0.3:  # regular
        ang = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(0, 2 * math.pi)
        r = np.ones(k)
    else:
        ang, r = np.sort(rng.uniform(0, 2 * math.pi, k)), rng.uniform(0.7, 1.0, k)
    pts = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1).astype(np.float32)
    pts = cv2.convexHull(pts)[:, 0].astype(float)
    if len(pts) < 3 or cv2.contourArea(pts.astype(np.float32)) < 0.5:
        pts = _ellipse((0, 0), 1, 0.7, n=5)
    pts[:, 1] *= rng.uniform(0.4, 1.0)
    return [_Poly(pts)]


def _star_polygon(rng, canvas):
    if rng.random() < 0.4:  # a star: alternating radii
        k = 2 * int(rng.integers(3, 8))
        ang = np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.normal(0, 0.05, k)
        r = np.where(np.arange(k) % 2 == 0, 1.0, rng.uniform(0.35, 0.6))
    else:  # a random star-shaped polygon
        k = int(rng.integers(5, 15))
        ang, r = np.sort(rng.uniform(0, 2 * math.pi, k)), rng.uniform(0.35, 1.0, k)
    return [_Poly(np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1))]


def _rectilinear_polygon(rng, canvas):
    """Connected cells of an irregular grid: L, T, U, Z, crosses, stairs…"""
    nx, ny = int(rng.integers(3, 5)), int(rng.integers(2, 5))
    xs = np.concatenate([[0], np.cumsum(rng.uniform(0.35, 1.0, nx))])
    ys = np.concatenate([[0], np.cumsum(rng.uniform(0.35, 1.0, ny))])
    cells = {(int(rng.integers(nx)), int(rng.integers(ny)))}
    wanted = int(rng.integers(3, min(nx * ny, 7) + 1))
    while len(cells) < wanted:
        cx, cy = sorted(cells)[int(rng.integers(len(cells)))]
        dx, dy = [(1, 0), (-1, 0), (0, 1), (0, -1)][int(rng.integers(4))]
        if 0 <= cx + dx < nx and 0 <= cy + dy < ny:
            cells.add((cx + dx, cy + dy))
    e = 0.02  # overlap so that neighbouring cells fuse without seams
    return [
        _poly(
            [xs[i] - e, ys[j] - e],
            [xs[i + 1] + e, ys[j] - e],
            [xs[i + 1] + e, ys[j + 1] + e],
            [xs[i] - e, ys[j + 1] + e],
        )
        for i, j in sorted(cells)
    ]


# Strokes ----------------------------------------------------------------------------------


def _strokes(rng, canvas):
    prims = _one_stroke(rng)
    if rng.random() < 0.3:  # a second stroke through the first one's middle
        prims += _one_stroke(rng, through=prims[len(prims) // 2].p0)
    return prims


def _one_stroke(rng, through=None) -> list[_Capsule]:
    angle, pts = rng.uniform(0, 2 * math.pi), [np.zeros(2)]
    for _ in range(int(rng.integers(2, 6))):
        angle += rng.normal(0, 1.0)
        pts.append(pts[-1] + rng.uniform(0.5, 1.0) * _dir(angle))
    ctrl = np.array(pts) - np.mean(pts, axis=0)
    ctrl /= np.abs(ctrl).max() + 1e-6
    if through is not None:
        ctrl += through - ctrl[len(ctrl) // 2]
    polyline = rng.random() < 0.3
    dense = _densify(ctrl, 0.06) if polyline else _catmull_rom(ctrl, per_segment=14)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    s /= s[-1] + 1e-9
    wobble = rng.uniform(0.0, 0.45) * np.sin(
        2 * math.pi * rng.uniform(0.5, 2) * s + rng.uniform(0, 6)
    )
    radii = rng.uniform(0.04, 0.15) * (1 + wobble)
    if rng.random() < 0.4:  # tapered ends, brush-like
        radii *= np.clip(np.minimum(s, 1 - s) * rng.uniform(3, 8), 0.35, 1)
    return _chain(dense, radii)


def _densify(ctrl: np.ndarray, step: float) -> np.ndarray:
    out = [ctrl[0]]
    for a, b in zip(ctrl[:-1], ctrl[1:], strict=True):
        n = max(1, int(np.linalg.norm(b - a) / step))
        out.extend(a + (b - a) * (i / n) for i in range(1, n + 1))
    return np.array(out)


# Trees, radial shapes, stick figures ------------------------------------------------------


def _tree(rng, canvas):
    prims: list = []
    spread = rng.uniform(0.3, 0.75)

    def grow(start, angle, length, r, level):
        caps, end, end_angle = _limb(rng, start, angle, length, r, r * 0.72, bend=0.12)
        prims.extend(caps)
        if level > 0:
            n = int(rng.choice([2, 2, 3]))
            for a in np.linspace(-spread, spread, n) + rng.normal(0, 0.12, n):
                child_r = r * 0.72 * rng.uniform(0.8, 1.0)
                grow(end, end_angle + a, length * rng.uniform(0.55, 0.8), child_r, level - 1)

    base = np.array([0.0, -1.0])
    up = math.pi / 2 + rng.normal(0, 0.1)
    grow(base, up, rng.uniform(0.55, 0.8), rng.uniform(0.07, 0.14), int(rng.integers(2, 4)))
    if rng.random() < 0.35:  # roots
        for a in rng.uniform(-2.6, -0.5, int(rng.integers(2, 4))):
            prims += _limb(rng, base, a, rng.uniform(0.2, 0.45), 0.08, 0.03)[0]
    return prims


def _radial(rng, canvas):
    """A hub with tapered arms: starfish, asterisks, splats."""
    r0 = rng.uniform(0.12, 0.32)
    prims: list = [_Poly(_fourier_blob(rng, scale=r0, roughness=0.1, r_floor=0.6))]
    n = int(rng.integers(3, 10))
    angles = np.linspace(0, 2 * math.pi, n, endpoint=False) + rng.normal(0, 0.15, n)
    for a in angles + rng.uniform(0, 2 * math.pi):
        width = r0 * rng.uniform(0.35, 0.7)
        length = rng.uniform(0.5, 0.9) * (1 - r0)
        tip = width * rng.uniform(0.1, 0.5)
        prims += _limb(rng, r0 * 0.5 * _dir(a), a, length, width, tip, bend=0.25)[0]
    return prims


def _stick_figure(rng, canvas):
    r = rng.uniform(0.05, 0.1)
    neck, hip = np.array([0.0, 0.45]), np.array([0.0, -0.2]) + rng.normal(0, 0.05, 2)
    head_r = rng.uniform(0.14, 0.22)
    prims: list = [
        _Capsule(neck, hip, r * 1.3, r * 1.2),
        _Poly(_ellipse(neck + [0, head_r * 1.1], head_r, head_r * 1.15)),
    ]
    down = -math.pi / 2
    for side in (-1, 1):
        arm = down + side * rng.uniform(0.3, 2.2)
        prims += _jointed(
            neck - [0, 0.05], arm, arm + rng.normal(0, 0.8), 0.35, 0.3, r, r * 0.85, r * 0.7
        )
        leg = down + side * rng.uniform(0.05, 0.6)
        prims += _jointed(hip, leg, leg + rng.normal(0, 0.4), 0.45, 0.4, r * 1.1, r, r * 0.85)
    return prims


# Animals ----------------------------------------------------------------------------------


def _quadruped(rng, canvas):
    a = rng.uniform(0.5, 0.75)
    b = a * rng.uniform(0.3, 0.5)
    prims: list = [_Poly(_ellipse((0, 0), a, b, rng.uniform(-0.12, 0.12)))]
    leg, r = b * rng.uniform(0.8, 1.5), b * rng.uniform(0.16, 0.28)
    for sign in (1, -1):  # front, back
        x_hip = sign * a * rng.uniform(0.45, 0.65)
        for dx in (-0.06 * a, 0.06 * a):
            a1 = -math.pi / 2 + rng.normal(0, 0.35)
            a2 = a1 + sign * rng.uniform(0.1, 0.5)  # knees bend the animal's way
            prims += _jointed((x_hip + dx, -0.4 * b), a1, a2, leg, leg, r * 1.3, r, r * 0.75)
    neck = np.array([a * 0.7, b * 0.35])
    head = neck + b * rng.uniform(0.6, 2.0) * _dir(rng.uniform(0.3, 1.3))
    hr, snout = b * rng.uniform(0.4, 0.6), rng.uniform(-0.6, 0.1)
    prims += [
        _Capsule(neck, head, b * 0.45, hr * 0.7),
        _Poly(_ellipse(head, hr * 1.1, hr * 0.85, snout)),
        _Capsule(head, head + hr * rng.uniform(0.8, 1.6) * _dir(snout), hr * 0.6, hr * 0.35),
    ]
    if rng.random() < 0.8:  # ears or horns
        length = hr * (1 + rng.uniform(0.5, 1.8))
        for da in (0.9, 1.5):
            a_ear = snout + da + rng.normal(0, 0.2)
            prims += _limb(rng, head, a_ear, length, hr * 0.35, hr * 0.08, bend=0.1, segments=2)[0]
    if rng.random() < 0.9:
        tail_angle, tail_len = math.pi + rng.uniform(-0.3, 1.2), a * rng.uniform(0.3, 1.1)
        prims += _tail(
            rng, (-a * 0.9, b * 0.2), tail_angle, tail_len, b * 0.22, b * 0.07, rng.normal(0, 1.5)
        )
    return prims


def _lizard(rng, canvas):
    a = rng.uniform(0.4, 0.55)
    b = a * rng.uniform(0.18, 0.3)
    hr = b * rng.uniform(0.9, 1.2)
    prims: list = [
        _Poly(_ellipse((0, 0), a, b)),
        _Poly(_ellipse((a + hr * 0.6, 0), hr * 1.4, hr * 0.85, rng.normal(0, 0.2))),
    ]
    for x in (a * 0.55, -a * 0.55):  # sprawled legs, elbows out
        for side in (-1, 1):
            a1 = side * (math.pi / 2 + rng.uniform(-0.8, 0.8) - 0.3 * np.sign(x))
            a2 = a1 - side * rng.uniform(0.6, 1.4)
            prims += _jointed(
                (x, side * b * 0.5), a1, a2, b * 2.0, b * 1.8, b * 0.35, b * 0.28, b * 0.2
            )
    tail_len = a * rng.uniform(1.0, 1.8)
    prims += _tail(
        rng,
        (-a * 0.9, 0),
        math.pi + rng.normal(0, 0.4),
        tail_len,
        b * 0.7,
        b * 0.12,
        rng.normal(0, 2.0),
    )
    return prims


def _insect(rng, canvas):
    s = rng.uniform(0.8, 1.0)
    prims: list = [
        _Poly(_ellipse((-0.4 * s, 0), 0.42 * s, 0.24 * s * rng.uniform(0.7, 1.2))),  # abdomen
        _Poly(_ellipse((0.1 * s, 0), 0.18 * s, 0.13 * s)),  # thorax
        _Poly(_ellipse((0.38 * s, 0), 0.11 * s, 0.1 * s)),  # head
    ]
    r = 0.035 * s
    for i, x in enumerate((0.18 * s, 0.1 * s, 0.02 * s)):  # three pairs of legs
        for side in (-1, 1):
            a1 = side * (math.pi / 2 + (i - 1) * 0.6 + rng.normal(0, 0.25))
            a2 = a1 + side * rng.uniform(0.4, 1.0) * (-1 if i == 0 else 1)
            prims += _jointed((x, 0), a1, a2, 0.3 * s, 0.35 * s, r, r * 0.8, r * 0.6)
    if rng.random() < 0.8:  # antennae
        for side in (-1, 1):
            angle, curl = side * rng.uniform(0.3, 0.8), side * rng.normal(0.5, 0.5)
            prims += _tail(rng, (0.45 * s, 0.03 * side), angle, 0.35 * s, r * 0.7, r * 0.5, curl)
    return prims


def _bird(rng, canvas):
    a, b, tilt = rng.uniform(0.4, 0.5), rng.uniform(0.2, 0.27), rng.uniform(0.1, 0.5)
    head, hr = a * 0.95 * _dir(tilt) + [0, b * 0.9], b * rng.uniform(0.55, 0.75)
    beak_dir = rng.uniform(-0.5, 0.3)
    beak, side = (
        head + hr * rng.uniform(1.6, 2.8) * _dir(beak_dir),
        _dir(beak_dir + math.pi / 2) * hr * 0.45,
    )
    back, spread, tail = -a * 0.85 * _dir(tilt), rng.uniform(0.15, 0.5), rng.uniform(0.35, 0.7)
    d = math.pi + tilt - rng.uniform(0.0, 0.5)
    prims: list = [
        _Poly(_ellipse((0, 0), a, b, tilt)),
        _Capsule(a * 0.6 * _dir(tilt), head, b * 0.6, hr),
        _poly(head + side, beak, head - side),
        _poly(
            back + [0, b * 0.3],
            back + tail * _dir(d - spread),
            back + tail * _dir(d + spread),
            back - [0, b * 0.3],
        ),
    ]
    if rng.random() < 0.6:  # a spread wing
        root, wa = np.array([-0.05, b * 0.5]), rng.uniform(1.3, 2.4)
        tip = root + rng.uniform(0.6, 1.0) * _dir(wa)
        mid = (root + tip) / 2 + 0.12 * _dir(wa - math.pi / 2)
        prims.append(
            _poly(root + [a * 0.45, 0], mid + 0.12 * _dir(wa - 1.2), tip, mid, root - [a * 0.45, 0])
        )
    for dx in (-0.08, 0.08):  # legs with toes
        foot = np.array([dx + rng.normal(0, 0.05), -b * 0.7 - rng.uniform(0.3, 0.5)])
        prims.append(_Capsule(np.array([dx, -b * 0.7]), foot, 0.035, 0.025))
        prims += [_Capsule(foot, foot + 0.12 * _dir(ta), 0.025, 0.018) for ta in (-0.3, 0.0, 2.8)]
    return prims


def _fish(rng, canvas):
    h = rng.uniform(0.22, 0.45)
    x = np.linspace(-0.7, 0.6, 24)
    u = (x - x[0]) / (x[-1] - x[0])
    half = h * np.sin(np.pi * u ** rng.uniform(0.6, 0.9)) ** 0.8 + 0.06 * (1 - u)
    body = np.vstack([np.stack([x, half], 1), np.stack([x[::-1], -half[::-1]], 1)])
    tx, spread, tl = x[0] + 0.05, rng.uniform(0.25, 0.5), rng.uniform(0.3, 0.5)
    notch = tx - tl * (1 - 0.6 * rng.uniform(0.0, 0.7))  # forked or straight tail fin
    dx = rng.uniform(-0.3, 0.2)
    prims = [
        _Poly(body),
        _poly([tx, 0.06], [tx - tl, spread], [notch, 0], [tx - tl, -spread], [tx, -0.06]),
        _poly(
            [dx - 0.2, h * 0.8],
            [dx + rng.uniform(-0.25, 0.0), h + rng.uniform(0.12, 0.3)],
            [dx + 0.2, h * 0.75],
        ),
    ]
    if rng.random() < 0.7:  # ventral fin
        prims.append(
            _poly(
                [0.15, -h * 0.7],
                [0.05 + rng.uniform(-0.1, 0.1), -h - rng.uniform(0.1, 0.2)],
                [-0.05, -h * 0.7],
            )
        )
    return prims


# Shapes with holes ------------------------------------------------------------------------


def _ring(rng, canvas):
    outer = _fourier_blob(rng, roughness=rng.uniform(0.05, 0.2), r_floor=0.6)
    outer[:, 1] *= rng.uniform(0.6, 1.0)
    inner = outer * rng.uniform(0.45, 0.75) + rng.normal(0, 0.04, 2)
    return [_Poly(outer), _Poly(inner, 0)]


def _holed_blob(rng, canvas):
    outer = _fourier_blob(rng, roughness=rng.uniform(0.1, 0.25), r_floor=0.5)
    prims, holes = [_Poly(outer)], []
    contour = outer.astype(np.float32)
    wanted = int(rng.choice([1, 1, 2, 2, 3]))
    for _ in range(60):
        if len(holes) >= wanted:
            break
        c, radius = rng.uniform(-0.7, 0.7, 2), rng.uniform(0.14, 0.4) / math.sqrt(wanted)
        clearance = cv2.pointPolygonTest(contour, (float(c[0]), float(c[1])), True) - radius
        if clearance < 0.12 or any(np.linalg.norm(c - hc) < radius + hr + 0.12 for hc, hr in holes):
            continue
        holes.append((c, radius))
        prims.append(_Poly(_fourier_blob(rng, c, radius, roughness=0.15, r_floor=0.6), 0))
    if not holes:  # the outline's radius is ≥ 0.5 everywhere
        prims.append(_Poly(_ellipse((0, 0), 0.25, 0.25), 0))
    return prims


def _frame(rng, canvas):
    w, h, t = 1.0, rng.uniform(0.5, 1.0), rng.uniform(0.12, 0.3)
    prims = [
        _poly([-w, -h], [w, -h], [w, h], [-w, h]),
        _poly([-w + t, -h + t], [w - t, -h + t], [w - t, h - t], [-w + t, h - t], value=0),
    ]
    if rng.random() < 0.4:  # window bars
        b = t / 3
        prims += [
            _poly([-w, -b], [w, -b], [w, b], [-w, b]),
            _poly([-b, -h], [b, -h], [b, h], [-b, h]),
        ]
    return prims


def _spectacles(rng, canvas):
    """Two or three rings joined by bars."""
    r, gap, t = rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.45)
    centers = [
        np.array([i * (2 * r + gap), rng.normal(0, 0.05)]) for i in range(int(rng.integers(2, 4)))
    ]
    prims: list = [_Poly(_ellipse(c, r, r * rng.uniform(0.7, 1.0))) for c in centers]
    prims += [
        _Capsule(c0, c1, r * 0.15, r * 0.15)
        for c0, c1 in zip(centers[:-1], centers[1:], strict=True)
    ]
    prims += [_Poly(_ellipse(c, r * (1 - t), r * (1 - t) * 0.65), 0) for c in centers]
    return prims


def _holed_letter(rng, canvas):
    if rng.random() < 0.7:
        return _ttf_renderer(rng, str(rng.choice(list(_HOLED))), canvas, _TTF_FONTS[:8])
    return _hershey_renderer(rng, str(rng.choice(list(_HOLED_HERSHEY))))


# Glyphs -----------------------------------------------------------------------------------


def _ttf_glyph(rng, canvas):
    u = rng.random()
    if u < 0.12:
        return _ttf_renderer(rng, str(rng.choice(list(_PICTOS))), canvas, _PICTO_FONTS)
    pool = _SYMBOLS if u < 0.25 else _LETTERS
    n = 1 if rng.random() < 0.8 else int(rng.integers(2, 4))
    return _ttf_renderer(rng, "".join(rng.choice(list(pool), n)), canvas, _TTF_FONTS)


def _heldout_glyph(rng, canvas):
    n = 1 if rng.random() < 0.8 else int(rng.integers(2, 4))
    return _ttf_renderer(rng, "".join(rng.choice(list(_HELDOUT_LETTERS), n)), canvas, _HELDOUT_FONTS)


def _hershey_glyph(rng, canvas):
    n = 1 if rng.random() < 0.75 else int(rng.integers(2, 4))
    return _hershey_renderer(rng, "".join(rng.choice(list(_HERSHEY_TEXT), n)))


# family -> {variant: (weight, builder)}; a builder returns vector primitives (a list), a
# raster field (> 0 inside) or a renderer `hint -> field`.
_VARIANTS: dict[str, dict[str, tuple[float, Callable]]] = {
    "blob": {"fourier": (0.55, _fourier_shape), "noise": (0.45, _noise_blob)},
    "polygon": {
        "convex": (0.3, _convex_polygon),
        "star": (0.35, _star_polygon),
        "rectilinear": (0.35, _rectilinear_polygon),
    },
    "stroke": {"stroke": (1.0, _strokes)},
    "tree": {
        "tree": (0.45, _tree),
        "radial": (0.3, _radial),
        "stick_figure": (0.25, _stick_figure),
    },
    "animal": {
        "quadruped": (0.35, _quadruped),
        "lizard": (0.15, _lizard),
        "insect": (0.15, _insect),
        "bird": (0.15, _bird),
        "fish": (0.2, _fish),
    },
    "glyph": {"ttf": (1.0, _ttf_glyph)},
    "hershey": {"hershey": (1.0, _hershey_glyph)},
    "holes": {
        "ring": (0.2, _ring),
        "blob": (0.25, _holed_blob),
        "frame": (0.15, _frame),
        "spectacles": (0.1, _spectacles),
        "letter": (0.3, _holed_letter),
    },
}


# Variants of each split: "train" drops the held-out ones, "heldout" keeps only them.
_HELDOUT_VARIANTS: dict[str, dict[str, tuple[float, Callable]]] = {
    "animal": {"bird": (1.0, _bird)},
    "glyph": {"cm_ttf": (1.0, _heldout_glyph)},
}
_TRAIN_VARIANTS = {
    family: {k: v for k, v in table.items() if k not in _HELDOUT_VARIANTS.get(family, {})}
    for family, table in _VARIANTS.items()
}
_SPLIT_VARIANTS = {"all": _VARIANTS, "train": _TRAIN_VARIANTS, "heldout": _HELDOUT_VARIANTS}


# ------------------------------------------------------------------------------- fonts


@functools.lru_cache(maxsize=1)
def _font_dir() -> Path:
    # Found without importing matplotlib (slow): its data folder ships the fonts.
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "matplotlib is not installed; its bundled DejaVu fonts draw the glyph shapes"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"


@functools.lru_cache(maxsize=64)
def _font(name: str, size: int):
    from PIL import ImageFont

    path = _font_dir() / name
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as err:
        raise DataError(f"cannot load font {path}: {err}") from err


def _ttf_renderer(rng, text: str, canvas: _Canvas, fonts) -> Callable[[float], np.ndarray]:
    """A raster renderer: draws `text` at roughly `hint` times a size that fills the image."""
    from PIL import Image, ImageDraw

    name = str(rng.choice(list(fonts)))
    embolden = rng.uniform(0, 0.05) if "Bold" not in name and rng.random() < 0.5 else 0.0
    base = 0.9 * min(canvas.height, canvas.width) / max(1, len(text)) ** 0.7

    def render(hint: float) -> np.ndarray:
        size = int(np.clip(base * hint, 12, 800))
        font = _font(name, size)
        stroke = int(round(embolden * size))
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        pad = 4
        image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
        ImageDraw.Draw(image).text(
            (pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
        )
        return np.asarray(image, np.float32) / 255.0 - 0.5

    return render


def _hershey_renderer(rng, text: str) -> Callable[[float], np.ndarray]:
    face = int(rng.choice(_HERSHEY_FACES))
    if rng.random() < 0.25:
        face |= cv2.FONT_ITALIC
    thickness_frac = rng.uniform(0.025, 0.07)  # of the text height

    def render(hint: float) -> np.ndarray:
        scale = 4.0 * hint
        (w, h), base = cv2.getTextSize(text, face, scale, 1)
        thick = max(2, int(round(thickness_frac * 2.2 * (h + base))))
        (w, h), base = cv2.getTextSize(text, face, scale, thick)
        pad = thick + 4
        image = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
        cv2.putText(image, text, (pad, pad + h), face, scale, 255, thick, cv2.LINE_AA)
        return image.astype(np.float32) / 255.0 - 0.5

    return render


# --------------------------------------------------------------------------- placement


def _fit(pose: _Pose, canvas: _Canvas, pts: np.ndarray, radii: np.ndarray, pad: float):
    """Scale s and offset t so that s * L @ p + t fits the free box (pose.fill of it)."""
    lin = pose.linear()
    q = pts @ lin.T
    lo = (q - radii[:, None]).min(axis=0)
    hi = (q + radii[:, None]).max(axis=0)
    ext = np.maximum(hi - lo, 1e-6)
    border = canvas.margin + pad
    free = np.array([canvas.width - 1 - 2 * border, canvas.height - 1 - 2 * border])
    s = pose.fill * float(np.min(free / ext))
    slack = free - s * ext
    t = border + np.array([pose.ux, pose.uy]) * slack - s * lo
    return lin, s, t


def _rasterize_vector(prims: list, pose: _Pose, canvas: _Canvas) -> np.ndarray:
    pts, radii = [], []
    for p in prims:
        if isinstance(p, _Poly):
            pts.append(p.points)
            radii.append(np.zeros(len(p.points)))
        else:
            pts.append(np.stack([p.p0, p.p1]))
            radii.append(np.array([p.r0, p.r1]))
    lin, s, t = _fit(pose, canvas, np.vstack(pts), np.concatenate(radii), canvas.r_min)
    image = np.zeros((canvas.height, canvas.width), np.uint8)
    to_px = lambda p: (np.asarray(p, float) @ lin.T) * s + t  # noqa: E731
    for p in prims:
        if isinstance(p, _Poly):
            poly = np.round(to_px(p.points) * _ONE).astype(np.int32)
            cv2.fillPoly(image, [poly], p.value, cv2.LINE_8, _SHIFT)
        else:
            c0, c1 = to_px(p.p0), to_px(p.p1)
            r0, r1 = max(p.r0 * s, canvas.r_min), max(p.r1 * s, canvas.r_min)
            n = int(np.clip(max(r0, r1), 8, 40))
            ring = np.vstack([_ellipse(c0, r0, r0, n=n), _ellipse(c1, r1, r1, n=n)])
            hull = cv2.convexHull(np.round(ring * _ONE).astype(np.int32))
            cv2.fillConvexPoly(image, hull, p.value, cv2.LINE_8, _SHIFT)
    return image


def _rasterize_field(render, pose: _Pose, canvas: _Canvas) -> np.ndarray:
    """Warps a raster field (> 0 inside) into place; re-renders near the final scale."""
    hint, field = 1.0, None
    for _ in range(2):
        field = render(hint) if callable(render) else render
        inside = (field > 0).astype(np.uint8)
        contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return np.zeros((canvas.height, canvas.width), np.uint8)
        pts = np.vstack([c[:, 0] for c in contours]).astype(float)
        lin, s, t = _fit(pose, canvas, pts, np.full(len(pts), 1.0), 1.0)
        if not callable(render) or 0.6 < s < 1.6:
            break
        hint *= s * 1.25  # render a bit larger than needed: downsampling keeps edges clean
    matrix = np.hstack([lin * s, t[:, None]]).astype(np.float32)
    warped = cv2.warpAffine(
        field,
        matrix,
        (canvas.width, canvas.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=-1.0,
    )
    return (warped > 0).astype(np.uint8)


def _canvas(size: tuple[int, int]) -> _Canvas:
    h, w = int(size[0]), int(size[1])
    if h < 32 or w < 32:
        # ConfigError is a ValueError the CLI reports as a one-line message.
        raise ConfigError(f"image size must be at least 32 x 32 to hold a shape; got {size}")
    # Independent of the noise level, so that a sample's target is too.
    margin = max(3.0, 0.03 * min(h, w))
    return _Canvas(h, w, margin, r_min=max(1.6, 0.011 * min(h, w)))


# ------------------------------------------------------------------------------ public


def family_of(seed: int, index: int, split: str = "all") -> str:
    """The family of sample `index` of the set made with `seed`.

    Indices come in blocks of as many indices as the split has families (`FAMILIES`, or
    `HELDOUT_FAMILIES` for ``split="heldout"``); each block is a random permutation of them,
    so any run of ``2 * len(families) - 1`` consecutive indices holds every family.

    Args:
        seed: dataset seed.
        index: sample index (≥ 0).
        split: `all`, `train` or `heldout` (see `make_shape`).

    Returns:
        One of `FAMILIES`.

    Example:
        >>> sorted(family_of(0, i) for i in range(8)) == sorted(FAMILIES)
        True
    """
    families = HELDOUT_FAMILIES if _check_split(split) == "heldout" else FAMILIES
    block, slot = divmod(int(index), len(families))
    order = np.random.default_rng([int(seed), block, _FAMILY_STREAM]).permutation(len(families))
    return families[int(order[slot])]


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def _check_noise_style(noise_style: str) -> str:
    if noise_style not in NOISE_STYLES:
        raise ConfigError(f"unknown noise style {noise_style!r}; expected one of {', '.join(NOISE_STYLES)}")
    return noise_style


def make_shape(
    rng: np.random.Generator,
    size: tuple[int, int],
    family: str,
    margin: float | None = None,
    split: str = "all",
) -> np.ndarray:
    """Draws one clean binary shape of a family, randomly scaled, rotated and placed.

    Args:
        rng: random generator (the only source of randomness).
        size: (height, width) of the image, each ≥ 32.
        family: one of `FAMILIES` (`HELDOUT_FAMILIES` for the held-out split).
        margin: free border in pixels around the shape (default: 3% of the smaller side,
            at least 3 px).
        split: `all` (every variant), `train` (without the held-out variants: birds; glyphs
            only in the training fonts, as always) or `heldout` (only birds and glyphs in
            Computer Modern fonts, which `train` never draws).

    Returns:
        uint8 array (H, W) of 0/1, a shape with a skeleton of at least a few pixels.

    Raises:
        ConfigError: (a ValueError) unknown family or too small a size.

    Example:
        >>> shape = make_shape(np.random.default_rng(1), (96, 96), "animal")
        >>> shape.shape, int(shape[0].sum() + shape[-1].sum())
        ((96, 96), 0)
    """
    variants = _SPLIT_VARIANTS[_check_split(split)]
    if family not in variants:
        raise ConfigError(f"unknown shape family {family!r} in split {split!r}; expected one of "
                          f"{tuple(variants)}")
    canvas = _canvas(size)
    if margin is not None:
        canvas = _Canvas(canvas.height, canvas.width, float(margin), canvas.r_min)
    shape = np.zeros((canvas.height, canvas.width), np.uint8)
    min_area = 0.01 * canvas.height * canvas.width
    for _ in range(8):  # rare degenerate draws (a dot, a sliver) are redrawn
        pose = _draw_pose(rng)
        made = _pick(rng, variants[family])(rng, canvas)
        if isinstance(made, list):
            shape = _rasterize_vector(made, pose, canvas)
        else:
            shape = _rasterize_field(made, pose, canvas)
        # Parts that nearly touch (crossing limbs, a font's tight counters after warping) can
        # enclose pinholes or 1-px slits: artefacts whose skeleton loops no one would draw.
        # Trees and animals get no loops from limbs that merely cross.
        hole_frac = 0.05 if family in ("tree", "animal") else 0.02
        shape = _fill_small_holes(shape, max_area=max(4.0, (hole_frac * min(size)) ** 2))
        if shape.sum() >= min_area:
            break
    return shape


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fills background components (4-connected) smaller than `max_area` px off the border."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    if n <= 2:
        return mask
    h, w = mask.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    inner = (
        (x > 0)
        & (y > 0)
        & (x + stats[:, cv2.CC_STAT_WIDTH] < w)
        & (y + stats[:, cv2.CC_STAT_HEIGHT] < h)
    )
    small = inner & (stats[:, cv2.CC_STAT_AREA] < max_area)
    small[0] = False  # label 0 is the shape itself
    if not small.any():
        return mask
    return np.where(small[labels], 1, mask).astype(np.uint8)


def add_boundary_noise(
    rng: np.random.Generator,
    shape: np.ndarray,
    amplitude_px: float,
    *,
    skeleton: np.ndarray | None = None,
    style: str = "field",
) -> np.ndarray:
    """Adds bumps and dents of up to `amplitude_px` pixels along a shape's boundary.

    The boundary moves along a random displacement field: with `style` ``field`` a smooth
    field over the whole boundary (every boundary pixel may move), with ``bumps`` a few
    separate Gaussian bumps and dents (about one per 30 px of boundary, each 1-3 amplitudes
    wide) while the rest of the boundary stays exactly where it was. Dents are capped where the
    shape is thin (the local radius read off the skeleton and distance transform) and bumps
    where the background is narrow, so that the skeleton of each, thickened by its 4-neighbours,
    survives: a dent leaves a stroke at least 2-3 px wide, holes neither close nor open, parts
    never merge or split. The result is also checked; if its number of components or holes
    changed anyway, the noise is halved (and in the end dropped).

    Args:
        rng: random generator.
        shape: 2-D array, nonzero = shape. Bumps never reach the image's outermost pixels.
        amplitude_px: largest displacement in pixels; 0 returns the shape unchanged.
        skeleton: `skimage.morphology.skeletonize(shape)` if already computed (saves time).
        style: ``field`` or ``bumps`` (see above).

    Returns:
        uint8 array of 0/1, same shape.

    Raises:
        ValueError: if `shape` is not 2-D or `style` is unknown.

    Example:
        >>> shape = np.zeros((64, 64), np.uint8)
        >>> shape[16:48, 12:52] = 1
        >>> noisy = add_boundary_noise(np.random.default_rng(0), shape, 2.0)
        >>> bool((noisy != shape).any()), bool(noisy[26:38, 22:42].all())
        (True, True)
    """
    mask = np.asarray(shape)
    if mask.ndim != 2:
        raise ValueError(f"shape must be a 2-D array (H, W); got shape {mask.shape}")
    if style not in ("field", "bumps"):
        raise ValueError(f"unknown noise style {style!r}; expected 'field' or 'bumps'")
    mask = (mask != 0).astype(np.uint8)
    amp = float(amplitude_px)
    if amp <= 0 or not mask.any():
        return mask
    h, w = mask.shape
    # Pad so the background's skeleton and distances ignore the image border.
    pad = int(math.ceil(amp)) + 4
    m = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if skeleton is None:
        fg_skel = skeletonize(m.astype(bool))
    else:
        fg_skel = np.pad(np.asarray(skeleton) != 0, pad)
    # Only background narrower than ~2 * (amp + 3) can be closed by bumps: skeletonize the band
    # near the shape, whose outer wall lies far enough away not to limit bumps.
    band = (d_out > 0) & (d_out <= 2 * amp + 6)
    bg_skel = skeletonize(band)

    reach = int(math.ceil(amp + 1.6))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    big = np.float32(1e6)
    r_fg = cv2.erode(np.where(fg_skel, d_in, big).astype(np.float32), kernel)
    r_bg = cv2.erode(np.where(bg_skel, d_out, big).astype(np.float32), kernel)
    # Keeping the skeleton pixels' 4-neighbours needs the displacement < R - 1.5.
    dent_max = np.clip(r_fg - 1.6, 0, amp)
    bump_max = np.clip(r_bg - 1.6, 0, amp)
    # Bumps stay inside the image and off its outermost pixels.
    frame = pad + 1
    bump_max[:frame], bump_max[-frame:], bump_max[:, :frame], bump_max[:, -frame:] = 0, 0, 0, 0

    if style == "field":
        field = _smooth_field(rng, m.shape, amp)
    else:
        field = _bump_field(rng, (d_in > 0) & (d_in <= 1.0), amp)
    sdf = np.where(m > 0, d_in - 0.5, 0.5 - d_out)
    base_fg = cv2.connectedComponents(m, connectivity=8)[0]
    base_bg = cv2.connectedComponents(1 - m, connectivity=4)[0]
    bg_skel[0, :] = True  # the outer background reaches the (padded) border
    for scale in (1.0, 0.5, 0.25):
        disp = np.clip(field * scale, -dent_max, bump_max)
        noisy = (sdf + disp > 0).astype(np.uint8)
        # The skeletons survive, so every real part and hole keeps a skeleton pixel; what has
        # none is a speck a bump dropped or a pocket whose mouth two bumps closed.
        noisy = _keep_components(noisy, fg_skel, connectivity=8)
        noisy = 1 - _keep_components(1 - noisy, bg_skel, connectivity=4)
        if (
            cv2.connectedComponents(noisy, connectivity=8)[0] == base_fg
            and cv2.connectedComponents(1 - noisy, connectivity=4)[0] == base_bg
        ):
            return np.ascontiguousarray(noisy[pad : pad + h, pad : pad + w])
    return mask


def _keep_components(mask: np.ndarray, seeds: np.ndarray, connectivity: int) -> np.ndarray:
    """The components of `mask` that hold at least one `seeds` pixel."""
    n, labels = cv2.connectedComponents(mask, connectivity=connectivity)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[seeds & (mask > 0)])] = True
    keep[0] = False
    return keep[labels].astype(np.uint8)


def _bump_field(rng: np.random.Generator, boundary: np.ndarray, amp: float) -> np.ndarray:
    """Separate Gaussian bumps (+) and dents (-) centred on random boundary pixels.

    About one per 30 boundary pixels (at least one), height uniform in [amp / 2, amp], width
    (sigma) uniform in [max(1.2, 0.8 amp), max(2.5, 2 amp)] so the displacement's gradient
    stays under 1 (see `_smooth_field`); zero away from them.
    """
    ys, xs = np.nonzero(boundary)
    field = np.zeros(boundary.shape, np.float32)
    if ys.size == 0:
        return field
    count = max(1, int(rng.poisson(ys.size / 30.0)))
    picks = rng.integers(0, ys.size, count)
    for y, x in zip(ys[picks], xs[picks]):
        sigma = rng.uniform(max(1.2, 0.8 * amp), max(2.5, 2.0 * amp))
        height = rng.uniform(0.5, 1.0) * amp * (1 if rng.random() < 0.5 else -1)
        r = int(math.ceil(3 * sigma))
        y0, y1 = max(y - r, 0), min(y + r + 1, field.shape[0])
        x0, x1 = max(x - r, 0), min(x + r + 1, field.shape[1])
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - y) / sigma) ** 2)
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - x) / sigma) ** 2)
        patch = field[y0:y1, x0:x1]
        bump = np.float32(height) * np.outer(gy, gx).astype(np.float32)
        # Overlapping bumps of one sign do not add up past `amp`: keep the larger one.
        field[y0:y1, x0:x1] = np.where(np.abs(bump) > np.abs(patch), bump, patch)
    return field


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], amp: float) -> np.ndarray:
    """Random displacement in [-amp, amp] px: bumps ~5-20 px long plus a sub-pixel ripple.

    The bumps are at least 2.5 * amp long so that the displacement changes more slowly than
    the distance to the boundary (gradient < 1): otherwise a dent could open a hole inside
    the shape or a bump drop a speck beside it.
    """
    h, w = shape

    def layer(corr: float) -> np.ndarray:
        gh, gw = max(2, int(h / corr)), max(2, int(w / corr))
        small = rng.standard_normal((gh, gw)).astype(np.float32)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        return out / (out.std() + 1e-6)

    coarse = layer(rng.uniform(max(5.0, 2.5 * amp), max(14.0, 4.0 * amp)))
    ripple = layer(2.5)
    disp = 0.8 * amp * coarse + min(0.35, 0.2 * amp) * ripple
    return np.clip(disp, -amp, amp)


def make_shape_sample(
    seed: int,
    index: int,
    size: tuple[int, int],
    noise: float = 2.0,
    *,
    family: str | None = None,
    split: str = "all",
    noise_style: str = "field",
    with_clean: bool = False,
    clean_fraction: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """One training sample: a (possibly noisy) binary shape and its ground-truth skeleton.

    The clean shape is drawn from ``np.random.default_rng([seed, index, 0])``, the boundary
    noise from ``[seed, index, 1]``; the skeleton is `skeleton_target` of the clean shape.
    The result depends only on the arguments, and the target not even on `noise`.

    Args:
        seed: dataset seed (≥ 0).
        index: sample index (≥ 0).
        size: (height, width), each ≥ 32.
        noise: boundary-noise amplitude in pixels; each sample uses a random amplitude in
            [noise / 2, noise]. 0 gives the clean shape.
        family: force a family (default: `family_of(seed, index, split)`).
        split: `all`, `train` or `heldout` shape variants (see `make_shape`).
        noise_style: `field`, `bumps` (see `add_boundary_noise`) or `mixed` (each sample
            one of the two, at random).
        with_clean: also return the clean shape (the target of a shape-denoising model).
        clean_fraction: probability that the sample stays noise-free even with `noise` > 0
            (drawn from the noise stream: fixed per sample). A model that learns the clean
            shape must see clean inputs to learn to leave them alone.

    Returns:
        (image, skeleton) or, with `with_clean`, (image, skeleton, clean): uint8 arrays
        (H, W) of 0/1.

    Raises:
        ConfigError: (a ValueError) a side of `size` under 32, an unknown `family`, split or
            noise style.

    Example:
        >>> a = make_shape_sample(3, 10, (64, 64))
        >>> b = make_shape_sample(3, 10, (64, 64))
        >>> all(np.array_equal(x, y) for x, y in zip(a, b))
        True
    """
    _check_noise_style(noise_style)
    family = family_of(seed, index, split) if family is None else family
    rng = np.random.default_rng([int(seed), int(index), _SHAPE_STREAM])
    clean = make_shape(rng, size, family, split=split)
    target = skeleton_target(clean)
    if not 0.0 <= clean_fraction <= 1.0:
        raise ConfigError(f"clean_fraction must be in [0, 1]; got {clean_fraction}")
    noise_rng = np.random.default_rng([int(seed), int(index), _NOISE_STREAM])
    if clean_fraction and noise_rng.random() < clean_fraction:
        noise = 0.0
    if noise > 0:
        amplitude = float(noise) * noise_rng.uniform(0.5, 1.0)
        style = noise_style
        if style == "mixed":
            style = "field" if noise_rng.random() < 0.5 else "bumps"
        image = add_boundary_noise(noise_rng, clean, amplitude, style=style)
    else:
        image = clean
    return (image, target, clean) if with_clean else (image, target)


_ID_PNG = re.compile(r"^\d{6}\.png$")


def _write_png(path: Path, image01: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", (image01 * 255).astype(np.uint8))
    if not ok:
        raise DataError(f"could not encode {path} as PNG")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as err:
        raise DataError(f"could not write {path}: {err}") from err


def _write_one(args) -> int:
    out_dir, index, size, seed, noise, split, noise_style, with_clean = args
    image, skeleton, clean = make_shape_sample(seed, index, size, noise, split=split, noise_style=noise_style,
                                               with_clean=True)
    name = f"{index:06d}.png"
    _write_png(Path(out_dir) / "shapes" / name, image)
    _write_png(Path(out_dir) / "skeletons" / name, skeleton)
    if with_clean:
        _write_png(Path(out_dir) / "clean" / name, clean)
    return index


DATASET_INFO = "dataset.json"


def run_writers(write: Callable, jobs: list, workers: int = 1, progress: bool = True, label: str = "") -> int:
    """Runs `write(job)` for every job, in `workers` processes when > 1, with a progress bar;
    returns how many finished. Shared by the dataset writers of every task.

    Processes are started with "spawn" (forking a process that may hold TensorFlow's threads
    can deadlock); on an error or Ctrl-C the queued jobs are cancelled.
    """
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(write, jobs, chunksize=max(1, min(64, len(jobs) // (4 * workers))))
    else:
        pool, results = None, map(write, jobs)
    written = 0
    try:
        if progress:
            import click

            with click.progressbar(results, length=len(jobs), label=label) as bar:
                for _ in bar:
                    written += 1
        else:
            for _ in results:
                written += 1
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return written


def write_shapes_dataset(
    out_dir: str | os.PathLike,
    count: int,
    size: tuple[int, int],
    seed: int = 0,
    noise: float = 2.0,
    progress: bool = True,
    *,
    overwrite: bool = False,
    workers: int = 1,
    split: str = "all",
    noise_style: str = "field",
    with_clean: bool = False,
) -> int:
    """Writes a binary-shape dataset folder (DESIGN.md §3 layout).

    ``out_dir/shapes/<id>.png`` holds the input (white 255 shape on black, 8-bit grey) and
    ``out_dir/skeletons/<id>.png`` the ground truth (white 255 1-px skeleton), with
    ``<id> = f"{index:06d}"`` for index 0 … count - 1, each from
    ``make_shape_sample(seed, index, size, noise)``.

    Args:
        out_dir: dataset folder (created if missing).
        count: number of samples.
        size: (height, width) of every image.
        seed: dataset seed.
        noise: boundary-noise amplitude of the inputs, in pixels.
        progress: show a progress bar on the terminal.
        overwrite: allow writing into a folder whose ``shapes/`` or ``skeletons/`` already
            holds files. The old ``<6 digits>.png`` files of both are deleted first, so the
            folder holds exactly the new set; other files are left alone.
        workers: processes generating samples in parallel (1 = in this process).
        split: shape variants, `all`, `train` or `heldout` (`make_shape`).
        noise_style: `field`, `bumps` or `mixed` (`make_shape_sample`).
        with_clean: also write ``out_dir/clean/<id>.png``, the noise-free input shapes.

    Returns:
        The number of samples written.

    Raises:
        DataError: the folder already holds a dataset (and not `overwrite`), or a file cannot
            be written.
        ConfigError: a side of `size` under 32.

    Example:
        >>> import tempfile
        >>> write_shapes_dataset(tempfile.mkdtemp(), 2, (64, 64), progress=False)
        2
    """
    if count < 0:
        raise ValueError(f"count must be ≥ 0; got {count}")
    _canvas(size)  # validates size early
    _check_split(split)
    _check_noise_style(noise_style)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    subdirs = [out / "shapes", out / "skeletons"] + ([out / "clean"] if with_clean else [])
    existing = [p for d in subdirs if d.is_dir() for p in d.iterdir()]
    if existing and not overwrite:
        raise DataError(
            f"{out} already holds a dataset ({len(existing)} files in shapes/ or skeletons/); "
            "refusing to overwrite it: choose an empty folder or pass overwrite=True "
            "(CLI: --overwrite)"
        )
    try:
        for d in subdirs:
            d.mkdir(parents=True, exist_ok=True)
        for p in existing:
            if _ID_PNG.match(p.name) and p.is_file():
                p.unlink()
    except OSError as err:
        raise DataError(f"cannot prepare dataset folder {out}: {err}") from err

    jobs = [
        (str(out), i, (int(size[0]), int(size[1])), int(seed), float(noise), split, noise_style, bool(with_clean))
        for i in range(count)
    ]
    written = run_writers(_write_one, jobs, workers, progress, f"Writing {out}")
    # Provenance: evaluation reports and model cards quote it, so a score names its data.
    (out / DATASET_INFO).write_text(json.dumps(dict(
        task="shapes", generator="keras_skel.data.synthetic", count=count, size=[int(size[0]), int(size[1])],
        seed=int(seed), noise=float(noise), noise_style=noise_style, split=split,
        command=f"keras-skel data synth --task shapes --count {count} --size {size[0]}x{size[1]} "
                f"--seed {seed} --noise {noise:g}"
                + (f" --noise-style {noise_style}" if noise_style != "field" else "")
                + (f" --split {split}" if split != "all" else "") + (" --clean" if with_clean else ""),
    ), indent=2))
    return written


def shapes_source(
    size: tuple[int, int],
    seed: int = 0,
    noise: float = 2.0,
    num_parallel_calls: int | None = None,
    *,
    split: str = "all",
    noise_style: str = "field",
    target: str = "skeleton",
    clean_fraction: float = 0.0,
):
    """An endless `tf.data` stream of fresh synthetic samples, made on the fly.

    Element ``i`` is `make_shape_sample(seed, i, size, noise, split=split,
    noise_style=noise_style)`: the stream is reproducible, and a `model.fit` that keeps
    drawing from it sees new samples every epoch.

    Args:
        size: (height, width) of every image.
        seed: stream seed (use another seed for a validation stream).
        noise: boundary-noise amplitude of the inputs, in pixels.
        num_parallel_calls: parallel map calls (default ``tf.data.AUTOTUNE``). The output
            order stays deterministic either way.
        split: shape variants (`make_shape`).
        noise_style: `field`, `bumps` or `mixed` (`make_shape_sample`).
        target: `skeleton` (the ground-truth skeleton) or `shape` (the clean shape, for
            models that denoise the shape and skeletonize it with the ground-truth rule).
        clean_fraction: share of noise-free samples (`make_shape_sample`).

    Returns:
        `tf.data.Dataset` of (image, target), both float32 ``[H, W, 1]`` with values 0/1
        and static shapes.

    Example:
        >>> ds = shapes_source((64, 64)).batch(4)  # doctest: +SKIP
        >>> image, skeleton = next(iter(ds))  # float32 [4, 64, 64, 1] each  # doctest: +SKIP
    """
    import tensorflow as tf  # lazy: this module must import without TensorFlow

    h, w = int(size[0]), int(size[1])
    _canvas((h, w))
    _check_split(split)
    _check_noise_style(noise_style)
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    seed, noise = int(seed), float(noise)

    def make(index):
        image, skeleton, clean = make_shape_sample(seed, int(index), (h, w), noise, split=split,
                                                   noise_style=noise_style, with_clean=True,
                                                   clean_fraction=clean_fraction)
        out = skeleton if target == "skeleton" else clean
        return image.astype(np.float32)[..., None], out.astype(np.float32)[..., None]

    def to_tensors(index):
        image, out = tf.numpy_function(make, [index], [tf.float32, tf.float32], stateful=False)
        image.set_shape((h, w, 1))
        out.set_shape((h, w, 1))
        return image, out

    return tf.data.Dataset.counter().map(
        to_tensors, num_parallel_calls=parallel, deterministic=True
    )
