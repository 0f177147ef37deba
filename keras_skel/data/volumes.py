"""Synthetic 3-D objects for SkeletonNet: primitives, meso-skeletons, volumes and renderings.

An object is a union of primitives in a canonical, object-centric frame: the unit cube
[-0.5, 0.5]³ with y up (the object fits in [-0.45, 0.45]³), x to the right, z towards the
default camera. Primitives:

- `Rod`: a cylinder with flat caps (legs, poles, arms). Its meso-skeleton is its axis, shortened
  by the radius at each end: a **curve**.
- `Slab`: an oriented box. By its sorted half-sizes h1 ≤ h2 ≤ h3: a plate (h2 ≥ 2·h1, seats,
  table tops, backs) has the mid-plane rectangle shrunk by h1 as its **sheet**; a bar (h2 < 2·h1
  but h3 ≥ 2·h2) has its long axis shrunk by h2 as a **curve**; a chunky box gets the sheet of
  its thinnest mid-plane.
- `Disk`: a short, wide cylinder (lamp and pedestal bases): its mid-plane disc shrunk by the
  half-height is a **sheet**.
- `Torus`: its core circle is a **curve** (lamp shades, rings).

Families `chair` (seat, four legs, a back, sometimes arms), `table` (top with four legs, or a
pedestal on a disc or a cross) and `lamp` (a base disc, a straight or bent pole, a ring shade
or an arm with a torus); each draws its proportions at random.

Per object (`make_volume_sample`): RGB renderings from `views` viewpoints (sphere tracing of the
union's signed distance, Lambert shading; no display needed), voxel occupancy, surface point
samples, the meso-skeleton as points labelled curve (0) / sheet (1), and the skeletal volume V*
(the skeleton points quantized to the grid, filled and dilated by one voxel, as SkeletonNet
prepares it). `pca_labels` labels any point set curve / sheet from the PCA of each point's
neighbourhood, the paper's rule for skeletons that do not come from primitives.

Example:
    >>> sample = make_volume_sample(0, 1, resolution=16, image_size=32, views=2)
    >>> sample.images.shape, sample.occupancy.shape, sorted(set(sample.skeleton_labels.tolist()))
    ((2, 32, 32, 3), (16, 16, 16), [0, 1])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from keras_skel.data import synthetic
from keras_skel.data.thin import _atomic_write, _png_writer
from keras_skel.errors import ConfigError, DataError

__all__ = ["CURVE", "SHEET", "VOLUME_FAMILIES", "Rod", "Slab", "Disk", "Torus", "VolumeSample", "make_object",
           "make_volume_sample", "render", "voxelize", "skeletal_volume", "ground_truth_volume", "pca_labels",
           "union_sdf",
           "family_of_volume", "write_volumes_dataset", "load_volumes_folder", "project"]

CURVE, SHEET = 0, 1
VOLUME_FAMILIES = ("chair", "table", "lamp")
_STREAM = 11


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _frame(axis) -> np.ndarray:
    """An orthonormal basis (rows) whose last row is `axis`."""
    w = _unit(axis)
    helper = np.array([1.0, 0, 0]) if abs(w[0]) < 0.9 else np.array([0, 1.0, 0])
    u = _unit(np.cross(helper, w))
    return np.stack([u, np.cross(w, u), w])


def _line(a, b, step: float) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = max(2, int(math.ceil(np.linalg.norm(b - a) / step)) + 1)
    return a + np.linspace(0, 1, n)[:, None] * (b - a)


@dataclass(frozen=True)
class Rod:
    """Cylinder from `a` to `b` with `radius`, flat caps."""

    a: tuple
    b: tuple
    radius: float

    def sdf(self, p: np.ndarray) -> np.ndarray:
        a, b = np.asarray(self.a), np.asarray(self.b)
        axis = b - a
        length = np.linalg.norm(axis)
        t = (p - a) @ (axis / length)
        radial = np.linalg.norm(p - a - t[:, None] * (axis / length), axis=1)
        d = np.stack([radial - self.radius, np.abs(t - length / 2) - length / 2], axis=1)
        outside = np.linalg.norm(np.maximum(d, 0), axis=1)
        return outside + np.minimum(d.max(axis=1), 0)

    def skeleton(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.asarray(self.a, float), np.asarray(self.b, float)
        d = _unit(b - a)
        length = np.linalg.norm(b - a)
        shrink = min(self.radius, 0.45 * length)
        points = _line(a + shrink * d, b - shrink * d, step)
        return points, np.full(len(points), CURVE)

    def surface(self, rng, n: int) -> np.ndarray:
        a, b = np.asarray(self.a, float), np.asarray(self.b, float)
        basis = _frame(b - a)
        length = np.linalg.norm(b - a)
        side, cap = 2 * math.pi * self.radius * length, math.pi * self.radius ** 2
        k_side = int(round(n * side / (side + 2 * cap)))
        angle = rng.uniform(0, 2 * math.pi, n)
        t = np.where(np.arange(n) < k_side, rng.uniform(0, 1, n), rng.integers(0, 2, n).astype(float))
        r = np.where(np.arange(n) < k_side, self.radius, self.radius * np.sqrt(rng.uniform(0, 1, n)))
        return a + t[:, None] * (b - a) + r[:, None] * (np.cos(angle)[:, None] * basis[0] +
                                                         np.sin(angle)[:, None] * basis[1])

    def area(self) -> float:
        length = float(np.linalg.norm(np.subtract(self.b, self.a)))
        return 2 * math.pi * self.radius * (length + self.radius)


@dataclass(frozen=True)
class Slab:
    """Box with `centre`, `half` sizes along the rows of `rotation` (identity: x, y, z)."""

    centre: tuple
    half: tuple
    rotation: tuple = ((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0))

    def _local(self, p):
        return (p - np.asarray(self.centre)) @ np.asarray(self.rotation).T

    def sdf(self, p: np.ndarray) -> np.ndarray:
        q = np.abs(self._local(p)) - np.asarray(self.half)
        return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)

    def skeleton(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        half = np.asarray(self.half, float)
        order = np.argsort(half)
        h1, h2, h3 = half[order]
        rotation, centre = np.asarray(self.rotation, float), np.asarray(self.centre, float)
        if h2 < 2 * h1 and h3 >= 2 * h2:  # a bar: its long axis
            axis = rotation[order[2]]
            points = _line(centre - (h3 - h2) * axis, centre + (h3 - h2) * axis, step)
            return points, np.full(len(points), CURVE)
        # A plate (or a chunky box): the mid-plane of the thinnest dimension.
        u, v = rotation[order[1]], rotation[order[2]]
        su, sv = max(h2 - h1, 0.0), max(h3 - h1, 0.0)
        gu = np.linspace(-su, su, max(2, int(math.ceil(2 * su / step)) + 1))
        gv = np.linspace(-sv, sv, max(2, int(math.ceil(2 * sv / step)) + 1))
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        points = centre + uu.reshape(-1, 1) * u + vv.reshape(-1, 1) * v
        return points, np.full(len(points), SHEET)

    def surface(self, rng, n: int) -> np.ndarray:
        half = np.asarray(self.half, float)
        faces = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]])
        axis = rng.choice(3, size=n, p=faces / faces.sum())
        local = rng.uniform(-1, 1, (n, 3)) * half
        local[np.arange(n), axis] = np.where(rng.random(n) < 0.5, -1, 1) * half[axis]
        return local @ np.asarray(self.rotation) + np.asarray(self.centre)

    def area(self) -> float:
        h = np.asarray(self.half, float)
        return 8 * float(h[0] * h[1] + h[1] * h[2] + h[0] * h[2])


@dataclass(frozen=True)
class Disk:
    """Short cylinder: `centre`, `axis` (unit), `radius`, `half_height`."""

    centre: tuple
    axis: tuple
    radius: float
    half_height: float

    def sdf(self, p: np.ndarray) -> np.ndarray:
        c, w = np.asarray(self.centre), _unit(self.axis)
        return Rod(tuple(c - self.half_height * w), tuple(c + self.half_height * w), self.radius).sdf(p)

    def skeleton(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        basis = _frame(self.axis)
        radius = max(self.radius - self.half_height, step)
        g = np.arange(-radius, radius + 1e-9, step)
        uu, vv = np.meshgrid(g, g, indexing="ij")
        keep = uu ** 2 + vv ** 2 <= radius ** 2
        points = np.asarray(self.centre) + uu[keep][:, None] * basis[0] + vv[keep][:, None] * basis[1]
        return points, np.full(len(points), SHEET)

    def surface(self, rng, n: int) -> np.ndarray:
        c, w = np.asarray(self.centre), _unit(self.axis)
        rod = Rod(tuple(c - self.half_height * w), tuple(c + self.half_height * w), self.radius)
        return rod.surface(rng, n)

    def area(self) -> float:
        return 2 * math.pi * self.radius * (2 * self.half_height + self.radius)


@dataclass(frozen=True)
class Torus:
    """Torus with `centre`, `axis` (unit normal of its plane), major `radius`, tube `tube`."""

    centre: tuple
    axis: tuple
    radius: float
    tube: float

    def sdf(self, p: np.ndarray) -> np.ndarray:
        local = (p - np.asarray(self.centre)) @ _frame(self.axis).T
        ring = np.linalg.norm(local[:, :2], axis=1) - self.radius
        return np.hypot(ring, local[:, 2]) - self.tube

    def _circle(self, radius, angles):
        basis = _frame(self.axis)
        return np.asarray(self.centre) + radius * (np.cos(angles)[:, None] * basis[0] +
                                                   np.sin(angles)[:, None] * basis[1])

    def skeleton(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        n = max(8, int(math.ceil(2 * math.pi * self.radius / step)))
        points = self._circle(self.radius, np.linspace(0, 2 * math.pi, n, endpoint=False))
        return points, np.full(len(points), CURVE)

    def surface(self, rng, n: int) -> np.ndarray:
        basis = _frame(self.axis)
        u, v = rng.uniform(0, 2 * math.pi, n), rng.uniform(0, 2 * math.pi, n)
        ring = self._circle(self.radius, u) - np.asarray(self.centre)
        outward = ring / np.linalg.norm(ring, axis=1, keepdims=True)
        return (np.asarray(self.centre) + ring + self.tube * (np.cos(v)[:, None] * outward +
                                                              np.sin(v)[:, None] * basis[2]))

    def area(self) -> float:
        return 4 * math.pi ** 2 * self.radius * self.tube


# ------------------------------------------------------------------------------- families


def _chair(rng) -> list:
    w, d = rng.uniform(0.28, 0.42), rng.uniform(0.26, 0.4)
    seat_y, t = rng.uniform(-0.1, 0.05), rng.uniform(0.018, 0.035)
    floor, top = -0.44, rng.uniform(0.3, 0.44)
    leg = rng.uniform(0.015, 0.03)
    parts: list = [Slab((0.0, seat_y, 0.0), (w / 2, t, d / 2))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - leg * 1.5), sz * (d / 2 - leg * 1.5)
            parts.append(Rod((x, floor, z), (x, seat_y - t, z), leg))
    parts.append(Slab((0.0, (seat_y + t + top) / 2, -d / 2 + t), (w / 2, (top - seat_y - t) / 2, t)))
    if rng.random() < 0.4:  # arms
        arm_y = seat_y + rng.uniform(0.12, 0.18)
        for sx in (-1, 1):
            x = sx * (w / 2 - leg)
            parts.append(Rod((x, arm_y, -d / 2 + t), (x, arm_y, d / 2 - leg), leg))
            parts.append(Rod((x, seat_y + t, d / 2 - leg * 1.5), (x, arm_y, d / 2 - leg * 1.5), leg))
    return parts


def _table(rng) -> list:
    w, d = rng.uniform(0.5, 0.85), rng.uniform(0.35, 0.6)
    top_y, t = rng.uniform(0.05, 0.25), rng.uniform(0.02, 0.04)
    floor = -0.44
    parts: list = [Slab((0.0, top_y, 0.0), (w / 2, t, d / 2))]
    if rng.random() < 0.6:
        leg = rng.uniform(0.018, 0.035)
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - 2 * leg), sz * (d / 2 - 2 * leg)
                parts.append(Rod((x, floor, z), (x, top_y - t, z), leg))
    else:  # a pedestal on a disc or a cross
        pole = rng.uniform(0.03, 0.05)
        parts.append(Rod((0.0, floor + 0.02, 0.0), (0.0, top_y - t, 0.0), pole))
        if rng.random() < 0.5:
            parts.append(Disk((0.0, floor + 0.02, 0.0), (0, 1.0, 0), rng.uniform(0.15, 0.22), 0.02))
        else:
            span = rng.uniform(0.15, 0.25)
            parts.append(Slab((0.0, floor + 0.02, 0.0), (span, 0.02, 0.025)))
            parts.append(Slab((0.0, floor + 0.02, 0.0), (0.025, 0.02, span)))
    return parts


def _lamp(rng) -> list:
    floor = -0.44
    base_r, base_h = rng.uniform(0.1, 0.18), rng.uniform(0.015, 0.03)
    pole = rng.uniform(0.012, 0.022)
    top = rng.uniform(0.15, 0.3)
    parts: list = [Disk((0.0, floor + base_h, 0.0), (0, 1.0, 0), base_r, base_h)]
    if rng.random() < 0.5:  # straight pole, ring shade around its top
        parts.append(Rod((0.0, floor + 2 * base_h, 0.0), (0.0, top, 0.0), pole))
        shade = rng.uniform(0.1, 0.18)
        parts.append(Torus((0.0, top, 0.0), (0, 1.0, 0), shade, rng.uniform(0.015, 0.03)))
        parts.append(Torus((0.0, top + rng.uniform(0.06, 0.12), 0.0), (0, 1.0, 0), shade * rng.uniform(0.5, 0.8),
                           rng.uniform(0.012, 0.025)))
        for angle in (0.0, 2 * math.pi / 3, 4 * math.pi / 3):
            parts.append(Rod((0.0, top, 0.0), (shade * math.cos(angle), top, shade * math.sin(angle)), pole * 0.6))
    else:  # a bent arm with a ring at its end
        elbow = (rng.uniform(-0.05, 0.05), top, 0.0)
        end = (rng.uniform(0.18, 0.3), top + rng.uniform(-0.05, 0.12), 0.0)
        parts.append(Rod((0.0, floor + 2 * base_h, 0.0), elbow, pole))
        parts.append(Rod(elbow, end, pole))
        parts.append(Torus(end, tuple(_unit((1.0, -1.0, 0.0))), rng.uniform(0.06, 0.1), rng.uniform(0.015, 0.025)))
    return parts


_FAMILY_BUILDERS = {"chair": _chair, "table": _table, "lamp": _lamp}


def make_object(rng: np.random.Generator, family: str) -> list:
    """The primitives of one object of `family` (`VOLUME_FAMILIES`)."""
    if family not in _FAMILY_BUILDERS:
        raise ConfigError(f"unknown object family {family!r}; expected one of {', '.join(VOLUME_FAMILIES)}")
    return _FAMILY_BUILDERS[family](rng)


def union_sdf(parts: list, p: np.ndarray) -> np.ndarray:
    """Signed distance of the union of `parts` at points `p` `[N, 3]` (negative inside)."""
    return np.min([part.sdf(p) for part in parts], axis=0)


# ------------------------------------------------------------------------------- volumes


def _grid_centres(resolution: int) -> np.ndarray:
    g = (np.arange(resolution) + 0.5) / resolution - 0.5
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)


def voxelize(parts: list, resolution: int) -> np.ndarray:
    """uint8 occupancy `[R, R, R]` (axes x, y, z): voxel centres inside the union."""
    return (union_sdf(parts, _grid_centres(resolution)) <= 0).reshape((resolution,) * 3).astype(np.uint8)


def skeletal_volume(points: np.ndarray, resolution: int, dilation: int = 1) -> np.ndarray:
    """SkeletonNet's V*: skeleton points quantized to the grid, enclosed cavities filled,
    dilated by `dilation` voxels (6-connected steps). uint8 `[R, R, R]`."""
    index = np.clip(np.floor((np.asarray(points) + 0.5) * resolution).astype(int), 0, resolution - 1)
    volume = np.zeros((resolution,) * 3, bool)
    volume[index[:, 0], index[:, 1], index[:, 2]] = True
    volume = ndimage.binary_fill_holes(volume)
    if dilation:
        volume = ndimage.binary_dilation(volume, ndimage.generate_binary_structure(3, 1), iterations=dilation)
    return volume.astype(np.uint8)


def ground_truth_volume(sample, resolution: int) -> np.ndarray:
    """V* of a loaded object (`load_volumes_folder` dict or `VolumeSample`) at `resolution`: the
    stored `skeletal_volume` when it has that size, else made from its skeleton points the
    same way (`skeletal_volume`). uint8 `[R, R, R]`."""
    get = sample.get if isinstance(sample, dict) else lambda key: getattr(sample, key)
    stored = get("skeletal_volume")
    if stored is not None and stored.shape == (int(resolution),) * 3:
        return stored.astype(np.uint8)
    return skeletal_volume(get("skeleton_points"), int(resolution))


def pca_labels(points: np.ndarray, k: int = 12, ratio: float = 0.15) -> np.ndarray:
    """Curve (0) / sheet (1) label of each point from the PCA of its `k` nearest neighbours: a
    sheet when the second eigenvalue is at least `ratio` times the first (the points spread in
    two directions), a curve otherwise."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, float)
    k = min(k, len(points))
    _, neighbours = cKDTree(points).query(points, k=k)
    local = points[neighbours] - points[neighbours].mean(axis=1, keepdims=True)
    eigen = np.linalg.eigvalsh(np.einsum("nki,nkj->nij", local, local))  # ascending
    return (eigen[:, 1] >= ratio * eigen[:, 2]).astype(np.uint8)


