"""Loss math as pure `keras.ops` functions (the Loss classes and metrics reuse these).

Each function maps `y_true`, `y_pred` of shape `[N, ...spatial, C]` (probabilities in 0..1) to
a per-sample value of shape `[N]`, averaged over all non-batch axes.
"""

from __future__ import annotations

from keras import ops

__all__ = ["weighted_focal", "soft_dice", "focal_dice"]


def _sample_axes(x) -> list[int]:
    return list(range(1, len(x.shape)))


def weighted_focal(y_true, y_pred, w_pos: float = 50.0, w_neg: float = 0.75, gamma: float = 2.0,
                   epsilon: float = 1e-7):
    """Weighted focal loss, mean over pixels.

    `FL = −w_pos·y·(1−p)^γ·log p − w_neg·(1−y)·p^γ·log(1−p)`: the focal loss of Lin et al.
    with separate class weights, as Panichev & Voloshyna (CVPRW 2019) use for the rare
    skeleton class (their best: w_pos 50, w_neg 0.75, γ 2).

    Args:
        y_true: targets in {0, 1} (soft targets are accepted).
        y_pred: probabilities.
        w_pos: weight of positive (skeleton) pixels.
        w_neg: weight of negative pixels.
        gamma: focusing parameter.
        epsilon: probabilities are clipped to [ε, 1−ε] before the logarithms.

    Returns:
        Per-sample loss, shape `[N]`.

    Example:
        >>> float(weighted_focal(ops.ones((1, 1)), ops.full((1, 1), 0.5))[0])  # 50·0.25·ln 2
        8.664339...
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    pos = -w_pos * y_true * ops.power(1.0 - p, gamma) * ops.log(p)
    neg = -w_neg * (1.0 - y_true) * ops.power(p, gamma) * ops.log(1.0 - p)
    return ops.mean(pos + neg, axis=_sample_axes(y_pred))


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice loss `1 − (2·Σ y·p + s) / (Σ y + Σ p + s)` per sample.

    Args:
        y_true: targets in {0, 1}.
        y_pred: probabilities.
        smooth: the additive smoothing term s (ε = 1 by default), which makes an empty
            target with an empty prediction a loss of 0.

    Returns:
        Per-sample loss, shape `[N]`.

    Example:
        >>> float(soft_dice(ops.ones((1, 2)), ops.ones((1, 2)))[0])
        0.0
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = _sample_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def focal_dice(y_true, y_pred, focal_weight: float = 1.0, dice_weight: float = 1.0,
               w_pos: float = 50.0, w_neg: float = 0.75, gamma: float = 2.0, smooth: float = 1.0):
    """`focal_weight · weighted_focal + dice_weight · soft_dice`, per sample."""
    return focal_weight * weighted_focal(y_true, y_pred, w_pos, w_neg, gamma) + dice_weight * soft_dice(
        y_true, y_pred, smooth
    )
