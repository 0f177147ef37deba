"""A small 3-D U-Net for volumetric thin-structure segmentation (vessels, neurites)."""

from __future__ import annotations

import keras
from keras import layers

from keras_skel.models.unet import check_output, output_head
from keras_skel.registry import MODELS

__all__ = ["build_unet3d", "unet3d_features"]


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv3D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


@MODELS.register("unet3d")
def build_unet3d(
    input_channels: int = 1,
    base_filters: int = 8,
    depth: int = 3,
    max_filters: int = 128,
    convs_per_stage: int = 2,
    output_channels: int = 1,
    output_activation: str = "sigmoid",
    deep_supervision: bool = False,
    name: str = "unet3d",
) -> keras.Model:
    """Builds a 3-D U-Net (Çiçek et al.) sized for CPUs and small volumes.

    Each encoder stage is `convs_per_stage` × (3×3×3 conv + BN + ReLU) then a 2×2×2 max-pool,
    widths doubling from `base_filters` (capped at `max_filters`); the bottleneck is one more
    such stage; each decoder stage a 2×2×2 transposed conv, concatenation with the encoder
    stage, and `convs_per_stage` convs. The head is a 1×1×1 conv with a sigmoid (binary) or a
    softmax over background + classes, in float32.

    Depth, height and width must be multiples of `2**depth`.

    Args:
        input_channels: channels of the input volume.
        base_filters: width of the first stage.
        depth: number of pooling stages.
        max_filters: cap on the width of deep stages.
        convs_per_stage: convolutions per stage.
        output_channels: output channels (for softmax: 1 + the number of classes).
        output_activation: `sigmoid` or `softmax` (channel 0 = background).
        deep_supervision: add `side_k` heads on decoder stages k = 1..depth-1 (dict outputs,
            as `build_unet`).
        name: model name.

    Returns:
        A `keras.Model` mapping `[N, D, H, W, input_channels]` to `[N, D, H, W, output_channels]`
        probabilities; encoder outputs are named `enc{i}_out`, decoder outputs `dec{i}_out`.

    Example:
        >>> model = build_unet3d(base_filters=4, depth=2, output_channels=4, output_activation="softmax")
        >>> model.output_shape
        (None, None, None, None, 4)

    Reference:
        Çiçek et al., "3D U-Net: Learning Dense Volumetric Segmentation from Sparse
        Annotation", MICCAI 2016.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if convs_per_stage < 1:
        raise ValueError(f"convs_per_stage must be >= 1, got {convs_per_stage}")
    check_output(output_channels, output_activation)
    inputs = keras.Input(shape=(None, None, None, input_channels), name="images")
    x, decoders = unet3d_features(inputs, base_filters, depth, max_filters, convs_per_stage)
    sides = {}
    if deep_supervision:
        for i in range(1, depth):
            sides[f"side_{i}"] = output_head(decoders[i], output_channels, output_activation, f"side_{i}",
                                             layers.Conv3D)

    probability = output_head(x, output_channels, output_activation, "probability", layers.Conv3D)
    if not deep_supervision or depth == 1:
        return keras.Model(inputs, probability, name=name)
    return keras.Model(inputs, {"probability": probability, **dict(sorted(sides.items()))}, name=name)


def unet3d_features(x, base_filters: int = 8, depth: int = 3, max_filters: int = 128, convs_per_stage: int = 2,
                    prefix: str = ""):
    """The encoder-decoder body of `build_unet3d` on the tensor `x`, without a head.

    Returns `(features, decoder_outputs)`: the last decoder stage's features (full resolution,
    `base_filters` channels) and `{i: output of decoder stage i}`. Layers are named as in
    `build_unet3d`, after `prefix`; spatial sides must be multiples of `2**depth`.
    """
    skips = []
    for i in range(depth):
        filters = min(base_filters * 2**i, max_filters)
        for j in range(convs_per_stage):
            x = _conv_bn_relu(x, filters, f"{prefix}enc{i}_{j}")
        x = layers.Identity(name=f"{prefix}enc{i}_out")(x)
        skips.append(x)
        x = layers.MaxPooling3D(2, name=f"{prefix}enc{i}_pool")(x)
    for j in range(convs_per_stage):
        x = _conv_bn_relu(x, min(base_filters * 2**depth, max_filters), f"{prefix}bottleneck_{j}")
    decoders = {}
    for i in reversed(range(depth)):
        filters = min(base_filters * 2**i, max_filters)
        x = layers.Conv3DTranspose(filters, 2, strides=2, padding="same", name=f"{prefix}dec{i}_up")(x)
        x = layers.Concatenate(name=f"{prefix}dec{i}_concat")([x, skips[i]])
        for j in range(convs_per_stage):
            x = _conv_bn_relu(x, filters, f"{prefix}dec{i}_{j}")
        x = layers.Identity(name=f"{prefix}dec{i}_out")(x)
        decoders[i] = x
    return x, decoders
