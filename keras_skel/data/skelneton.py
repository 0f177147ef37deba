"""Reader and writer for the Pixel SkelNetOn challenge's published layout (CVPR 2019 / 2022).

What the challenge's own evaluation script (`Evaluate_im2im.py` of the SkelNetOn repository,
github.com/ilkedemir/SkelNetOn) reads, and so what its data releases hold:

- **Label images** ``<name>.png`` (e.g. ``bat-11.png``), 256×256 RGB: the shape in white
  (255, 255, 255) and the ground-truth skeleton in pure blue (0, 0, 255), drawn over the shape
  (the shape is white ∪ blue).
- **Point files** beside them: ``coords_<name>.txt`` (the shape's outline, one ``x y`` pair per
  line), ``skelpoints_<name>.txt`` (skeleton vertices, ``x y`` per line) and
  ``skeledges_<name>.txt`` (skeleton edges, one pair of vertex indices per line, numbered from
  0 or from 1).
- **Submissions** ``<name>.png``: RGB, skeleton pixels pure blue (0, 0, 255), anything else
  is background. The score is the per-image exact-pixel F1 averaged over the images (the
  `mean_image_f1` of `keras-skel evaluate` at `--tolerance 0`, exact).

`convert_skelneton(src, out)` turns a folder of label images (or of point files) into the
toolkit's dataset layout (DESIGN.md §3: ``shapes/``, ``skeletons/``), so `train` (folder
source, `--init-from` a shipped model) and `evaluate` work on it unchanged;
`write_submission` writes a prediction in the challenge's format.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from keras_skel.data.io import write_mask_png
from keras_skel.errors import DataError

__all__ = ["read_label_image", "read_point_files", "convert_skelneton", "write_submission"]

_BLUE = (0, 0, 255)  # RGB
_WHITE = (255, 255, 255)


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: not a readable image")
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise DataError(f"{path}: a SkelNetOn label image is 8-bit RGB (white shape, blue (0, 0, 255) skeleton); "
                        f"got shape {image.shape}, dtype {image.dtype}")
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def read_label_image(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """`(shape, skeleton)` bool arrays from a SkelNetOn label image.

    Raises:
        DataError: the file is unreadable, not 8-bit RGB, or holds no blue skeleton pixel.
    """
    path = Path(path)
    rgb = _read_rgb(path)
    skeleton = np.all(rgb == _BLUE, axis=-1)
    shape = np.all(rgb == _WHITE, axis=-1) | skeleton
    if not skeleton.any():
        raise DataError(f"{path}: no skeleton pixels (pure blue, RGB 0 0 255) found; is it a SkelNetOn label image?")
    return shape, skeleton


def _read_numbers(path: Path, what: str) -> np.ndarray:
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        values = np.array([[float(v) for v in row] for row in rows], np.float64)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read {what} (two numbers per line expected): {err}") from None
    if values.ndim != 2 or values.shape[1] != 2 or len(values) == 0:
        raise DataError(f"{path}: {what} must be lines of two numbers; got {values.shape}")
    return values


def read_point_files(folder: str | os.PathLike, name: str, size: tuple[int, int] = (256, 256)):
    """`(shape, skeleton)` bool arrays rasterized from the point files of sample `name`.

    The outline (``coords_<name>.txt``) is filled; the skeleton edges
    (``skeledges_<name>.txt`` between ``skelpoints_<name>.txt`` vertices, 0- or 1-based, told
    apart by whether index 0 occurs) are drawn as 8-connected 1-px lines. Coordinates are
    pixel positions ``x y`` of an image of `size` (height, width).

    Raises:
        DataError: a file is missing or malformed, or an edge names a vertex that does not exist.
    """
    folder = Path(folder)
    files = {kind: folder / f"{kind}_{name}.txt" for kind in ("coords", "skelpoints", "skeledges")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"sample {name!r}: missing point files {', '.join(missing)}")
    outline = _read_numbers(files["coords"], "the shape outline")
    vertices = _read_numbers(files["skelpoints"], "skeleton vertices")
    edges = _read_numbers(files["skeledges"], "skeleton edges").astype(np.int64)
    if edges.min() >= 1:  # numbered from 1
        edges = edges - 1
    if edges.min() < 0 or edges.max() >= len(vertices):
        raise DataError(f"{files['skeledges']}: edge indices must name one of the {len(vertices)} vertices")
    h, w = int(size[0]), int(size[1])
    shape = np.zeros((h, w), np.uint8)
    cv2.fillPoly(shape, [np.round(outline).astype(np.int32)], 1)
    skeleton = np.zeros((h, w), np.uint8)
    for a, b in edges:
        p, q = np.round(vertices[a]).astype(int), np.round(vertices[b]).astype(int)
        cv2.line(skeleton, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1, 1, cv2.LINE_8)
    return shape.astype(bool), skeleton.astype(bool)


def convert_skelneton(src: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False) -> int:
    """Converts a SkelNetOn folder to the toolkit's layout (`out/shapes`, `out/skeletons`).

    Label images (``<name>.png`` with a blue skeleton) are used when present; samples that
    only have point files (``coords_<name>.txt`` …) are rasterized at 256×256.

    Returns:
        The number of samples written.

    Raises:
        DataError: `src` holds neither label images nor point files, a file is malformed, or
            `out` already holds a dataset and not `overwrite`.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: not a folder")
    labels = {p.stem: p for p in sorted(src.glob("*.png")) if not p.name.startswith(".")}
    points = {p.name[len("coords_"):-len(".txt")] for p in src.glob("coords_*.txt")}
    names = sorted(set(labels) | points)
    if not names:
        raise DataError(f"{src}: no SkelNetOn samples found (expected <name>.png label images with a blue "
                        "skeleton, or coords_/skelpoints_/skeledges_<name>.txt point files)")
    for sub in ("shapes", "skeletons"):
        folder = out / sub
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise DataError(f"{folder} already holds files; choose an empty --out or pass --overwrite")
    for name in names:
        if name in labels:
            shape, skeleton = read_label_image(labels[name])
        else:
            shape, skeleton = read_point_files(src, name)
        write_mask_png(out / "shapes" / f"{name}.png", shape)
        write_mask_png(out / "skeletons" / f"{name}.png", skeleton)
    return len(names)


def write_submission(path: str | os.PathLike, skeleton: np.ndarray) -> Path:
    """Writes a skeleton as a SkelNetOn submission PNG: RGB, skeleton pure blue on black."""
    skeleton = np.asarray(skeleton)
    if skeleton.ndim != 2:
        raise ValueError(f"skeleton must be 2-D (H, W); got shape {skeleton.shape}")
    rgb = np.zeros(skeleton.shape + (3,), np.uint8)
    rgb[skeleton != 0] = _BLUE
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise DataError(f"could not write {path}")
    return path
