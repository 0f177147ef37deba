"""Keras `Loss` classes over `losses.functional` (weighted focal, soft Dice, their sum; DeepFlux's
balanced flux L2)."""

from __future__ import annotations

import keras

from keras_skel.losses import functional
from keras_skel.registry import LOSSES

__all__ = ["WeightedFocalLoss", "DiceLoss", "FocalDiceLoss", "BalancedFluxLoss"]


@LOSSES.register("focal")
@keras.saving.register_keras_serializable(package="keras_skel")
class WeightedFocalLoss(keras.losses.Loss):
    """Weighted focal loss (Panichev & Voloshyna, CVPRW 2019); see `functional.weighted_focal`.

    Args:
        w_pos: weight of skeleton pixels (paper: 50).
        w_neg: weight of background pixels (paper: 0.75).
        gamma: focusing parameter (paper: 2).
        **kwargs: forwarded to `keras.losses.Loss` (name, reduction, dtype).

    Example:
        >>> loss = WeightedFocalLoss()
        >>> value = loss(keras.ops.ones((2, 4, 4, 1)), keras.ops.full((2, 4, 4, 1), 0.9))
    """

    def __init__(self, w_pos: float = 50.0, w_neg: float = 0.75, gamma: float = 2.0,
                 name: str = "weighted_focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.w_pos = w_pos
        self.w_neg = w_neg
        self.gamma = gamma

    def call(self, y_true, y_pred):
        return functional.weighted_focal(y_true, y_pred, self.w_pos, self.w_neg, self.gamma)

    def get_config(self):
        config = super().get_config()
        config.update(w_pos=self.w_pos, w_neg=self.w_neg, gamma=self.gamma)
        return config


@LOSSES.register("dice")
@keras.saving.register_keras_serializable(package="keras_skel")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss with additive smoothing; see `functional.soft_dice`.

    Args:
        smooth: smoothing term (1 by default).
        **kwargs: forwarded to `keras.losses.Loss`.
    """

    def __init__(self, smooth: float = 1.0, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = smooth

    def call(self, y_true, y_pred):
        return functional.soft_dice(y_true, y_pred, self.smooth)

    def get_config(self):
        config = super().get_config()
        config.update(smooth=self.smooth)
        return config


@LOSSES.register("focal_dice")
@keras.saving.register_keras_serializable(package="keras_skel")
class FocalDiceLoss(keras.losses.Loss):
    """Weighted sum of weighted focal and soft Dice losses; see `functional.focal_dice`.

    Args:
        focal_weight: weight of the focal term.
        dice_weight: weight of the Dice term.
        w_pos, w_neg, gamma: focal parameters.
        smooth: Dice smoothing.
        **kwargs: forwarded to `keras.losses.Loss`.
    """

    def __init__(self, focal_weight: float = 1.0, dice_weight: float = 1.0, w_pos: float = 50.0,
                 w_neg: float = 0.75, gamma: float = 2.0, smooth: float = 1.0,
                 name: str = "focal_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.w_pos = w_pos
        self.w_neg = w_neg
        self.gamma = gamma
        self.smooth = smooth

    def call(self, y_true, y_pred):
        return functional.focal_dice(y_true, y_pred, self.focal_weight, self.dice_weight,
                                     self.w_pos, self.w_neg, self.gamma, self.smooth)

    def get_config(self):
        config = super().get_config()
        config.update(focal_weight=self.focal_weight, dice_weight=self.dice_weight,
                      w_pos=self.w_pos, w_neg=self.w_neg, gamma=self.gamma, smooth=self.smooth)
        return config


@LOSSES.register("flux")
@keras.saving.register_keras_serializable(package="keras_skel")
class BalancedFluxLoss(keras.losses.Loss):
    """DeepFlux's class-balanced L2 loss on the context flux; see `functional.balanced_flux_l2`.

    `y_true` is `[N, H, W, 3]` (flux dy, dx and the skeleton mask), `y_pred` the `[N, H, W, 2]`
    flux.

    Args:
        **kwargs: forwarded to `keras.losses.Loss`.
    """

    def __init__(self, name: str = "balanced_flux_l2", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return functional.balanced_flux_l2(y_true, y_pred)
