"""Binary-shape dataset folders and prediction inputs.

A dataset folder (DESIGN.md §3, "Binary-shape dataset folder") is::

    DIR/shapes/<id>.png       input: white shape on black
    DIR/skeletons/<id>.png    ground truth: white 1-px skeleton, same <id>

Any suffix in :data:`keras_skel.data.io.IMAGE_SUFFIXES` is accepted (case-insensitive) and the
two files of a pair may have different suffixes. Files without an image suffix and hidden files
(``.DS_Store`` …) are ignored; subfolders are not searched.

Every problem raises :class:`keras_skel.errors.DataError` naming the folder or file, what was
found and what is expected. With ``on_error="skip"`` bad pairs are left out instead; the
returned list's ``skipped`` attribute says which and why, and one ``warnings.warn`` summarises
them. A folder that is missing, lacks a subfolder or has no images raises in both modes (there
is nothing to skip to). This module does not import TensorFlow.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Union

import numpy as np

from keras_skel.data.io import IMAGE_SUFFIXES, is_image_path, read_binary_image
from keras_skel.errors import DataError

__all__ = [
    "Pair",
    "Skipped",
    "SkipList",
    "find_pairs",
    "load_pair",
    "load_folder",
    "list_images",
]

PathLike = Union[str, "os.PathLike[str]"]
OnError = Literal["raise", "skip"]

SHAPES_DIR = "shapes"
SKELETONS_DIR = "skeletons"
_SUFFIX_HINT = "|".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
_MAX_LISTED = 5  # problems spelled out in one message; the rest are counted


@dataclass(frozen=True)
class Pair:
    """One sample of a dataset folder.

    Attributes:
        id: The shared file stem, e.g. ``"0001"``.
        shape_path: ``DIR/shapes/<id>.<ext>``.
        skeleton_path: ``DIR/skeletons/<id>.<ext>``.
    """

    id: str
    shape_path: Path
    skeleton_path: Path


@dataclass(frozen=True)
class Skipped:
    """A sample left out in ``on_error="skip"`` mode.

    Attributes:
        id: The sample's id (file stem).
        reason: The message the ``DataError`` would have carried in ``"raise"`` mode.
    """

    id: str
    reason: str


class SkipList(list):
    """A plain ``list`` of results with a ``skipped`` attribute (list of :class:`Skipped`).

    Returned by :func:`find_pairs` and :func:`load_folder`, so callers that ignore skipping
    use it as the list it is.
    """

    def __init__(self, items: Iterable = (), skipped: Iterable[Skipped] = ()):
        super().__init__(items)
        self.skipped: list[Skipped] = list(skipped)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")


def _image_files(folder: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    wanted = (lambda p: p.suffix.lower() in suffixes) if suffixes else is_image_path
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and wanted(p) and p.is_file()
    )


def _index_by_id(folder: Path, on_error: str, skipped: list[Skipped]) -> dict[str, Path]:
    """Maps stem → file; two files with one stem (``a.png``, ``a.jpg``) are ambiguous."""
    by_id: dict[str, list[Path]] = defaultdict(list)
    for path in _image_files(folder):
        by_id[path.stem].append(path)
    if not by_id:
        found = sorted(p.name for p in folder.iterdir())
        described = (
            "it holds no files" if not found else f"it holds {len(found)} other entries "
            f"({', '.join(found[:_MAX_LISTED])}{' …' if len(found) > _MAX_LISTED else ''})"
        )
        raise DataError(
            f"{folder}: no images found ({described}); expected files named "
            f"<id>.{{{_SUFFIX_HINT}}}."
        )
    index = {}
    problems = []
    for sample_id, paths in by_id.items():
        if len(paths) == 1:
            index[sample_id] = paths[0]
            continue
        reason = (
            f"{folder}: id {sample_id!r} has {len(paths)} files "
            f"({', '.join(p.name for p in paths)}); expected exactly one image per id."
        )
        problems.append(reason)
        skipped.append(Skipped(sample_id, reason))
    if problems and on_error == "raise":
        raise DataError(_summarise(problems))
    return index


def _summarise(problems: list[str]) -> str:
    listed = problems[:_MAX_LISTED]
    more = len(problems) - len(listed)
    text = "\n  ".join(listed)
    if len(problems) > 1:
        text = f"{len(problems)} problems:\n  {text}"
    if more:
        text += f"\n  … and {more} more"
    return text


def _find_pairs(root: PathLike, on_error: str) -> tuple[list[Pair], list[Skipped]]:
    _check_on_error(on_error)
    root = Path(root)
    expected_layout = (
        f"expected a dataset folder with {SHAPES_DIR}/<id>.png and {SKELETONS_DIR}/<id>.png"
    )
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found; {expected_layout}.")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a folder; {expected_layout}.")
    folders = {}
    for name in (SHAPES_DIR, SKELETONS_DIR):
        folder = root / name
        if not folder.is_dir():
            present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
            listing = ", ".join(present[:10]) + (" …" if len(present) > 10 else "")
            raise DataError(
                f"{root}: no '{name}/' subfolder (found: {listing or 'nothing'}); "
                f"{expected_layout}."
            )
        folders[name] = folder
    skipped: list[Skipped] = []
    shapes = _index_by_id(folders[SHAPES_DIR], on_error, skipped)
    skeletons = _index_by_id(folders[SKELETONS_DIR], on_error, skipped)
    ambiguous = {s.id for s in skipped}

    problems = []
    for sample_id in sorted(shapes.keys() - skeletons.keys() - ambiguous):
        reason = (
            f"{shapes[sample_id]}: shape has no skeleton; expected "
            f"{folders[SKELETONS_DIR] / sample_id}.png (any image suffix)."
        )
        problems.append(reason)
        skipped.append(Skipped(sample_id, reason))
    for sample_id in sorted(skeletons.keys() - shapes.keys() - ambiguous):
        reason = (
            f"{skeletons[sample_id]}: skeleton has no shape; expected "
            f"{folders[SHAPES_DIR] / sample_id}.png (any image suffix)."
        )
        problems.append(reason)
        skipped.append(Skipped(sample_id, reason))
    if problems and on_error == "raise":
        raise DataError(_summarise(problems))

    pairs = [
        Pair(sample_id, shapes[sample_id], skeletons[sample_id])
        for sample_id in sorted(shapes.keys() & skeletons.keys())
    ]
    if not pairs:
        raise DataError(
            f"{root}: no complete shape/skeleton pair (all {len(skipped)} ids were skipped); "
            f"{expected_layout}.\n  " + _summarise([s.reason for s in skipped])
        )
    return pairs, skipped


def _warn_skipped(root: PathLike, skipped: list[Skipped], kept: int) -> None:
    if not skipped:
        return
    listed = "; ".join(s.reason for s in skipped[:3])
    more = f"; … ({len(skipped) - 3} more)" if len(skipped) > 3 else ""
    warnings.warn(
        f"{root}: skipped {len(skipped)} sample(s), kept {kept}: {listed}{more}",
        UserWarning,
        stacklevel=3,
    )


def find_pairs(root: PathLike, on_error: OnError = "raise") -> SkipList:
    """Lists the shape/skeleton pairs of a dataset folder, sorted by id.

    Only file names are checked here; :func:`load_pair` checks the images themselves.

    Args:
        root: The dataset folder, holding ``shapes/`` and ``skeletons/``.
        on_error: ``"raise"`` (default) raises on the first kind of problem found, listing
            every file with that problem; ``"skip"`` leaves incomplete or ambiguous pairs out,
            records them in the result's ``skipped`` attribute and warns once.

    Returns:
        A :class:`SkipList` (a ``list``) of :class:`Pair`, with ``.skipped``.

    Raises:
        DataError: ``root`` is missing or not a folder; ``shapes/`` or ``skeletons/`` is
            missing or holds no images; no pair is complete; or (``"raise"`` mode) a shape
            has no skeleton, a skeleton has no shape, or one id has two files.

    Example:
        >>> pairs = find_pairs("data/shapes_train")  # doctest: +SKIP
        >>> pairs[0]
        Pair(id='0000', shape_path=PosixPath('data/shapes_train/shapes/0000.png'), ...)
    """
    pairs, skipped = _find_pairs(root, on_error)
    _warn_skipped(root, skipped, len(pairs))
    return SkipList(pairs, skipped)


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Reads and checks one pair.

    Args:
        pair: A :class:`Pair` from :func:`find_pairs`.

    Returns:
        ``(shape, skeleton)``, two ``bool`` arrays of the same shape ``[H, W]``.

    Raises:
        DataError: An image is unreadable or not a supported image (see
            :func:`keras_skel.data.io.read_binary_image`), the two sizes differ (the message
            names both files and both sizes), or the skeleton has no foreground pixel.

    Example:
        >>> shape, skeleton = load_pair(find_pairs("data/shapes_train")[0])  # doctest: +SKIP
    """
    shape = read_binary_image(pair.shape_path)
    skeleton = read_binary_image(pair.skeleton_path)
    if shape.shape != skeleton.shape:
        raise DataError(
            f"Sample {pair.id!r}: size mismatch: {pair.shape_path} is "
            f"{shape.shape[1]}x{shape.shape[0]} (WxH) but {pair.skeleton_path} is "
            f"{skeleton.shape[1]}x{skeleton.shape[0]}; expected both images of a pair to "
            "have the same size."
        )
    if not skeleton.any():
        raise DataError(
            f"{pair.skeleton_path}: the skeleton is empty (no pixel above 50% of the range); "
            "expected a white skeleton on black."
        )
    return shape, skeleton


