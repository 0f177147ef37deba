"""`predict_files`: skeletons (and overlay pictures) for image files, written to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from keras_skel.data.folders import list_images
from keras_skel.data.io import read_binary_image, write_mask_png
from keras_skel.errors import DataError
from keras_skel.inference import load
from keras_skel.visualize import overlay

__all__ = ["predict_files"]


def predict_files(
    model: Any,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    overlay_pictures: bool = False,
    threshold: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Writes `<stem>.png` (white 1-px skeleton on black) for every input image.

    Args:
        model: anything `keras_skel.load` accepts.
        inputs: image files and/or folders of images.
        out_dir: output folder (created).
        overlay_pictures: also write `<stem>_overlay.png` (shape grey, skeleton red).
        threshold: overrides the model's threshold.
        overwrite: replace existing outputs instead of refusing.
        progress: show a progress bar.

    Returns:
        The skeleton paths written.

    Raises:
        DataError: no images, two inputs with the same stem, or outputs that exist already
            (without `overwrite`).
    """
    files: list[Path] = []
    for item in inputs:
        files.extend(list_images(item))
    if not files:
        raise DataError("no input images given")
    out_dir = Path(out_dir)
    targets = {}
    for path in files:
        dest = out_dir / f"{path.stem}.png"
        if dest in targets:
            raise DataError(f"{path} and {targets[dest]} would both be written to {dest}; "
                            "predict them into different --out folders")
        targets[dest] = path
    if not overwrite:
        existing = [d for d in targets if d.exists() or (overlay_pictures and _overlay_path(d).exists())]
        if existing:
            raise DataError(f"{len(existing)} output file(s) exist already, e.g. {existing[0]}; "
                            "pass --overwrite to replace them or choose another --out")
    skeletonizer = load(model, threshold)
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
            skeleton = skeletonizer.skeletonize(shape)
            write_mask_png(dest, skeleton)
            if overlay_pictures:
                _write_rgb(_overlay_path(dest), overlay(shape, skeleton))
            written.append(dest)
    return written


def _overlay_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.stem}_overlay.png")


def _write_rgb(path: Path, rgb) -> None:
    import cv2

    if not cv2.imwrite(str(path), rgb[..., ::-1]):
        raise DataError(f"could not write {path}")


class _NoBar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        return False
