"""Model builders (`build_<name>(...) -> keras.Model`), registered in `registry.MODELS`."""

from keras_skel.models.unet import build_unet, unet_stride

__all__ = ["build_unet", "unet_stride"]
