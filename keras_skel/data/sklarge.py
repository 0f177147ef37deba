"""Readers for the natural-image skeleton benchmarks DeepFlux trains and scores on.

SK-LARGE, SK506 (SK-SMALL), WH-SYMMAX, SYM-PASCAL and SYMMAX300 are published as RGB images
plus one MATLAB ``.mat`` ground-truth file per image. What is known about their layout comes
from the public code that loads them (no data can be downloaded here):

- **Folders**: ``<ROOT>/images/{train,test}/<id>.jpg`` and
  ``<ROOT>/groundTruth/{train,test}/<id>.mat``. Found in YukangWang/DeepFlux ``README.md``
  (``./eval.sh ../../data/SK-LARGE/images/test ../../data/SK-LARGE/groundTruth/test``),
  zeakey/DeepSkeleton ``tools/aug_data/aug_sk506_3_2.m`` (SK506: ``images/train/*.jpg``,
  ``groundTruth/train/<id>.mat``, ``images/test/*.jpg``) and JianqiangWan/pyDeepFlux
  ``datasets.py`` (``data/SymPASCAL-by-KZ/images/test/``). For WH-SYMMAX and SYMMAX300 the same
  layout is assumed, not seen: only their folder names (``wh-symmax``, ``SYMMAX300``) and
  ground-truth variable names were found.
- **Ground-truth variables** (``evaluation.m`` of YukangWang/DeepFlux,
  ``examples/DeepFlux/evaluation/evaluation.m``, which tries them in this order):
  ``symmetry`` (SK-LARGE, SK506, SYM-PASCAL), ``sym`` ("for wh-symmax"), ``gt`` ("for
  symmax300"); each is an H×W matrix read as ``logical(...)``. SK-LARGE and SK506 also hold
  ``edge`` (the object boundary, H×W): zeakey/DeepSkeleton ``aug_sk506_3_2.m`` reads
  ``gt.edge`` and ``gt.symmetry`` and derives the scale map as ``bwdist(edge)`` on the skeleton;
  charlio23/DeepSkeleton-pytorch ``convert_test_set.py`` reads ``loadmat(...)['edge']`` and
  ``['symmetry']`` of ``SK-LARGE/groundTruth/test/*.mat``.

`read_skeleton_benchmark` yields `BenchmarkSample` tuples ``(id, image, skeleton, radius)``:
RGB uint8 ``[H, W, 3]``, bool ``[H, W]``, and, where the file holds ``edge``, a float32
``[H, W]`` map of the distance from each skeleton pixel to the nearest edge pixel (0 off the
skeleton), else ``None``. `convert_benchmark` writes the toolkit's layout; `augment_paper`
gives the scale × rotation × flip variants of the papers' offline augmentation.

Command line::

    keras-skel data convert --from sk-large data/SK-LARGE --split test --out out/sklarge-test
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Union

import cv2
import numpy as np
import scipy.io
from scipy.ndimage import distance_transform_edt
from skimage.morphology import skeletonize

from keras_skel.data.io import write_mask_png
from keras_skel.errors import DataError

__all__ = [
    "BenchmarkLayout",
    "BenchmarkSample",
    "LAYOUTS",
    "PAPER_SCALES",
    "PAPER_ROTATIONS",
    "PAPER_FLIPS",
    "benchmark_ids",
    "read_ground_truth",
    "read_skeleton_benchmark",
    "convert_benchmark",
    "augment_paper",
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class BenchmarkLayout:
    """Where one benchmark keeps its files and what its ``.mat`` files hold.

    Attributes:
        name: The key in `LAYOUTS`, e.g. ``"sk-large"``.
        folder: The folder name the published archive / training code uses (``SK-LARGE``).
        skeleton_keys: ``.mat`` variable names that hold the skeleton, tried in order; the first
            is the one found for this dataset, the others are what ``evaluation.m`` also accepts.
        edge_key: The variable holding the object boundary, if the dataset has one.
        image_suffixes: Image extensions tried, in order (``.jpg`` is the one seen in code).
        image_dir: Sub-path of the images of a split, ``{split}`` is replaced.
        gt_dir: Sub-path of the ``.mat`` files of a split.
        verified: What of this layout was seen in public code (documentation only).
    """

    name: str
    folder: str
    skeleton_keys: tuple[str, ...]
    edge_key: str | None
    image_suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
    image_dir: str = "images/{split}"
    gt_dir: str = "groundTruth/{split}"
    verified: str = ""


# One row per benchmark: the readers below are table-driven, so a new benchmark is a new row.
# Every row accepts all three variable names evaluation.m accepts, its own first, because
# which name a re-packaged copy of a dataset uses was only seen for the dataset named there.
LAYOUTS: dict[str, BenchmarkLayout] = {
    layout.name: layout
    for layout in (
        BenchmarkLayout("sk-large", "SK-LARGE", ("symmetry", "sym", "gt"), "edge",
                        verified="folders, .jpg, symmetry + edge (DeepFlux README, DeepSkeleton-pytorch)"),
        BenchmarkLayout("sk506", "SK506", ("symmetry", "sym", "gt"), "edge",
                        verified="folders, .jpg, symmetry + edge (DeepSkeleton aug_sk506_3_2.m)"),
        BenchmarkLayout("sym-pascal", "SymPASCAL-by-KZ", ("symmetry", "sym", "gt"), None,
                        verified="images/test (pyDeepFlux); variable by evaluation.m's default only"),
        BenchmarkLayout("wh-symmax", "wh-symmax", ("sym", "symmetry", "gt"), None,
                        verified="variable 'sym' (DeepFlux evaluation.m); folders assumed"),
        BenchmarkLayout("symmax300", "SYMMAX300", ("gt", "symmetry", "sym"), None,
                        verified="variable 'gt' (DeepFlux evaluation.m); folders assumed"),
    )
}
_ALIASES = {"sklarge": "sk-large", "sk-small": "sk506", "sksmall": "sk506", "sympascal": "sym-pascal",
            "whsymmax": "wh-symmax", "wh_symmax": "wh-symmax", "symmax": "symmax300"}

# The offline augmentation of SK-LARGE's augmentation.m as DeepSkeleton's aug_sk506_3_2.m
# implements it: scales [0.8 1.0 1.2], orients [0 90 180 270], flips [0 1 2] = none, fliplr,
# flipud (36 variants). Some papers describe only two flips; pass flips=("none", "lr") for 24.
PAPER_SCALES = (0.8, 1.0, 1.2)
PAPER_ROTATIONS = (0, 90, 180, 270)
PAPER_FLIPS = ("none", "lr", "ud")


class BenchmarkSample(NamedTuple):
    """One image of a benchmark.

    Attributes:
        id: The file stem shared by image and ``.mat`` file.
        image: RGB, uint8, ``[H, W, 3]``.
        skeleton: bool, ``[H, W]``.
        radius: float32 ``[H, W]``: distance to the nearest ``edge`` pixel on the skeleton, 0
            elsewhere; ``None`` when the ``.mat`` file holds no edge map.
    """

    id: str
    image: np.ndarray
    skeleton: np.ndarray
    radius: np.ndarray | None = None


def _layout(name: str) -> BenchmarkLayout:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in LAYOUTS:
        raise DataError(f"unknown skeleton benchmark {name!r}; expected one of {', '.join(LAYOUTS)}")
    return LAYOUTS[key]


def _split_dirs(root: Path, layout: BenchmarkLayout, split: str) -> tuple[Path, Path]:
    image_dir = root / layout.image_dir.format(split=split)
    gt_dir = root / layout.gt_dir.format(split=split)
    for folder, what in ((image_dir, "images"), (gt_dir, ".mat ground truth")):
        if not folder.is_dir():
            raise DataError(f"{folder}: missing folder; a {layout.folder} download keeps its {split} {what} "
                            f"there ({layout.image_dir}/ and {layout.gt_dir}/ under the dataset root)")
    return image_dir, gt_dir


def _matrix(path: Path, key: str, value) -> np.ndarray:
    array = np.asarray(value)
    # A MATLAB struct or cell array (object / record dtype) is not the H×W matrix
    # evaluation.m's logical(gt.<key>) expects; say so rather than guess which element to take.
    if array.dtype.kind not in "biuf" or array.ndim != 2:
        raise DataError(f"{path}: variable {key!r} must be an H×W numeric or logical matrix; "
                        f"got dtype {array.dtype}, shape {array.shape}")
    return array


def read_ground_truth(path: PathLike, layout: BenchmarkLayout | str = "sk-large"
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads one benchmark ``.mat`` file.

    Args:
        path: The ``.mat`` file (MATLAB v5/v7; v7.3 HDF5 files are not read).
        layout: A `BenchmarkLayout` or its name; says which variable names to try.

    Returns:
        ``(skeleton, radius)``: bool ``[H, W]`` and float32 ``[H, W]`` (``None`` without an
        edge variable).

    Raises:
        DataError: the file is missing or unreadable, holds none of the layout's skeleton
            variables (the message lists the ones it holds), or its matrices disagree in size.

    Example:
        >>> skeleton, radius = read_ground_truth("SK-LARGE/groundTruth/test/0a1b.mat")  # doctest: +SKIP
    """
    path = Path(path)
    layout = layout if isinstance(layout, BenchmarkLayout) else _layout(layout)
    if not path.is_file():
        raise DataError(f"{path}: missing ground-truth file")
    try:
        content = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: a MATLAB v7.3 (HDF5) file; save it with -v7 to read it") from None
    except Exception as err:  # scipy raises several types for a corrupt file
        raise DataError(f"{path}: not a readable .mat file: {err}") from None
    found = sorted(k for k in content if not k.startswith("__"))
    key = next((k for k in layout.skeleton_keys if k in content), None)
    if key is None:
        raise DataError(f"{path}: no skeleton variable; expected one of {', '.join(layout.skeleton_keys)} "
                        f"({layout.folder}), found {', '.join(found) or 'no variables'}")
    skeleton = _matrix(path, key, content[key]) != 0  # evaluation.m: logical(gt.<key>)
    radius = None
    if layout.edge_key and layout.edge_key in content:
        edge = _matrix(path, layout.edge_key, content[layout.edge_key]) != 0
        if edge.shape != skeleton.shape:
            raise DataError(f"{path}: {layout.edge_key!r} is {edge.shape} but {key!r} is {skeleton.shape}")
        # bwdist(edge) as DeepSkeleton's aug script computes the scale, raised to 1 on the
        # skeleton (its `scale(scale<1 & symmetry~=0) = 1`); kept as a radius, not doubled.
        distance = distance_transform_edt(~edge) if edge.any() else np.zeros(edge.shape)
        radius = np.where(skeleton, np.maximum(distance, 1.0), 0.0).astype(np.float32)
    return skeleton, radius


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey images come back as 3 equal channels
    if image is None:
        raise DataError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def benchmark_ids(root: PathLike, name: str, split: str = "test") -> list[str]:
    """The sample ids of a split: the stems of its ``.mat`` files, sorted.

    Raises:
        DataError: the split's folders are missing, hold no ``.mat`` file, or an id has no image.
    """
    root, layout = Path(root), _layout(name)
    image_dir, gt_dir = _split_dirs(root, layout, split)
    # evaluation.m enumerates dir([gtDir '*.mat']): the ground truth defines the split.
    ids = sorted(p.stem for p in gt_dir.glob("*.mat") if not p.name.startswith("."))
    if not ids:
        raise DataError(f"{gt_dir}: no .mat ground-truth files")
    _image_path(image_dir, layout, ids[0])  # fail early on a wrong extension
    return ids


