"""DeepFlux: a context-flux field (or a skeleton probability) from an RGB image.

Wang, Xu, Tsogkas, Bai, Dickinson, Siddiqi, "DeepFlux for Skeletons in the Wild", CVPR 2019,
§3.3: a VGG16 backbone without its last pooling and fully connected layers; ASPP (atrous 3×3
convolutions, rates 2, 4, 8, 16, concatenated) on conv5; 1×1 convolutions on conv3, conv4, conv5
and the ASPP output, resized to conv3's resolution (stride 4) and concatenated; a head of 1×1
convolutions predicting the 2-channel flux, resized to the input size.

Backbones (`BACKBONES`):

- ``vgg16``: the paper's, `keras.applications.VGG16` without top (block3/4/5_conv3 are conv3,
  conv4, conv5; block5_pool is dropped). ImageNet weights cannot be downloaded here: pass
  `backbone_weights` (a local `.h5` / `.weights.h5` of Keras' VGG16 "notop" weights, or a
  `.keras` model holding layers of the same names); otherwise it trains from scratch. Inputs
  are RGB in [0, 1]; the Caffe-style ImageNet preprocessing (×255, mean subtraction, BGR) is
  part of the model (BGR by flipping the first convolution's input channels once at build).
- ``light``: a residual encoder for CPUs (stem convolution, then one residual stage per pooling,
  `width` × 1, 2, 4, 8 channels): conv3, conv4 and conv5 at strides 4, 8 and 16, as VGG16's.

Example:
    >>> model = build_deepflux(backbone="light", width=8, fusion_filters=8, aspp_filters=8)
    >>> tuple(model(np.zeros((1, 64, 48, 3), np.float32)).shape)
    (1, 64, 48, 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from keras import layers

from keras_skel.errors import ConfigError
from keras_skel.layers.aspp import ASPP
from keras_skel.layers.resize import ResizeLike
from keras_skel.layers.residual import ResidualBlock
from keras_skel.registry import MODELS

__all__ = ["BACKBONES", "DEEPFLUX_OUTPUTS", "IMAGENET_MEAN_RGB", "build_deepflux", "deepflux_stride"]

BACKBONES = ("vgg16", "light")
DEEPFLUX_OUTPUTS = ("flux", "binary")
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)  # Keras' "caffe" preprocessing means, RGB order
_VGG_FEATURES = ("block3_conv3", "block4_conv3", "block5_conv3")


def deepflux_stride() -> int:
    """Input-size multiple of both backbones (four 2× poolings)."""
    return 16


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _light_backbone(inputs, width: int, blocks: Sequence[int]):
    """conv3 / conv4 / conv5 features (strides 4, 8, 16) of the residual encoder."""
    x = layers.Rescaling(2.0, offset=-1.0, name="input_scale")(inputs)
    x = _conv_bn_relu(x, max(8, width // 2), 3, "stem")
    features = []
    for stage, (factor, count) in enumerate(zip((1, 2, 4, 8), blocks)):
        x = layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
        for b in range(count):
            x = ResidualBlock(width * factor, name=f"stage{stage + 2}_block{b + 1}")(x)
        features.append(x)
    return features[1:]  # conv3 (stride 4), conv4 (8), conv5 (16)


def _load_backbone_weights(backbone: keras.Model, path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"backbone weights {path} do not exist; give a local .h5 / .weights.h5 of Keras' VGG16 "
                          "without top (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) or a .keras model "
                          "with the same layer names")
    try:
        if file.suffix == ".keras":
            source = keras.saving.load_model(file, compile=False)
            named = {layer.name: layer for layer in source.layers}
            copied = 0
            for layer in backbone.layers:
                if layer.name in named and layer.weights:
                    layer.set_weights(named[layer.name].get_weights())
                    copied += 1
            if not copied:
                raise ValueError("no layer of the backbone has a namesake in that model")
        else:
            backbone.load_weights(str(file))
    except (ValueError, OSError, KeyError) as err:
        raise ConfigError(f"could not load backbone weights from {path}: {err}") from None


def _vgg16_backbone(inputs, backbone_weights: str | None):
    mean = np.asarray(IMAGENET_MEAN_RGB, np.float32)
    x = layers.Rescaling(255.0, offset=list(-mean), name="imagenet_preprocess")(inputs)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    if backbone_weights:
        _load_backbone_weights(vgg, backbone_weights)
        # The weights expect BGR input: flip the first convolution's input channels once.
        first = vgg.get_layer("block1_conv1")
        kernel, bias = first.get_weights()
        first.set_weights([kernel[:, :, ::-1, :], bias])
    features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in _VGG_FEATURES], name="vgg16")
    return features(x)


@MODELS.register("deepflux")
def build_deepflux(
    input_channels: int = 3,
    backbone: str = "vgg16",
    width: int = 32,
    blocks: Sequence[int] = (1, 2, 2, 2),
    aspp: bool = True,
    aspp_rates: Sequence[int] = (2, 4, 8, 16),
    aspp_filters: int | None = None,
    fusion_filters: int | None = None,
    head_filters: int | None = None,
    output: str = "flux",
    backbone_weights: str | None = None,
    name: str = "deepflux",
) -> keras.Model:
    """Builds DeepFlux (or its binary-classification baseline).

    Args:
        input_channels: 3 (RGB in [0, 1]); 1 is accepted for the light backbone.
        backbone: `vgg16` (the paper's) or `light` (residual encoder for CPUs).
        width: light backbone: channels of its first residual stage (then ×2, ×4, ×8).
        blocks: light backbone: residual blocks per stage (strides 2, 4, 8, 16).
        aspp: the ASPP module on conv5 (False: conv5 goes to the fusion directly, the paper's
            ablation).
        aspp_rates: dilation rates of the ASPP branches.
        aspp_filters: channels per ASPP branch (default: 256 for vgg16, 4 × width for light).
        fusion_filters: channels of each 1×1 convolution before the fusion (default 256 /
            2 × width).
        head_filters: channels of the head's hidden 1×1 convolutions (default 512 / 4 × width).
        output: `flux` (2 channels, linear, named "flux") or `binary` (1 channel, sigmoid,
            named "probability": the skeleton-classification baseline).
        backbone_weights: vgg16 only: local weights file for the backbone.
        name: model name.

    Returns:
        A `keras.Model` from `[N, H, W, input_channels]` (any H, W; multiples of 16 keep the
        feature maps aligned) to `[N, H, W, 2]` flux or `[N, H, W, 1]` probability.

    Raises:
        ConfigError: an unknown backbone or output, weights for the light backbone, a vgg16
            with other than 3 input channels.
    """
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown DeepFlux backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    if output not in DEEPFLUX_OUTPUTS:
        raise ConfigError(f"unknown DeepFlux output {output!r}; expected one of {', '.join(DEEPFLUX_OUTPUTS)}")
    if backbone == "vgg16" and input_channels != 3:
        raise ConfigError(f"the vgg16 backbone takes RGB input (3 channels); got input_channels={input_channels}")
    if backbone_weights and backbone != "vgg16":
        raise ConfigError("backbone_weights are for the vgg16 backbone; the light backbone trains from scratch")
    if backbone == "light" and len(blocks) != 4:
        raise ConfigError(f"blocks needs 4 entries (residual blocks per stage); got {list(blocks)}")
    big = backbone == "vgg16"
    aspp_filters = aspp_filters or (256 if big else 4 * width)
    fusion_filters = fusion_filters or (256 if big else 2 * width)
    head_filters = head_filters or (512 if big else 4 * width)

    inputs = keras.Input((None, None, input_channels), name="image")
    if big:
        conv3, conv4, conv5 = _vgg16_backbone(inputs, backbone_weights)
    else:
        conv3, conv4, conv5 = _light_backbone(inputs, width, blocks)
    levels = [("conv3", conv3), ("conv4", conv4), ("conv5", conv5)]
    if aspp:
        levels.append(("aspp", ASPP(aspp_filters, aspp_rates, name="aspp")(conv5)))
    fused = []
    for level, feature in levels:
        x = layers.Conv2D(fusion_filters, 1, activation="relu", name=f"fuse_{level}")(feature)
        if level != "conv3":
            x = ResizeLike(name=f"resize_{level}")([x, conv3])
        fused.append(x)
    x = layers.Concatenate(name="fusion")(fused)
    x = layers.Conv2D(head_filters, 1, activation="relu", name="head_1")(x)
    x = layers.Conv2D(head_filters, 1, activation="relu", name="head_2")(x)
    channels, activation, out_name = (2, None, "flux") if output == "flux" else (1, "sigmoid", "probability")
    x = layers.Conv2D(channels, 1, name="head_out")(x)
    x = ResizeLike(name="resize_output")([x, inputs])
    outputs = layers.Activation(activation or "linear", dtype="float32", name=out_name)(x)
    return keras.Model(inputs, outputs, name=name)
