"""Training targets of the natural-image task (DeepFlux), made inside the tf.data pipeline.

The flux field is computed after the crop and the D4 transform, from the transformed skeleton,
so its vectors always point where the transformed image's skeleton is (rotating a flux image
would also need its vectors turned).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_skel.data.targets import flux_target
from keras_skel.errors import ConfigError

__all__ = ["NATURAL_TARGETS", "natural_target_fn", "target_channels"]

NATURAL_TARGETS = ("flux", "binary")


def target_channels(target: str) -> int:
    """Channels of the training target: flux 3 (dy, dx, skeleton mask), binary 1."""
    return {"flux": 3, "binary": 1}[_check_target(target)]


def _check_target(target: str) -> str:
    if target not in NATURAL_TARGETS:
        raise ConfigError(f"unknown natural-image target {target!r}; expected one of {', '.join(NATURAL_TARGETS)}")
    return target


def natural_target_fn(target: str = "flux", radius: int = 7):
    """A map from a `[h, w, 1]` skeleton tensor to the training target.

    Args:
        target: `flux`: `[h, w, 3]`, the context flux of `data.targets.flux_target` (radius
            `radius`) and the skeleton mask (what `BalancedFluxLoss` takes); `binary`:
            `[h, w, 1]`, the skeleton dilated by a disk of radius `radius` (the
            classification baseline of DeepFlux's ablation, trained on "the same dilated
            ground truth").
        radius: context radius r (paper: 7).

    Returns:
        A function for `data.pipeline.training_pipeline(target_fn=...)`.

    Example:
        >>> skel = np.zeros((16, 16, 1), np.float32); skel[8, 3:13] = 1
        >>> tuple(natural_target_fn("flux")(tf.constant(skel)).shape)
        (16, 16, 3)
    """
    _check_target(target)
    radius = int(radius)
    if radius < 1:
        raise ConfigError(f"the context radius must be ≥ 1; got {radius}")

    if target == "binary":
        from keras_skel.ops.morphology import binary_dilation

        def binary(skeleton):
            dilated = binary_dilation(tf.cast(skeleton[..., 0] > 0, tf.uint8)[None], radius)[0]
            return tf.cast(dilated, tf.float32)[..., None]

        return binary

    def make(skeleton):
        skeleton = skeleton[..., 0] > 0
        return np.concatenate([flux_target(skeleton, radius), skeleton[..., None]], axis=-1).astype(np.float32)

    def flux(skeleton):
        out = tf.numpy_function(make, [skeleton], tf.float32, stateful=False)
        out.set_shape(skeleton.shape[:2] + (3,))
        return out

    return flux