def _image_path(image_dir: Path, layout: BenchmarkLayout, sample_id: str) -> Path:
    for suffix in layout.image_suffixes:
        for candidate in (image_dir / f"{sample_id}{suffix}", image_dir / f"{sample_id}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{image_dir / sample_id}{layout.image_suffixes[0]}: missing image for ground truth "
                    f"{sample_id}.mat (tried {', '.join(layout.image_suffixes)})")


def read_skeleton_benchmark(root: PathLike, name: str, split: str = "test") -> Iterator[BenchmarkSample]:
    """Yields the samples of one split of a published skeleton benchmark.

    Args:
        root: The dataset folder as unpacked (``data/SK-LARGE``), holding ``images/`` and
            ``groundTruth/``.
        name: ``sk-large``, ``sk506`` (or ``sk-small``), ``sym-pascal``, ``wh-symmax`` or
            ``symmax300`` (case-insensitive; ``sklarge``, ``sympascal`` … also work).
        split: ``train`` or ``test`` (any folder name under ``images/`` works).

    Returns:
        An iterator of `BenchmarkSample` ``(id, image, skeleton, radius)`` in id order; files
        are read one at a time.

    Raises:
        DataError: a folder or image is missing, a ``.mat`` file is malformed, or an image and
            its skeleton differ in size; the message names the file.

    Example:
        >>> for sample_id, image, skeleton, radius in read_skeleton_benchmark(
        ...         "data/SK-LARGE", "sk-large", "test"):  # doctest: +SKIP
        ...     print(sample_id, image.shape, skeleton.sum())
    """
    root, layout = Path(root), _layout(name)
    image_dir, gt_dir = _split_dirs(root, layout, split)
    for sample_id in benchmark_ids(root, name, split):
        image_path = _image_path(image_dir, layout, sample_id)
        skeleton, radius = read_ground_truth(gt_dir / f"{sample_id}.mat", layout)
        image = _read_rgb(image_path)
        if image.shape[:2] != skeleton.shape:
            raise DataError(f"{gt_dir / sample_id}.mat: skeleton is {skeleton.shape[0]}×{skeleton.shape[1]} "
                            f"but {image_path} is {image.shape[0]}×{image.shape[1]}")
        yield BenchmarkSample(sample_id, image, skeleton, radius)


