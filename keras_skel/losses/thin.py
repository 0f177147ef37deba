"""Keras `Loss` for thin-structure segmentation: Dice + CE, Skeleton Recall, clDice.

One class, `ThinSegmentationLoss`, weighs the four terms of `functional.thin_segmentation`;
the registry names are its common settings:

- `dice_ce`: Dice + cross-entropy (nnU-Net's default loss, the baseline).
- `skeleton_recall`: Dice + CE + `recall_weight` · Skeleton Recall (Kirchhoff et al., ECCV 2024).
- `cldice`: Dice + CE + `cldice_weight` · soft clDice, the same budget's competitor.
- `dice_cldice`: `(1 − α)·Dice + α·clDice`, clDice as Shit et al. (CVPR 2021) train it.
- `thin_segmentation`: every weight free.

Works for 2-D `[N, H, W, C]` and 3-D `[N, D, H, W, C]`, binary (C = 1, sigmoid) and
multi-class (softmax, channel 0 = background), and on each output of a deep-supervised model
(targets downsampled by the pipeline).
"""

from __future__ import annotations

import keras

from keras_skel.losses import functional
from keras_skel.registry import LOSSES

__all__ = ["ThinSegmentationLoss"]


@LOSSES.register("thin_segmentation")
@keras.saving.register_keras_serializable(package="keras_skel")
class ThinSegmentationLoss(keras.losses.Loss):
    """Dice + cross-entropy + Skeleton Recall + clDice, weighted; see
    `functional.thin_segmentation`.

    Args:
        dice_weight: weight of the soft Dice term (foreground classes).
        ce_weight: weight of the cross-entropy term.
        recall_weight: weight of the Skeleton Recall term; > 0 makes the input pipeline put
            the tubed skeleton into `y_true` (`uses_tubed_skeleton`).
        cldice_weight: weight of the soft clDice term.
        cldice_iterations: soft-skeleton iterations of clDice.
        smooth: smoothing ε of the ratios.
        **kwargs: forwarded to `keras.losses.Loss`.

    Example:
        >>> loss = ThinSegmentationLoss(recall_weight=1.0)
        >>> y_true = keras.ops.ones((1, 8, 8, 2))       # segmentation, then tubed skeleton
        >>> value = loss(y_true, keras.ops.full((1, 8, 8, 1), 0.9))
    """

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0, recall_weight: float = 0.0,
                 cldice_weight: float = 0.0, cldice_iterations: int = 10, smooth: float = 1.0,
                 name: str = "thin_segmentation", **kwargs):
        super().__init__(name=name, **kwargs)
        weights = dict(dice_weight=dice_weight, ce_weight=ce_weight, recall_weight=recall_weight,
                       cldice_weight=cldice_weight)
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(f"loss weights must be >= 0 and not all 0, got {weights}")
        if cldice_iterations < 0:
            raise ValueError(f"cldice_iterations must be >= 0, got {cldice_iterations}")
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.recall_weight = recall_weight
        self.cldice_weight = cldice_weight
        self.cldice_iterations = cldice_iterations
        self.smooth = smooth

    @property
    def uses_tubed_skeleton(self) -> bool:
        """Whether `y_true` must carry the tubed skeleton after the segmentation."""
        return bool(self.recall_weight)

    def call(self, y_true, y_pred):
        return functional.thin_segmentation(y_true, y_pred, self.dice_weight, self.ce_weight, self.recall_weight,
                                            self.cldice_weight, self.cldice_iterations, self.smooth)

    def get_config(self):
        config = super().get_config()
        config.update(dice_weight=self.dice_weight, ce_weight=self.ce_weight, recall_weight=self.recall_weight,
                      cldice_weight=self.cldice_weight, cldice_iterations=self.cldice_iterations,
                      smooth=self.smooth)
        return config


@LOSSES.register("dice_ce")
def dice_ce(dice_weight: float = 1.0, ce_weight: float = 1.0, smooth: float = 1.0) -> ThinSegmentationLoss:
    """Dice + cross-entropy, the baseline of the thin-structure comparison."""
    return ThinSegmentationLoss(dice_weight, ce_weight, smooth=smooth, name="dice_ce")


@LOSSES.register("skeleton_recall")
def skeleton_recall(recall_weight: float = 1.0, dice_weight: float = 1.0, ce_weight: float = 1.0,
                    smooth: float = 1.0) -> ThinSegmentationLoss:
    """Dice + CE + `recall_weight` · Skeleton Recall (the paper adds it to nnU-Net's loss)."""
    return ThinSegmentationLoss(dice_weight, ce_weight, recall_weight=recall_weight, smooth=smooth,
                                name="skeleton_recall")


@LOSSES.register("cldice")
def cldice(cldice_weight: float = 1.0, iterations: int = 10, dice_weight: float = 1.0, ce_weight: float = 1.0,
           smooth: float = 1.0) -> ThinSegmentationLoss:
    """Dice + CE + `cldice_weight` · soft clDice (`iterations` soft-skeleton steps)."""
    return ThinSegmentationLoss(dice_weight, ce_weight, cldice_weight=cldice_weight, cldice_iterations=iterations,
                                smooth=smooth, name="cldice")


@LOSSES.register("dice_cldice")
def dice_cldice(alpha: float = 0.5, iterations: int = 10, smooth: float = 1.0) -> ThinSegmentationLoss:
    """`(1 − α)·Dice + α·clDice`, the combination Shit et al. train with."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return ThinSegmentationLoss(1.0 - alpha, 0.0, cldice_weight=alpha, cldice_iterations=iterations,
                                smooth=smooth, name="dice_cldice")
