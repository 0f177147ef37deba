"""Synthetic "in the wild" images for object-skeleton detection (DeepFlux's task).

Each sample composites one or two objects (clean shapes of the binary-shapes task,
`synthetic.make_shape`) onto a cluttered RGB scene and keeps only the objects' skeletons as
ground truth (`targets.skeleton_target`, the project's ground-truth rule). The scene is built
so that "find the object, then its symmetry axis" cannot be solved by a threshold:

- **Textures** for the background, the clutter and the objects are crops of photographs
  (scikit-image's bundled sample images, read from the installed package, never downloaded)
  or procedural textures (multi-scale noise, gratings, cells, blotches, gradients, warped
  checks, dots), each with random scale, orientation and colour jitter; grey photographs are
  tinted. An object's texture is sometimes a shifted crop of the background's own source,
  the hard case of an object that looks like its surroundings.
- **Clutter**: large regions anchored on the image border (half-planes and border blobs with
  another texture), so the scene has strong edges that belong to no object.
- **Distractors**, under the objects: thin strokes and curves, small blobs and small shapes
  (at most a fifth of the image side), whose skeletons are not ground truth.
- **Object rendering**: soft (anti-aliased) edges, a lighting gradient across the object,
  sometimes a faint drop shadow; then global sensor noise and blur.

Held-out material: ``split="heldout"`` draws the shapes task's held-out variants (birds,
Computer-Modern glyphs), photographs no training split uses and two procedural texture kinds
training never sees; ``split="train"`` never draws any of these. ``split="all"`` mixes both.

A sample depends only on ``(seed, index, size, split)``.

Example:
    >>> image, skeleton = make_natural_sample(seed=0, index=3, size=(96, 96))
    >>> image.shape, image.dtype, int(skeleton.max())
    ((96, 96, 3), dtype('uint8'), 1)
"""

from __future__ import annotations

import functools
import json
import os
import re
import zlib
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from keras_skel.data import synthetic
from keras_skel.data.targets import skeleton_target
from keras_skel.errors import ConfigError, DataError

__all__ = [
    "NATURAL_SPLITS",
    "TRAIN_PHOTOS",
    "HELDOUT_PHOTOS",
    "TRAIN_TEXTURES",
    "HELDOUT_TEXTURES",
    "make_natural_sample",
    "photo_split",
    "write_natural_dataset",
    "load_natural_folder",
    "natural_source",
]

NATURAL_SPLITS = ("all", "train", "heldout")
# scikit-image's sample photographs (skimage/data/*, installed with the package).
TRAIN_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "ihc.png", "retina.jpg",
                "brick.png", "grass.png", "camera.png", "moon.png", "clock_motion.png", "hubble_deep_field.jpg")
HELDOUT_PHOTOS = ("rocket.jpg", "coins.png", "gravel.png", "cell.png", "page.png")
TRAIN_TEXTURES = ("noise", "grating", "cells", "blotches", "gradient")
HELDOUT_TEXTURES = ("checks", "dots")
# A `photos` folder: the files it holds with these endings, recursively; large ones are reduced.
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PHOTO_MAX_SIDE = 1024

_STREAM = 7  # rng stream of this module, apart from the shapes task's streams
_ID_PNG = re.compile(r"^\d{6}\.png$")


def _check_split(split: str) -> str:
    if split not in NATURAL_SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(NATURAL_SPLITS)}")
    return split