def _skeleton(parts: list, step: float) -> tuple[np.ndarray, np.ndarray]:
    pieces = [part.skeleton(step) for part in parts]
    return np.concatenate([p for p, _ in pieces]), np.concatenate([lab for _, lab in pieces]).astype(np.uint8)


def _surface(rng, parts: list, count: int) -> np.ndarray:
    areas = np.array([part.area() for part in parts])
    counts = rng.multinomial(count * 2, areas / areas.sum())
    points = np.concatenate([part.surface(rng, int(n)) for part, n in zip(parts, counts) if n])
    outer = points[union_sdf(parts, points) > -1e-4]  # drop samples buried inside other parts
    return outer[rng.permutation(len(outer))[:count]]


# ------------------------------------------------------------------------------- renderer


def _camera_rays(azimuth: float, elevation: float, size: int, distance: float = 2.2, fov: float = 30.0):
    eye = distance * np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                               math.cos(elevation) * math.cos(azimuth)])
    forward = _unit(-eye)
    right = _unit(np.cross(forward, [0, 1.0, 0]))
    up = np.cross(right, forward)
    half = math.tan(math.radians(fov) / 2)
    s = (np.arange(size) + 0.5) / size * 2 - 1
    xx, yy = np.meshgrid(s * half, -s * half)
    directions = forward + xx.reshape(-1, 1) * right + yy.reshape(-1, 1) * up
    return eye, directions / np.linalg.norm(directions, axis=1, keepdims=True)


