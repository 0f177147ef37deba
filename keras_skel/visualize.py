"""Pictures of results: overlays of shape, ground truth and prediction, and grids of them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["overlay", "save_grid", "save_figure", "LEGEND"]

LEGEND = "grey: shape · yellow: correct · green: missed GT · red: extra prediction"

_SHAPE = np.array([70, 70, 70], np.uint8)
_HIT = np.array([255, 220, 0], np.uint8)
_MISS = np.array([0, 200, 80], np.uint8)
_EXTRA = np.array([255, 40, 40], np.uint8)
_PRED = np.array([255, 40, 40], np.uint8)


def overlay(shape: np.ndarray, prediction: np.ndarray, ground_truth: np.ndarray | None = None) -> np.ndarray:
    """RGB picture: the shape in grey and the skeletons in colour.

    With a ground truth: predicted ∩ GT yellow, GT only green, prediction only red. Without one,
    the prediction is red.

    Args:
        shape: `[H, W]` binary input.
        prediction: `[H, W]` predicted skeleton.
        ground_truth: optional `[H, W]` GT skeleton.

    Returns:
        uint8 `[H, W, 3]`.
    """
    shape = np.asarray(shape, bool)
    pred = np.asarray(prediction, bool)
    out = np.zeros(shape.shape + (3,), np.uint8)
    out[shape] = _SHAPE
    if ground_truth is None:
        out[pred] = _PRED
        return out
    gt = np.asarray(ground_truth, bool)
    out[gt & ~pred] = _MISS
    out[pred & ~gt] = _EXTRA
    out[pred & gt] = _HIT
    return out


def save_grid(images: Sequence[np.ndarray], path: str | Path, titles: Sequence[str] | None = None,
              columns: int = 4, suptitle: str | None = None) -> Path:
    """Saves RGB images as a titled grid PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(images), 1)
    columns = min(columns, n)
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.ravel()[i]
        ax.imshow(image, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Lays out `fig`, writes it as a PNG at `path` (parents created), closes it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
