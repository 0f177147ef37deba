"""The differentiable soft skeleton of clDice: iterated min/max-pool morphology (`keras.ops`).

Written with `keras.ops` (not `tf.*`) so the loss that uses it runs on every Keras backend.
2-D tensors are `[N, H, W, C]`, 3-D `[N, D, H, W, C]` (channels last), values in 0..1.

Soft erosion is a min-pool over the cross-shaped neighbourhood (the minimum of 1-D min-pools
along each spatial axis, 3 wide), soft dilation a 3×3 (3×3×3) max-pool; pooling pads with
nothing (the outside is ignored, as max-pooling with -inf padding). The skeleton is built as
Shit et al. define it: `S = relu(x − open(x))`, then `iterations` times: `x ← erode(x)`,
`δ = relu(x − open(x))`, `S ← S + relu(δ − S·δ)`. Its cost (memory and time) grows with
`iterations` × classes × voxels, which is the point of comparison with the Skeleton Recall loss.

Reference:
    Shit et al., "clDice — a Novel Topology-Preserving Loss Function for Tubular Structure
    Segmentation", CVPR 2021 (Algorithm 1).
"""

from __future__ import annotations

from keras import ops

__all__ = ["soft_erode", "soft_dilate", "soft_open", "soft_skeleton"]


def _spatial_rank(x) -> int:
    rank = len(x.shape) - 2
    if rank not in (2, 3):
        raise ValueError(f"expected [N, H, W, C] or [N, D, H, W, C]; got shape {tuple(x.shape)}")
    return rank


def soft_erode(x):
    """Soft (min-pool) erosion with the cross-shaped 3-neighbourhood, per channel."""
    rank = _spatial_rank(x)
    eroded = None
    for axis in range(rank):
        window = [1] * rank
        window[axis] = 3
        pooled = -ops.max_pool(-x, pool_size=tuple(window), strides=1, padding="same")
        eroded = pooled if eroded is None else ops.minimum(eroded, pooled)
    return eroded


def soft_dilate(x):
    """Soft (max-pool) dilation with the full 3×3 (3×3×3) neighbourhood, per channel."""
    rank = _spatial_rank(x)
    return ops.max_pool(x, pool_size=(3,) * rank, strides=1, padding="same")


def soft_open(x):
    """Soft opening: `soft_dilate(soft_erode(x))`."""
    return soft_dilate(soft_erode(x))


def soft_skeleton(x, iterations: int = 10):
    """The clDice soft skeleton of probabilities `x` (Shit et al., Algorithm 1).

    Args:
        x: probabilities, `[N, H, W, C]` or `[N, D, H, W, C]`.
        iterations: erosion steps; must exceed half the widest structure's thickness for the
            skeleton to reach its centre (Shit et al. use 3–10 by dataset).

    Returns:
        A tensor like `x`, values in 0..1: high on the soft centre lines.

    Raises:
        ValueError: for another rank or `iterations < 0`.

    Example:
        >>> import numpy as np
        >>> bar = np.zeros((1, 7, 9, 1), "float32"); bar[0, 2:5, 1:8, 0] = 1
        >>> np.asarray(soft_skeleton(bar, 3))[0, :, :, 0].sum(axis=1).tolist()
        [0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0]
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    _spatial_rank(x)
    skeleton = ops.relu(x - soft_open(x))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = ops.relu(x - soft_open(x))
        skeleton = skeleton + ops.relu(delta - skeleton * delta)
    return skeleton