def convert_benchmark(root: PathLike, name: str, split: str, out_dir: PathLike, overwrite: bool = False) -> int:
    """Writes one split as ``out_dir/images/<id>.png`` (RGB) and ``out_dir/skeletons/<id>.png``.

    Skeletons are written as white-on-black 8-bit PNGs (`write_mask_png`); where the ground
    truth has an edge map, its radius map goes to ``out_dir/radii/<id>.npy`` (float32).

    Args:
        root: The dataset folder (see `read_skeleton_benchmark`).
        name: The benchmark name.
        split: ``train`` or ``test``.
        out_dir: Output folder.
        overwrite: Write into output subfolders that already hold files.

    Returns:
        The number of samples written.

    Raises:
        DataError: as `read_skeleton_benchmark`, or ``out_dir`` already holds a dataset.

    Example:
        >>> convert_benchmark("data/SK-LARGE", "sk-large", "test", "out/sklarge-test")  # doctest: +SKIP
        746
    """
    out = Path(out_dir)
    for sub in ("images", "skeletons", "radii"):
        folder = out / sub
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise DataError(f"{folder} already holds files; choose an empty output folder or pass overwrite")
    count = 0
    for sample in read_skeleton_benchmark(root, name, split):
        image_path = out / "images" / f"{sample.id}.png"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(image_path), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)):
            raise DataError(f"could not write {image_path}")
        write_mask_png(out / "skeletons" / f"{sample.id}.png", sample.skeleton)
        if sample.radius is not None:
            (out / "radii").mkdir(parents=True, exist_ok=True)
            np.save(out / "radii" / f"{sample.id}.npy", sample.radius)
        count += 1
    return count


