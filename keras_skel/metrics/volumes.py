"""Scores of skeletal volumes: IoU, and the quantize-and-dilate baseline of SkeletonNet's Table 2."""

from __future__ import annotations

import numpy as np

__all__ = ["volume_iou", "quantize_dilate"]


def volume_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """|P ∩ T| / |P ∪ T| of two boolean (or 0/1) volumes of one shape; 1.0 when both are empty.

    Example:
        >>> a = np.zeros((4, 4, 4), bool); a[0, 0, :2] = True
        >>> b = np.zeros((4, 4, 4), bool); b[0, 0, 1:3] = True
        >>> round(volume_iou(a, b), 4)
        0.3333
    """
    prediction, truth = np.asarray(prediction).astype(bool), np.asarray(truth).astype(bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"volume_iou needs volumes of one shape; got {prediction.shape} and {truth.shape}")
    union = np.count_nonzero(prediction | truth)
    return 1.0 if union == 0 else float(np.count_nonzero(prediction & truth) / union)


def quantize_dilate(points: np.ndarray, resolution: int, dilation: int = 1) -> np.ndarray:
    """The Table 2 baseline: points in the unit cube quantized to a `resolution`³ grid, enclosed
    cavities filled and dilated by `dilation` voxels — the very recipe of the ground truth V*
    (`data.volumes.skeletal_volume`), applied to predicted points. uint8 `[R, R, R]`."""
    from keras_skel.data.volumes import skeletal_volume

    return skeletal_volume(np.asarray(points, np.float32).reshape(-1, 3), resolution, dilation)