def load_folder(
    root: PathLike, on_error: OnError = "raise", progress: bool = False
) -> SkipList:
    """Reads a whole dataset folder into memory.

    Args:
        root: The dataset folder, holding ``shapes/`` and ``skeletons/``.
        on_error: ``"raise"`` (default) stops at the first bad pair; ``"skip"`` leaves out
            bad pairs (file-name problems and image problems alike), records them in the
            result's ``skipped`` attribute and warns once with the count.
        progress: Show a ``click`` progress bar on stderr.

    Returns:
        A :class:`SkipList` (a ``list``) of ``(id, shape, skeleton)`` tuples, ``shape`` and
        ``skeleton`` being ``bool [H, W]`` arrays, sorted by id; ``.skipped`` lists what was
        left out.

    Raises:
        DataError: As :func:`find_pairs` and :func:`load_pair`; in ``"skip"`` mode only
            when the folder itself is unusable or no sample is left.

    Example:
        >>> samples = load_folder("data/shapes_val", on_error="skip")  # doctest: +SKIP
        >>> sample_id, shape, skeleton = samples[0]  # doctest: +SKIP
    """
    pairs, skipped = _find_pairs(root, on_error)
    samples = []

    def load_one(pair):
        try:
            return pair, load_pair(pair), None
        except DataError as exc:
            return pair, None, exc

    # Decoding runs in a thread pool (OpenCV releases the GIL); results stay in id order.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        results = pool.map(load_one, pairs)
        if progress:
            import click

            with click.progressbar(results, length=len(pairs), label=f"Loading {root}",
                                   file=sys.stderr) as bar:
                results = list(bar)
        for pair, loaded, exc in results:
            if exc is not None:
                if on_error == "raise":
                    raise exc
                skipped.append(Skipped(pair.id, str(exc)))
                continue
            samples.append((pair.id, *loaded))
    if not samples:
        raise DataError(
            f"{root}: no usable sample (all {len(skipped)} were skipped).\n  "
            + _summarise([s.reason for s in skipped])
        )
    _warn_skipped(root, skipped, len(samples))
    return SkipList(samples, skipped)