def _rescale_skeleton(skeleton: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Rescale, then re-thin: a bilinear resize marks every output pixel whose footprint
    # touches a skeleton pixel (> 0), so branches stay 8-connected at both 0.8 and 1.2, and
    # thinning brings the 1-2 px wide result back to one pixel. Rescaling the points alone
    # would leave holes when upscaling (neighbours land 1.2 px apart) and need re-drawing.
    grown = cv2.resize(skeleton.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0
    return skeletonize(grown)


_FLIPS = {"none": lambda a: a, "lr": lambda a: a[:, ::-1], "ud": lambda a: a[::-1]}


def augment_paper(image: np.ndarray, skeleton: np.ndarray, scales=PAPER_SCALES, rotations=PAPER_ROTATIONS,
                  flips=PAPER_FLIPS) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """The offline augmentation of the skeleton papers: every scale × rotation × flip.

    Order as in DeepSkeleton's ``aug_sk506_3_2.m``: resize (bilinear), then rotate
    counter-clockwise by a multiple of 90° (MATLAB ``imrotate``, exact), then flip. The
    defaults give 3 × 4 × 3 = 36 variants; ``flips=("none", "lr")`` gives 24.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` image.
        skeleton: ``[H, W]`` skeleton (nonzero = skeleton).
        scales: Resize factors.
        rotations: Angles in degrees, multiples of 90.
        flips: Any of ``"none"``, ``"lr"`` (left-right), ``"ud"`` (up-down).

    Returns:
        An iterator of ``(tag, image, skeleton)``, tag like ``"s0.8_o90_flr"``; skeletons are
        bool and one pixel thin.

    Raises:
        ValueError: an unknown flip, a rotation that is not a multiple of 90, or mismatched sizes.

    Example:
        >>> variants = list(augment_paper(image, skeleton, flips=("none", "lr")))  # doctest: +SKIP
        >>> len(variants)
        24
    """
    image, skeleton = np.asarray(image), np.asarray(skeleton) != 0
    if image.shape[:2] != skeleton.shape:
        raise ValueError(f"image {image.shape[:2]} and skeleton {skeleton.shape} differ in size")
    bad = [f for f in flips if f not in _FLIPS] + [r for r in rotations if r % 90]
    if bad:
        raise ValueError(f"unsupported flips/rotations {bad}; flips are {list(_FLIPS)}, rotations multiples of 90")
    h, w = skeleton.shape
    for scale in scales:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 takes (width, height)
        scaled_image = image if scale == 1 else cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        scaled_skeleton = skeletonize(skeleton) if scale == 1 else _rescale_skeleton(skeleton, size)
        for angle in rotations:
            k = (angle // 90) % 4
            rotated_image, rotated_skeleton = np.rot90(scaled_image, k), np.rot90(scaled_skeleton, k)
            for flip in flips:
                yield (f"s{scale:g}_o{angle}_f{flip}", np.ascontiguousarray(_FLIPS[flip](rotated_image)),
                       np.ascontiguousarray(_FLIPS[flip](rotated_skeleton)))
