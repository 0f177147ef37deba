"""`predict_files`: skeletons (and overlay pictures) for image files, written to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_skel.data.folders import list_images
from keras_skel.data.io import read_binary_image, write_mask_png
from keras_skel.errors import DataError
from keras_skel.inference import ClassicalSkeletonizer, load
from keras_skel.visualize import overlay

__all__ = ["predict_files"]


def predict_files(
    model: Any,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    overlay_pictures: bool = False,
    save_probability: bool = False,
    threshold: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    tta: bool = False,
) -> list[Path]:
    """Writes `<stem>.png` (white 1-px skeleton on black) for every input image.

    Args:
        model: anything `keras_skel.load` accepts.
        inputs: image files and/or folders of images.
        out_dir: output folder (created).
        overlay_pictures: also write `<stem>_overlay.png` (shape grey, skeleton red).
        save_probability: also write `<stem>_probability.png`, the probability map as a 16-bit
            grey PNG (value / 65535 = probability); models without one (classical) are refused.
        threshold: overrides the model's threshold.
        overwrite: replace existing outputs instead of refusing.
        progress: show a progress bar.
        tta: D4 test-time augmentation (Keras models).

    Returns:
        The skeleton paths written.

    Raises:
        DataError: no images, two inputs with the same stem, or outputs that exist already
            (without `overwrite`).
    """
    files: list[Path] = []
    for item in inputs:
        for path in list_images(item):
            if path.resolve() not in {f.resolve() for f in files}:
                files.append(path)
    if not files:
        raise DataError("no input images given")
    out_dir = Path(out_dir)
    targets: dict[Path, Path] = {}  # skeleton path -> input
    owners: dict[Path, Path] = {}  # every file this call writes -> its input
    for path in files:
        dest = out_dir / f"{path.stem}.png"
        outputs = [dest]
        if overlay_pictures:
            outputs.append(_overlay_path(dest))
        if save_probability:
            outputs.append(_probability_path(dest))
        for output in outputs:
            if output in owners:
                raise DataError(f"{path} and {owners[output]} would both be written to {output}; "
                                "predict them into different --out folders")
            owners[output] = path
        targets[dest] = path
    if not overwrite:
        existing = [o for o in owners if o.exists()]
        if existing:
            raise DataError(f"{len(existing)} output file(s) exist already, e.g. {existing[0]}; "
                            "pass --overwrite to replace them or choose another --out")
    skeletonizer = load(model, threshold, tta=tta)
    if save_probability and isinstance(skeletonizer, ClassicalSkeletonizer):
        raise DataError("--save-probability needs a learned model; 'classical' has no probability map")
    written = []
    items = list(targets.items())
    if progress:
        import click

        bar = click.progressbar(items, label=f"predicting with {skeletonizer.name}")
    else:
        bar = _NoBar(items)
    with bar as iterator:
        for dest, source in iterator:
            shape = read_binary_image(source)
            result = skeletonizer.predict(shape)
            write_mask_png(dest, result.skeleton)
            if overlay_pictures:
                _write_image(_overlay_path(dest), overlay(shape, result.skeleton)[..., ::-1])
            if save_probability:
                scaled = np.round(np.clip(result.probability, 0, 1) * 65535).astype(np.uint16)
                _write_image(_probability_path(dest), scaled)
            written.append(dest)
    return written


def _overlay_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.stem}_overlay.png")


def _probability_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.stem}_probability.png")


def _write_image(path: Path, image) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise DataError(f"could not write {path}")


class _NoBar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        return False
