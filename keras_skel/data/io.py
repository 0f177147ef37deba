"""Reading and writing binary images (shapes, skeletons, masks).

One reader for every binary image the toolkit takes in, so that a dataset folder, ``predict``'s
inputs and ``evaluate``'s ground truth are binarized the same way (DESIGN.md §3, "Binary-shape
dataset folder"):

* 8- or 16-bit grey, RGB, RGBA or grey+alpha, in any format OpenCV (or, failing that, Pillow)
  decodes: PNG, JPEG, BMP, TIFF, WebP, PNM …
* When the image has an alpha channel that is not constant, the alpha channel *is* the shape
  (the usual way drawing programs export a cut-out). A constant alpha carries no shape, so the
  colour / grey values are used.
* Colour is reduced to luminance (ITU-R BT.601: ``0.299 R + 0.587 G + 0.114 B``).
* The result is ``value > 50% of the dtype's range``: ``> 127.5`` for 8-bit (so 127 is
  background and 128 foreground), ``> 32767.5`` for 16-bit.

Everything else (unreadable files, non-images, float or 32-bit images, empty images, more than
4 channels) raises :class:`keras_skel.errors.DataError` naming the file, what was found and
what is expected. This module does not import TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from keras_skel.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "is_image_path", "read_binary_image", "write_mask_png"]

PathLike = Union[str, "os.PathLike[str]"]

#: File suffixes (lower case, with the dot) treated as images when a folder is listed.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".pbm",
    ".pgm",
    ".ppm",
    ".pnm",
)

_EXPECTED = (
    "expected an 8- or 16-bit grey, grey+alpha, RGB or RGBA image "
    f"({', '.join(s.lstrip('.').upper() for s in IMAGE_SUFFIXES[:6])} …)"
)

# BT.601 luma weights in OpenCV's BGR channel order.
_LUMA_BGR = np.array([0.114, 0.587, 0.299])


def is_image_path(path: PathLike) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_SUFFIXES` (case-insensitive).

    Args:
        path: A file name or path.

    Returns:
        ``True`` for e.g. ``"a.png"`` or ``"B.TIFF"``, ``False`` for ``"notes.txt"``.
    """
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _decode_with_pil(path: Path, data: bytes) -> np.ndarray:
    """Decodes what OpenCV refused, or raises a DataError that says why it is not an image."""
    import io as _io

    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(_io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: not a readable image (the file content is not a known image format, "
            f"{len(data)} bytes); {_EXPECTED}."
        ) from exc
    described = f"a {image.format} image, mode {image.mode}, {image.width}x{image.height}"
    try:
        image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error … on bad data
        raise DataError(
            f"{path}: {described}, could not be decoded ({exc}); the file is probably "
            f"truncated or corrupt; {_EXPECTED}."
        ) from exc
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image).astype(np.uint16)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise DataError(f"{path}: found {described}; {_EXPECTED}.")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        # Match OpenCV's BGR(A) channel order so one code path handles both decoders.
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    return array


def _decode(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found; {_EXPECTED}.") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path}: is a folder, not an image file; {_EXPECTED}.") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if not data:
        raise DataError(f"{path}: the file is empty (0 bytes); {_EXPECTED}.")
    # imdecode on the bytes (not imread on the path) so non-ASCII paths work everywhere.
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        array = None
    if array is None:
        array = _decode_with_pil(path, data)
    return array


def _binarize(path: Path, array: np.ndarray) -> np.ndarray:
    found = f"{array.dtype} array of shape {array.shape}"
    if array.dtype == np.uint8:
        half = 127.5
    elif array.dtype == np.uint16:
        half = 32767.5
    else:
        bits = array.dtype.itemsize * 8
        kind = "floating-point" if array.dtype.kind == "f" else f"{bits}-bit {array.dtype}"
        raise DataError(f"{path}: found a {kind} image ({found}); {_EXPECTED}.")
    if array.size == 0:
        raise DataError(f"{path}: found an empty image ({found}); {_EXPECTED}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return array > half
    if array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        channels = array.shape[2] if array.ndim == 3 else "?"
        raise DataError(
            f"{path}: found an image with {channels} channels ({found}); {_EXPECTED} "
            "(1 to 4 channels)."
        )
    channels = array.shape[2]
    if channels in (2, 4):
        alpha = array[..., -1]
        if alpha.min() != alpha.max():
            return alpha > half
        array = array[..., :-1]
        if channels == 2:
            return array[..., 0] > half
    luma = array.astype(np.float64) @ _LUMA_BGR
    return luma > half


def read_binary_image(path: PathLike) -> np.ndarray:
    """Reads an image file and binarizes it at 50% of its dtype's range.

    Args:
        path: An image file (PNG, JPEG, BMP, TIFF, WebP, PNM …), 8- or 16-bit, grey,
            grey+alpha, RGB or RGBA. A non-constant alpha channel is taken as the shape;
            otherwise colour is reduced to BT.601 luminance.

    Returns:
        A ``bool`` array of shape ``[H, W]``, ``True`` on the (white / opaque) foreground.

    Raises:
        DataError: The file is missing, unreadable, not an image, a float or 32-bit image,
            empty, or has more than 4 channels. The message names the file, what was found
            and what is expected.

    Example:
        >>> mask = read_binary_image("data/shapes/0001.png")  # doctest: +SKIP
        >>> mask.dtype, mask.ndim
        (dtype('bool'), 2)
    """
    path = Path(path)
    return _binarize(path, _decode(path))


def write_mask_png(path: PathLike, mask: np.ndarray) -> Path:
    """Writes a binary mask as an 8-bit grey PNG with values 0 and 255.

    Parent folders are created as needed.

    Args:
        path: Where to write (a ``.png`` suffix is expected but not enforced).
        mask: A 2-D array (or ``[H, W, 1]``); non-zero pixels are written as 255.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        DataError: The mask is not 2-D / empty, or the file could not be written.

    Example:
        >>> write_mask_png("out/0001.png", skeleton)  # doctest: +SKIP
        PosixPath('out/0001.png')
    """
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2 or mask.size == 0:
        raise DataError(
            f"{path}: cannot write a mask of shape {mask.shape}; expected a non-empty 2-D "
            "array [H, W] (or [H, W, 1])."
        )
    image = np.where(mask != 0, 255, 0).astype(np.uint8)
    try:
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise DataError(f"{path}: PNG encoding failed for a mask of shape {mask.shape}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot write the mask PNG ({exc.strerror or exc}).") from exc
    return path
