"""Model builders (`build_<name>(...) -> keras.Model`), registered in `registry.MODELS`."""

from keras_skel.models.canet import (
    build_canet,
    canet_side_factors,
    canet_stride,
    deep_supervision_targets,
    downsample_target,
    probability_model,
)
from keras_skel.models.denoiser import build_shape_denoiser
from keras_skel.models.deepflux import build_deepflux, deepflux_stride
from keras_skel.models.skeletonnet import build_skeletonnet
from keras_skel.models.unet import build_unet, unet_stride
from keras_skel.models.unet3d import build_unet3d

__all__ = ["build_canet", "build_deepflux", "build_shape_denoiser", "build_skeletonnet", "deepflux_stride",
           "build_unet", "build_unet3d", "canet_side_factors", "canet_stride", "deep_supervision_targets",
           "downsample_target", "probability_model", "unet_stride"]