def project(points: np.ndarray, azimuth: float, elevation: float, size: int) -> np.ndarray:
    """Pixel coordinates (column, row) of 3-D points in `render`'s camera, float `[N, 2]`."""
    distance, fov = 2.2, 30.0
    eye = distance * np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                               math.cos(elevation) * math.cos(azimuth)])
    forward = _unit(-eye)
    right = _unit(np.cross(forward, [0, 1.0, 0]))
    up = np.cross(right, forward)
    rel = np.asarray(points, float) - eye
    depth = rel @ forward
    half = math.tan(math.radians(fov) / 2)
    x, y = (rel @ right) / depth / half, (rel @ up) / depth / half
    return np.stack([(x + 1) / 2 * size - 0.5, (1 - y) / 2 * size - 0.5], axis=1)


def render(parts: list, azimuth: float, elevation: float, size: int = 64, colour=(0.8, 0.55, 0.3),
           background=(1.0, 1.0, 1.0), steps: int = 80) -> np.ndarray:
    """Shaded picture of the object: sphere tracing of the union's signed distance from a camera
    on a sphere of radius 2.2 around the origin (azimuth from +z towards +x, elevation up),
    30° field of view, Lambert shading from a light above the camera plus ambient. float32
    `[size, size, 3]` in [0, 1]."""
    eye, directions = _camera_rays(azimuth, elevation, size)
    t = np.full(len(directions), 1.0)
    hit = np.zeros(len(directions), bool)
    active = np.ones(len(directions), bool)
    for _ in range(steps):
        if not active.any():
            break
        p = eye + t[active, None] * directions[active]
        d = union_sdf(parts, p)
        idx = np.nonzero(active)[0]
        done = d < 1e-3
        hit[idx[done]] = True
        t[idx] += np.maximum(d, 0)
        active[idx[done | (t[idx] > 4.0)]] = False
    image = np.tile(np.asarray(background, np.float32), (len(directions), 1))
    if hit.any():
        p = eye + t[hit, None] * directions[hit]
        eps = 1e-3
        normal = np.stack([union_sdf(parts, p + e) - union_sdf(parts, p - e) for e in np.eye(3) * eps], axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        light = _unit(-directions.mean(axis=0) + np.array([0.3, 1.0, 0.2]))
        shade = 0.25 + 0.75 * np.clip(normal @ light, 0, 1)
        image[hit] = np.clip(shade[:, None] * np.asarray(colour)[None], 0, 1)
    return image.reshape(size, size, 3).astype(np.float32)


# ------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class VolumeSample:
    """One synthetic object (see the module docstring)."""

    family: str
    images: np.ndarray  # [V, S, S, 3] float32 renderings
    viewpoints: np.ndarray  # [V, 2] azimuth, elevation in radians
    occupancy: np.ndarray  # [R, R, R] uint8
    surface_points: np.ndarray  # [N, 3] float32
    skeleton_points: np.ndarray  # [M, 3] float32
    skeleton_labels: np.ndarray  # [M] uint8, CURVE / SHEET
    skeletal_volume: np.ndarray  # [R, R, R] uint8, V*


def family_of_volume(seed: int, index: int) -> str:
    """Families cycle in blocks of 3 in a seeded order, so every 3 consecutive indices from a
    multiple of 3 hold each family once."""
    block, slot = divmod(int(index), len(VOLUME_FAMILIES))
    order = np.random.default_rng([int(seed), block, _STREAM, 1]).permutation(len(VOLUME_FAMILIES))
    return VOLUME_FAMILIES[int(order[slot])]


def make_volume_sample(seed: int, index: int, resolution: int = 32, image_size: int = 64, views: int = 3,
                       surface_count: int = 2048) -> VolumeSample:
    """One object of family `family_of_volume(seed, index)` with its renderings, volumes and
    point sets. Depends only on the arguments.

    Args:
        seed: dataset seed.
        index: sample index.
        resolution: voxel grid size R (occupancy and V*; the skeleton's point spacing is one
            voxel).
        image_size: side of the renderings.
        views: viewpoints (random azimuth, elevation 10°–40°).
        surface_count: surface points.
    """
    if resolution < 8 or image_size < 16 or views < 1:
        raise ConfigError(f"need resolution ≥ 8, image size ≥ 16 and ≥ 1 view; got {resolution}, {image_size}, "
                          f"{views}")
    rng = np.random.default_rng([int(seed), int(index), _STREAM])
    family = family_of_volume(seed, index)
    parts = make_object(rng, family)
    colour = rng.uniform(0.25, 0.95, 3)
    viewpoints = np.stack([rng.uniform(0, 2 * math.pi, views), np.radians(rng.uniform(10, 40, views))], axis=1)
    images = np.stack([render(parts, az, el, image_size, colour) for az, el in viewpoints])
    points, labels = _skeleton(parts, 1.0 / resolution)
    return VolumeSample(
        family=family, images=images, viewpoints=viewpoints.astype(np.float32),
        occupancy=voxelize(parts, resolution), surface_points=_surface(rng, parts, surface_count).astype(np.float32),
        skeleton_points=points.astype(np.float32), skeleton_labels=labels,
        skeletal_volume=skeletal_volume(points, resolution))


# ------------------------------------------------------------------------------- folders

_OBJECT_ARRAYS = ("viewpoints", "occupancy", "surface_points", "skeleton_points", "skeleton_labels",
                  "skeletal_volume")


_VOLUME_FILE = re.compile(r"^\d{6}(_\d+\.png|\.npz)$")


def _write_volume(args) -> int:
    out_dir, index, seed, resolution, image_size, views = args
    sample = make_volume_sample(seed, index, resolution, image_size, views)
    out = Path(out_dir)
    for view, image in enumerate(sample.images):
        path = out / "images" / f"{index:06d}_{view}.png"
        _atomic_write(path, _png_writer((image[..., ::-1] * 255 + 0.5).astype(np.uint8), path))
    arrays = {name: getattr(sample, name) for name in _OBJECT_ARRAYS}
    _atomic_write(out / "objects" / f"{index:06d}.npz",
                  lambda fh: np.savez_compressed(fh, family=np.array(sample.family), **arrays))
    return index


def write_volumes_dataset(out_dir, count: int, seed: int = 0, resolution: int = 32, image_size: int = 64,
                          views: int = 3, *, overwrite: bool = False, workers: int = 1, progress: bool = True) -> int:
    """Writes `OUT/images/<id>_<view>.png` (renderings), `OUT/objects/<id>.npz` (the arrays of
    `VolumeSample`: viewpoints, occupancy, surface_points, skeleton_points, skeleton_labels,
    skeletal_volume, family) and `OUT/dataset.json`.

    Raises:
        DataError: the folder holds a dataset and `overwrite` is not set.
    """
    import json

    make_volume_sample(seed, 0, resolution, image_size, 1, 16)  # validates the arguments before touching files
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    existing = [p for d in (out / "images", out / "objects") if d.is_dir() for p in d.iterdir()]
    if existing and not overwrite:
        raise DataError(f"{out} already holds a dataset ({len(existing)} files in images/ or objects/); refusing "
                        "to overwrite it: choose an empty folder or pass --overwrite")
    try:
        for d in (out / "images", out / "objects"):
            d.mkdir(parents=True, exist_ok=True)
        for p in existing:  # only this writer's own files; anything else stays
            if _VOLUME_FILE.match(p.name) and p.is_file():
                p.unlink()
    except OSError as err:
        raise DataError(f"cannot prepare dataset folder {out}: {err}") from err
    jobs = [(str(out), i, int(seed), int(resolution), int(image_size), int(views)) for i in range(count)]
    written = synthetic.run_writers(_write_volume, jobs, workers, progress, f"Writing {out}")
    _atomic_write(out / "dataset.json", lambda fh: fh.write(json.dumps(dict(
        task="volumes", count=count, seed=int(seed), resolution=int(resolution), image_size=int(image_size),
        views=int(views), coordinates="unit cube [-0.5, 0.5]^3, y up; volume axes x, y, z",
        command=f"keras-skel data synth --task volumes --count {count} --size {image_size} --resolution "
                f"{resolution} --views {views} --seed {seed} --out {out_dir}"), indent=2).encode()))
    return written


def load_volumes_folder(root) -> tuple[dict, list[dict]]:
    """Reads a volumes folder: `(dataset.json, [{id, images [V, S, S, 3] float32, <arrays>}])`.

    Raises:
        DataError: a missing `dataset.json` or object file, an image that is missing or
            unreadable.
    """
    import json

    import cv2

    root = Path(root)
    info_path = root / "dataset.json"
    if not info_path.is_file():
        raise DataError(f"{root} has no dataset.json: a volumes dataset is written by `keras-skel data synth "
                        "--task volumes`")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{info_path} is not readable JSON: {err}") from None
    objects = sorted(p for p in (root / "objects").glob("*.npz") if not p.name.startswith(".")) \
        if (root / "objects").is_dir() else []
    if not objects:
        raise DataError(f"{root}/objects holds no .npz object files")
    samples = []
    for path in objects:
        try:
            with np.load(path) as data:
                sample = {name: data[name] for name in _OBJECT_ARRAYS}
                sample["family"] = str(data["family"])
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{path} is not an object file of `data synth --task volumes`: {err}") from None
        images = []
        for view in range(len(sample["viewpoints"])):
            image_path = root / "images" / f"{path.stem}_{view}.png"
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{image_path} is missing or not an image (object {path.name} has "
                                f"{len(sample['viewpoints'])} views)")
            images.append(image[..., ::-1].astype(np.float32) / 255.0)
        sample["images"] = np.stack(images)
        sample["id"] = path.stem
        samples.append(sample)
    return info, samples
