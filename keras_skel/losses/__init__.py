"""Losses: pure math in `functional`, `keras.losses.Loss` classes registered in `registry.LOSSES`."""

from keras_skel.losses import functional
from keras_skel.losses.points import ChamferLaplacianLoss
from keras_skel.losses.segmentation import BalancedFluxLoss, DiceLoss, FocalDiceLoss, WeightedFocalLoss
from keras_skel.losses.thin import ThinSegmentationLoss

__all__ = ["functional", "WeightedFocalLoss", "DiceLoss", "FocalDiceLoss", "ThinSegmentationLoss",
           "BalancedFluxLoss", "ChamferLaplacianLoss"]