def load_clean_shapes(root: PathLike, samples) -> list[np.ndarray] | None:
    """The clean shapes of a folder's samples, from its optional ``clean/`` subfolder.

    ``root/clean/<id>.<ext>`` is the noise-free shape of sample ``<id>``: the training target
    of a model that denoises the shape (``data.target: shape``). Without a ``clean/`` folder
    the result is None (the input shapes are their own targets).

    Args:
        root: the dataset folder.
        samples: ``(id, shape, skeleton)`` tuples from `load_folder`.

    Returns:
        bool ``[H, W]`` arrays in the order of `samples`, or None.

    Raises:
        DataError: ``clean/`` lacks a sample's id, or a clean shape's size differs from its
            input's.
    """
    folder = Path(root) / "clean"
    if not folder.is_dir():
        return None
    index = _index_by_id(folder, "raise", [])
    missing = [sample_id for sample_id, _, _ in samples if sample_id not in index]
    if missing:
        raise DataError(f"{folder}: no clean shape for {len(missing)} sample(s) "
                        f"({', '.join(missing[:_MAX_LISTED])}{' …' if len(missing) > _MAX_LISTED else ''}); "
                        "expected one clean/<id> image per shapes/<id> image, or no clean/ folder")
    out = []
    for sample_id, shape, _ in samples:
        clean = read_binary_image(index[sample_id])
        if clean.shape != shape.shape:
            raise DataError(f"{index[sample_id]}: size {clean.shape[1]}x{clean.shape[0]} differs from its shape's "
                            f"{shape.shape[1]}x{shape.shape[0]}")
        out.append(clean)
    return out


def list_images(path_or_dir: PathLike, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The image files a prediction input names.

    Args:
        path_or_dir: An image file (returned as is, whatever its suffix; reading checks it)
            or a folder, whose image files (:data:`~keras_skel.data.io.IMAGE_SUFFIXES`,
            not hidden, not in subfolders) are returned sorted by name.
        suffixes: lower-case suffixes to list instead of the image ones (e.g. ``(".npy",)``
            for volumes).

    Returns:
        A non-empty list of :class:`pathlib.Path`.

    Raises:
        DataError: The path does not exist, or the folder holds no image file.

    Example:
        >>> list_images("scans/")  # doctest: +SKIP
        [PosixPath('scans/a.png'), PosixPath('scans/b.jpg')]
    """
    path = Path(path_or_dir)
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataError(f"{path}: not found; expected an image file or a folder of images.")
    if not path.is_dir():
        raise DataError(f"{path}: not a regular file or folder; expected an image or a folder.")
    images = _image_files(path, suffixes)
    if not images:
        raise DataError(
            f"{path}: the folder holds no image file; expected files ending in "
            f"{', '.join(suffixes or IMAGE_SUFFIXES)}."
        )
    return images