def _check_size(size) -> tuple[int, int]:
    h, w = int(size[0]), int(size[1])
    if h < 64 or w < 64:
        raise ConfigError(f"natural images must be at least 64 x 64 to hold an object and clutter; got {size}")
    return h, w


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray | None:
    """A photograph as float32 RGB in [0, 1]: a scikit-image sample by file name (None when it
    is not installed), or a file of a `photos` folder by absolute path, its longer side
    reduced to `PHOTO_MAX_SIDE`."""
    user = os.path.isabs(name)
    if user:
        path = Path(name)
    else:
        import skimage.data

        path = Path(skimage.data.__file__).parent / name
        if not path.is_file():
            return None
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        if user:
            raise DataError(f"photo {path} cannot be read as an image (expected a PNG, JPEG, WebP, BMP or TIFF file)")
        return None
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.dtype != np.uint8:  # 16-bit PNG / TIFF
        array = (array.astype(np.float32) / np.iinfo(array.dtype).max * 255).astype(np.uint8)
    array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB)
    longer = max(array.shape[:2])
    if user and longer > PHOTO_MAX_SIDE:
        f = PHOTO_MAX_SIDE / longer
        array = cv2.resize(array, (max(1, round(array.shape[1] * f)), max(1, round(array.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
    return array.astype(np.float32) / 255.0


def photo_split(path: str | os.PathLike) -> str:
    """The split (`train` or `heldout`) a file of a `photos` folder belongs to: about one in four
    file names is held out, decided by a hash of the name alone, so a folder's split does not
    change when photos are added to it or when it moves."""
    return "heldout" if zlib.crc32(Path(path).name.encode("utf-8")) % 4 == 0 else "train"


@functools.lru_cache(maxsize=None)
def _folder_photos(photos: str) -> tuple[str, ...]:
    root = Path(photos)
    if not root.is_dir():
        raise DataError(f"photos folder {root} does not exist or is not a folder; expected a folder of "
                        f"photographs ({', '.join(PHOTO_SUFFIXES)})")
    files = tuple(sorted(str(p.resolve()) for p in root.rglob("*")
                         if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES))
    if not files:
        raise DataError(f"photos folder {root} holds no photographs (files ending in {', '.join(PHOTO_SUFFIXES)})")
    return files


def _photos(split: str, photos: str | None = None) -> tuple[str, ...]:
    names = {"train": TRAIN_PHOTOS, "heldout": HELDOUT_PHOTOS, "all": TRAIN_PHOTOS + HELDOUT_PHOTOS}[split]
    names = tuple(n for n in names if _photo(n) is not None)
    if photos is not None:
        names += tuple(p for p in _folder_photos(str(photos)) if split == "all" or photo_split(p) == split)
    return names


def _textures(split: str) -> tuple[str, ...]:
    return {"train": TRAIN_TEXTURES, "heldout": HELDOUT_TEXTURES, "all": TRAIN_TEXTURES + HELDOUT_TEXTURES}[split]


# ------------------------------------------------------------------------------- textures


def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-6)


def _palette(rng, n: int) -> np.ndarray:
    return rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)


def _map_palette(values: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] through a piecewise-linear colour ramp."""
    stops = np.linspace(0.0, 1.0, len(colours))
    return np.stack([np.interp(values, stops, colours[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def _procedural(rng, kind: str, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        field = sum(_smooth_noise(rng, shape, s) * a for s, a in ((rng.uniform(1, 3), 0.5), (rng.uniform(4, 12), 1.0),
                                                                   (rng.uniform(15, 40), 1.0)))
        values = 1 / (1 + np.exp(-field * rng.uniform(0.8, 2.0)))
        return _map_palette(values, _palette(rng, int(rng.integers(2, 4))))
    if kind == "grating":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 24)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        phase = phase + 2.5 * _smooth_noise(rng, shape, rng.uniform(8, 30))
        wave = 0.5 + 0.5 * np.sin(phase)
        if rng.random() < 0.5:
            wave = (wave > 0.5).astype(np.float32) * 0.8 + 0.1 * wave
        return _map_palette(wave, _palette(rng, 2))
    if kind == "cells":
        n = int(rng.integers(8, 60))
        points = rng.uniform(0, 1, (n, 2)) * (h, w)
        seeds = np.zeros(shape, np.int32)
        iy = np.clip(points[:, 0].astype(int), 0, h - 1)
        ix = np.clip(points[:, 1].astype(int), 0, w - 1)
        seeds[iy, ix] = np.arange(1, n + 1)
        _, (ny, nx) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
        labels = seeds[ny, nx]
        colours = np.concatenate([np.zeros((1, 3), np.float32), _palette(rng, n)])
        base = colours[labels]
        if rng.random() < 0.6:  # mortar lines between the cells
            edges = ndimage.morphological_gradient(labels, size=2) > 0
            base[edges] = rng.uniform(0, 1, 3)
        return base + 0.05 * _smooth_noise(rng, shape, 1.0)[..., None]
    if kind == "blotches":
        image = np.broadcast_to(rng.uniform(0, 1, 3), (h, w, 3)).astype(np.float32).copy()
        for _ in range(int(rng.integers(10, 40))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ay, ax = rng.uniform(3, 0.3 * h), rng.uniform(3, 0.3 * w)
            mask = np.zeros(shape, np.uint8)
            cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), rng.uniform(0, 180), 0, 360, 1, -1)
            image[mask > 0] = rng.uniform(0, 1, 3)
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 2.5))
    if kind == "gradient":
        colours = _palette(rng, 3)
        angle = rng.uniform(0, 2 * np.pi)
        t = (xx * np.cos(angle) + yy * np.sin(angle))
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        return _map_palette(t, colours) + 0.06 * _smooth_noise(rng, shape, rng.uniform(0.5, 2))[..., None]
    if kind == "checks":  # held out
        period = rng.uniform(6, 28)
        warp = 6 * _smooth_noise(rng, shape, 20)
        checks = ((np.floor((xx + warp) / period) + np.floor((yy - warp) / period)) % 2).astype(np.float32)
        return _map_palette(checks, _palette(rng, 2))
    if kind == "dots":  # held out
        image = np.broadcast_to(rng.uniform(0, 1, 3), (h, w, 3)).astype(np.float32).copy()
        step = rng.uniform(7, 20)
        colour = rng.uniform(0, 1, 3)
        radius = max(1, int(step * rng.uniform(0.15, 0.4)))
        for y in np.arange(rng.uniform(0, step), h, step):
            for x in np.arange(rng.uniform(0, step), w, step):
                cv2.circle(image, (int(x), int(y)), radius, colour.tolist(), -1)
        return image
    raise ConfigError(f"unknown texture kind {kind!r}")


def _photo_crop(rng, name: str, shape: tuple[int, int]) -> np.ndarray:
    photo = _photo(name)
    h, w = shape
    # Crop first, then resize only the crop: the photographs are up to 1411 px.
    scale = max(rng.uniform(0.5, 1.6), h / photo.shape[0], w / photo.shape[1])
    ch, cw = min(photo.shape[0], int(np.ceil(h / scale))), min(photo.shape[1], int(np.ceil(w / scale)))
    y = int(rng.integers(0, photo.shape[0] - ch + 1))
    x = int(rng.integers(0, photo.shape[1] - cw + 1))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=interpolation)
    crop = np.rot90(crop, int(rng.integers(0, 4))) if h == w else crop
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.ascontiguousarray(crop)
    if np.allclose(crop[..., 0], crop[..., 1]) and rng.random() < 0.7:  # tint grey photographs
        crop = _map_palette(crop[..., 0], _palette(rng, 2))
    return crop


def _jitter(rng, image: np.ndarray) -> np.ndarray:
    """Random brightness, contrast, saturation and channel mixing."""
    mean = image.mean(axis=(0, 1), keepdims=True)
    image = (image - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-0.15, 0.15)
    grey = image.mean(axis=-1, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.3, 1.5)
    if rng.random() < 0.5:
        mix = np.eye(3, dtype=np.float32) * 0.7 + rng.uniform(0, 0.3, (3, 3)).astype(np.float32)
        image = image @ (mix / mix.sum(axis=0, keepdims=True))
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _texture(rng, split: str, shape: tuple[int, int], source: str | None = None,
             photo_dir: str | None = None) -> tuple[np.ndarray, str]:
    """A jittered texture and the name of its source (a photo file or a procedural kind)."""
    photos, kinds = _photos(split, photo_dir), _textures(split)
    if source is None:
        source = str(rng.choice(photos)) if photos and rng.random() < 0.55 else str(rng.choice(kinds))
    image = _photo_crop(rng, source, shape) if source in photos else _procedural(rng, source, shape)
    return _jitter(rng, image), source


def _blend(canvas: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> None:
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += layer * a


# ------------------------------------------------------------------------------- scene


def _border_regions(rng, shape: tuple[int, int]) -> list[np.ndarray]:
    """Large clutter regions that touch the image border."""
    h, w = shape
    regions = []
    for _ in range(int(rng.integers(0, 4))):
        mask = np.zeros(shape, np.uint8)
        if rng.random() < 0.5:  # a half-plane with a wavy edge
            angle = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            offset = rng.uniform(0.25, 0.75) * (abs(h * np.sin(angle)) + abs(w * np.cos(angle)))
            d = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle) + offset / 2
            d = d + rng.uniform(0, 12) * _smooth_noise(rng, shape, rng.uniform(10, 30))
            mask = (d < 0).astype(np.uint8)
        else:  # a blob centred outside or on the border
            side = int(rng.integers(0, 4))
            cy = [0, h, rng.uniform(0, h), rng.uniform(0, h)][side]
            cx = [rng.uniform(0, w), rng.uniform(0, w), 0, w][side]
            cv2.ellipse(mask, (int(cx), int(cy)), (int(rng.uniform(0.2, 0.6) * w), int(rng.uniform(0.2, 0.6) * h)),
                        rng.uniform(0, 180), 0, 360, 1, -1)
        if 0 < mask.sum() < 0.7 * h * w:
            regions.append(mask)
    return regions


def _distractor_masks(rng, shape: tuple[int, int], split: str) -> list[np.ndarray]:
    h, w = shape
    side = min(h, w)
    masks = []
    for _ in range(int(rng.integers(2, 10))):
        mask = np.zeros(shape, np.uint8)
        kind = rng.random()
        if kind < 0.4:  # a stroke: line or curve, 1-5 px wide
            points = np.cumsum(rng.normal(0, side * 0.08, (int(rng.integers(2, 6)), 2)), axis=0)
            points += rng.uniform(0, 1, 2) * (w, h)
            cv2.polylines(mask, [points.astype(np.int32)], False, 1, int(rng.integers(1, 6)), cv2.LINE_AA)
        elif kind < 0.7:  # a small blob
            r = rng.uniform(2, side * 0.08)
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.ellipse(mask, centre, (int(r), int(r * rng.uniform(0.4, 1.0))), rng.uniform(0, 180), 0, 360, 1, -1)
        else:  # a small shape of any family
            small = int(side * rng.uniform(0.12, 0.2))
            if small >= 32:
                family = synthetic.family_of(int(rng.integers(1 << 30)), 0, "train" if split == "train" else "all")
                piece = synthetic.make_shape(rng, (small, small), family, split="train" if split == "train" else "all")
                y, x = int(rng.integers(0, h - small + 1)), int(rng.integers(0, w - small + 1))
                mask[y:y + small, x:x + small] = piece
        if mask.any():
            masks.append(mask)
    return masks


def _object_masks(rng, shape: tuple[int, int], split: str, seed: int, index: int) -> list[np.ndarray]:
    """One object (3 in 4 samples) or two side by side, each a clean shape of the shapes task."""
    h, w = shape
    shape_split = {"train": "train", "heldout": "heldout", "all": "all"}[split]
    if rng.random() < 0.75:
        boxes = []
        scale = rng.uniform(0.55, 1.0)
        bh, bw = max(32, int(h * scale)), max(32, int(w * scale))
        boxes.append((int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw))
    else:
        if rng.random() < 0.5:  # left / right halves
            bw = w // 2
            boxes = [(0, 0, h, bw), (0, bw, h, w - bw)]
        else:
            bh = h // 2
            boxes = [(0, 0, bh, w), (bh, 0, h - bh, w)]
    masks = []
    for k, (y, x, bh, bw) in enumerate(boxes):
        family = synthetic.family_of(seed, 2 * index + k, shape_split)
        piece = synthetic.make_shape(rng, (bh, bw), family, split=shape_split)
        mask = np.zeros(shape, np.uint8)
        mask[y:y + bh, x:x + bw] = piece
        masks.append(mask)
    return masks


def make_natural_sample(seed: int, index: int, size: tuple[int, int] = (256, 256), split: str = "all",
                        *, with_mask: bool = False, photos: str | os.PathLike | None = None) -> tuple[np.ndarray, ...]:
    """One synthetic natural image and the skeleton of its object(s).

    Args:
        seed: dataset seed (≥ 0).
        index: sample index (≥ 0).
        size: (height, width), each ≥ 64.
        split: `train`, `heldout` (shape variants, photographs and textures `train` never
            draws) or `all`.
        with_mask: also return the objects' mask.
        photos: a folder of photographs (searched recursively) used as textures beside the
            scikit-image samples; each file belongs to one split (`photo_split`). None: the
            samples alone (and the same images as without the argument).

    Returns:
        `(image, skeleton)` or `(image, skeleton, mask)`: uint8 RGB `(H, W, 3)`, uint8 0/1
        `(H, W)` skeleton (the ground-truth rule applied to each object's clean shape) and
        uint8 0/1 `(H, W)` object mask.

    Raises:
        ConfigError: (a ValueError) an unknown split or a side under 64.
        DataError: `photos` is no folder, holds no photographs or a file in it cannot be read.

    Example:
        >>> a = make_natural_sample(1, 5, (64, 64))
        >>> b = make_natural_sample(1, 5, (64, 64))
        >>> all(np.array_equal(x, y) for x, y in zip(a, b))
        True
    """
    _check_split(split)
    shape = _check_size(size)
    if seed < 0 or index < 0:
        raise ConfigError(f"seed and index must be ≥ 0; got {seed}, {index}")
    rng = np.random.default_rng([int(seed), int(index), _STREAM])
    h, w = shape

    canvas, bg_source = _texture(rng, split, shape, photo_dir=photos)
    canvas = canvas.copy()
    for region in _border_regions(rng, shape):
        texture, _ = _texture(rng, split, shape, photo_dir=photos)
        soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), rng.uniform(0.5, 1.5))
        _blend(canvas, texture, soft)
    for mask in _distractor_masks(rng, shape, split):
        if rng.random() < 0.5:
            texture = np.broadcast_to(rng.uniform(0, 1, 3).astype(np.float32), (h, w, 3))
        else:
            texture, _ = _texture(rng, split, shape, photo_dir=photos)
        _blend(canvas, texture, cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7))

    skeleton = np.zeros(shape, np.uint8)
    objects = np.zeros(shape, np.uint8)
    for mask in _object_masks(rng, shape, split, seed, index):
        # One in five objects is textured like the background (another crop of its source).
        texture, _ = _texture(rng, split, shape, source=bg_source if rng.random() < 0.2 else None,
                              photo_dir=photos)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        light = (xx * np.cos(angle) + yy * np.sin(angle)) / max(h, w)
        texture = np.clip(texture * (1.0 + rng.uniform(0, 0.5) * (light - light.mean()))[..., None], 0, 1)
        if rng.random() < 0.3:  # a faint drop shadow
            dy, dx = rng.integers(-6, 7, 2)
            shadow = np.roll(mask, (int(dy), int(dx)), axis=(0, 1)).astype(np.float32)
            shadow = cv2.GaussianBlur(shadow, (0, 0), 3.0) * rng.uniform(0.2, 0.5)
            canvas *= 1.0 - shadow[..., None]
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), rng.uniform(0.4, 1.0))
        _blend(canvas, texture, alpha)
        skeleton |= skeleton_target(mask)
        objects |= mask

    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 1.0))
    canvas = canvas + rng.uniform(0, 0.05) * rng.standard_normal(canvas.shape).astype(np.float32)
    image = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return (image, skeleton, objects) if with_mask else (image, skeleton)


# ------------------------------------------------------------------------------- folders


def _write_one(args) -> int:
    out_dir, index, size, seed, split, photos = args
    from keras_skel.data.thin import _atomic_write, _png_writer

    image, skeleton, mask = make_natural_sample(seed, index, size, split, with_mask=True, photos=photos)
    name = f"{index:06d}.png"
    out = Path(out_dir)
    for folder, array in (("images", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), ("skeletons", skeleton * 255),
                          ("masks", mask * 255)):
        _atomic_write(out / folder / name, _png_writer(array, out / folder / name))
    return index


def write_natural_dataset(out_dir: str | os.PathLike, count: int, size: tuple[int, int] = (256, 256),
                          seed: int = 0, split: str = "all", *, overwrite: bool = False, workers: int = 1,
                          progress: bool = True, photos: str | os.PathLike | None = None) -> int:
    """Writes ``out_dir/images/<id>.png`` (RGB), ``out_dir/skeletons/<id>.png`` (white 1-px
    skeletons of the objects), ``out_dir/masks/<id>.png`` (the objects) and ``dataset.json``,
    the layout `data convert` writes for the skeleton benchmarks, plus the masks.

    Args:
        out_dir: dataset folder (created).
        count: number of samples (ids ``000000`` …).
        size: (height, width).
        seed: dataset seed.
        split: `train`, `heldout` or `all` (`make_natural_sample`).
        overwrite: write into a folder that already holds samples (their numbered PNGs are
            deleted first).
        workers: processes generating samples in parallel.
        progress: show a progress bar.
        photos: a folder of photographs used as textures too (`make_natural_sample`); the
            files of the split that were used are listed in ``dataset.json``.

    Returns:
        The number of samples written.

    Raises:
        DataError: the folder holds a dataset and `overwrite` is not set, a write fails, or
            `photos` is no folder of readable photographs.

    Example:
        >>> import tempfile
        >>> write_natural_dataset(tempfile.mkdtemp(), 2, (64, 64), progress=False)
        2
    """
    _check_split(split)
    size = _check_size(size)
    if photos is not None:
        photos = str(Path(photos).resolve())
        for path in _photos(split, photos):  # every file readable before anything is written
            _photo(path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder")
    subdirs = [out / "images", out / "skeletons", out / "masks"]
    existing = [p for d in subdirs if d.is_dir() for p in d.iterdir()]
    if existing and not overwrite:
        raise DataError(f"{out} already holds a dataset ({len(existing)} files in images/, skeletons/ or masks/); "
                        "refusing to overwrite it: choose an empty folder or pass --overwrite")
    try:
        for d in subdirs:
            d.mkdir(parents=True, exist_ok=True)
        for p in existing:
            if _ID_PNG.match(p.name) and p.is_file():
                p.unlink()
    except OSError as err:
        raise DataError(f"cannot prepare dataset folder {out}: {err}") from err
    jobs = [(str(out), i, size, int(seed), split, photos) for i in range(count)]
    written = synthetic.run_writers(_write_one, jobs, workers, progress, f"Writing {out}")
    from keras_skel.data.thin import _atomic_write

    info = dict(task="natural", count=count, size=list(size), seed=int(seed), split=split,
                command=f"keras-skel data synth --task natural --count {count} --size {size[0]}x{size[1]} "
                        f"--seed {seed} --split {split} --out {out_dir}")
    if photos is not None:
        info["command"] += f" --photos {photos}"
        info["photos"] = photos
        info["photo_files"] = [Path(p).relative_to(photos).as_posix() for p in _photos(split, photos)
                               if os.path.isabs(p)]
    _atomic_write(out / synthetic.DATASET_INFO, lambda fh: fh.write(json.dumps(info, indent=2).encode()))
    return written


def load_natural_folder(root: str | os.PathLike) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Reads a natural-image folder: ``images/<id>.<ext>`` (RGB, grey or RGBA) and
    ``skeletons/<id>.png`` (skeleton pixels non-zero), as `data synth --task natural` and
    `data convert --from sk-large|...` write them.

    Returns:
        `(id, image float32 (H, W, 3) in [0, 1], skeleton uint8 (H, W) 0/1)` sorted by id.

    Raises:
        DataError: a missing folder, an image without a skeleton (or the reverse), an
            unreadable file, or a skeleton whose size differs from its image's.
    """
    from keras_skel.data.io import IMAGE_SUFFIXES

    root = Path(root)
    image_dir, skeleton_dir = root / "images", root / "skeletons"
    for d in (image_dir, skeleton_dir):
        if not d.is_dir():
            raise DataError(f"{root} has no {d.name}/ folder: a natural-image dataset holds images/<id>.png "
                            "(RGB) and skeletons/<id>.png (white skeleton on black)")
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    skeletons = {p.stem: p for p in skeleton_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(images) ^ set(skeletons))
    if missing:
        which = "skeletons/" if missing[0] in images else "images/"
        raise DataError(f"{root}: {missing[0]} has no file in {which} ({len(missing)} unpaired ids); every "
                        "image needs a skeleton of the same id")
    if not images:
        raise DataError(f"{image_dir} holds no images")
    samples = []
    for stem in sorted(images):
        samples.append((stem, read_rgb(images[stem]), _read_skeleton(skeletons[stem], images[stem])))
    return samples


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as float32 RGB (H, W, 3) in [0, 1]: grey is repeated, alpha dropped,
    16-bit scaled by its range.

    Raises:
        DataError: the file cannot be read as an image.
    """
    path = Path(path)
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(f"{path} is not a readable image (expected PNG, JPEG, BMP or TIFF)")
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path} has pixel type {array.dtype}; expected 8- or 16-bit")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    elif array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    else:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    return array.astype(np.float32) / scale


def _read_skeleton(path: Path, image_path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(f"{path} is not a readable image")
    if array.ndim == 3:
        array = array.max(axis=-1)
    image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if image is not None and image.shape[:2] != array.shape[:2]:
        raise DataError(f"{path} is {array.shape[1]}x{array.shape[0]} but its image {image_path.name} is "
                        f"{image.shape[1]}x{image.shape[0]}; a skeleton must have its image's size")
    return (array > 0).astype(np.uint8)


def natural_source(size: tuple[int, int], seed: int = 0, split: str = "train", num_parallel_calls: int | None = None,
                   photos: str | os.PathLike | None = None):
    """An endless `tf.data` stream of fresh samples `make_natural_sample(seed, i, size, split,
    photos=photos)`.

    Returns:
        `tf.data.Dataset` of `(image float32 [H, W, 3] in [0, 1], skeleton float32 [H, W, 1])`.

    Example:
        >>> image, skeleton = next(iter(natural_source((64, 64))))  # doctest: +SKIP
    """
    import tensorflow as tf

    _check_split(split)
    h, w = _check_size(size)
    if photos is not None:
        photos = str(Path(photos).resolve())
        _photos(split, photos)  # a missing or empty folder fails here, not inside the pipeline
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls

    def make(index):
        image, skeleton = make_natural_sample(int(seed), int(index), (h, w), split, photos=photos)
        return image.astype(np.float32) / 255.0, skeleton.astype(np.float32)[..., None]

    def to_tensors(index):
        image, skeleton = tf.numpy_function(make, [index], [tf.float32, tf.float32], stateful=False)
        image.set_shape((h, w, 3))
        skeleton.set_shape((h, w, 1))
        return image, skeleton

    return tf.data.Dataset.counter().map(to_tensors, num_parallel_calls=parallel, deterministic=True)
