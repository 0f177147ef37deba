"""Residual U-Net for binary-shape skeletonization (Panichev & Voloshyna, CVPRW 2019)."""

from __future__ import annotations

import keras
from keras import layers

from keras_skel.layers.residual import ResidualBlock
from keras_skel.registry import MODELS

__all__ = ["build_unet", "unet_stride", "OUTPUT_ACTIVATIONS"]

# sigmoid: independent binary maps (skeletons, binary segmentation); softmax: K-class
# segmentation whose channel 0 is the background.
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")


def unet_stride(depth: int) -> int:
    """Side lengths a U-Net of `depth` pooling stages accepts must be multiples of this."""
    return 2**depth


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def check_output(output_channels: int, output_activation: str) -> None:
    """Refuses an unknown activation or a softmax over fewer than 2 channels."""
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, "
                         f"got {output_activation!r}")
    if output_channels < 1 or (output_activation == "softmax" and output_channels < 2):
        raise ValueError(f"output_channels must be >= 1 (>= 2 for softmax: background + classes), "
                         f"got {output_channels}")


def output_head(x, channels: int, activation: str, name: str, conv=layers.Conv2D):
    """1×1 conv + activation, both float32 under mixed precision (stable losses)."""
    logits = conv(channels, 1, name=f"{name}_logits" if name != "probability" else "head", dtype="float32")(x)
    return layers.Activation(activation, name=name, dtype="float32")(logits)


@MODELS.register("unet")
def build_unet(
    input_channels: int = 1,
    base_filters: int = 32,
    depth: int = 5,
    max_filters: int = 512,
    decoder_convs: int = 4,
    output_channels: int = 1,
    output_activation: str = "sigmoid",
    deep_supervision: bool = False,
    name: str = "residual_unet",
) -> keras.Model:
    """Builds the residual U-Net of the Pixel SkelNetOn 2019 entry.

    Encoder: `depth` stages of (3×3 conv + BN + ReLU, `ResidualBlock`) then 2×2 max-pool, the
    width doubling per stage from `base_filters` (capped at `max_filters`). Bottleneck: two 1×1
    convolutions with ReLU. Decoder: per stage a 2×2 transposed convolution, concatenation with
    the encoder stage's output, and `decoder_convs` 3×3 conv + BN + ReLU. Head: 1×1 conv and a
    sigmoid (or, for K-class segmentation, a softmax over background + K classes) kept in
    float32 under mixed precision.

    Height and width are free (`None`) but must be multiples of `unet_stride(depth)`; the
    prediction path pads and crops other sizes.

    Args:
        input_channels: channels of the input (1 for a binary shape).
        base_filters: width of the first stage (paper-size 32; 8 is a tiny test model).
        depth: number of pooling stages (the paper uses 5).
        max_filters: cap on the width of deep stages.
        decoder_convs: convolutions per decoder stage (the paper uses 4).
        output_channels: channels of the output (for softmax: 1 + the number of classes).
        output_activation: `sigmoid` (binary maps) or `softmax` (multi-class, channel 0 =
            background).
        deep_supervision: add a 1×1 head `side_k` on decoder stage k = 1..depth-1 (at 1/2^k
            of the input); the outputs become the dict `{"probability", "side_1", ...}`, as
            CANet's (`models.canet.probability_model` gives the single-output view).
        name: model name.

    Returns:
        A `keras.Model` mapping `[N, H, W, input_channels]` to probabilities
        `[N, H, W, output_channels]`. Encoder outputs are named `enc{i}_out`, the bottleneck
        `bottleneck_out`, decoder outputs `dec{i}_out`.

    Example:
        >>> model = build_unet(base_filters=8, depth=3, decoder_convs=2)
        >>> model.output_shape
        (None, None, None, 1)

    Reference:
        Panichev, Voloshyna, "U-Net based convolutional neural network for skeleton
        extraction", CVPR Workshops 2019.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    check_output(output_channels, output_activation)
    inputs = keras.Input(shape=(None, None, input_channels), name="images")
    x = inputs
    skips = []
    for i in range(depth):
        filters = min(base_filters * 2**i, max_filters)
        x = _conv_bn_relu(x, filters, 3, name=f"enc{i}")
        x = ResidualBlock(filters, name=f"enc{i}_res")(x)
        x = layers.Identity(name=f"enc{i}_out")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)

    bottleneck_filters = min(base_filters * 2**depth, max_filters)
    x = layers.Conv2D(bottleneck_filters, 1, activation="relu", name="bottleneck_conv1")(x)
    x = layers.Conv2D(bottleneck_filters, 1, activation="relu", name="bottleneck_conv2")(x)
    x = layers.Identity(name="bottleneck_out")(x)

    sides = {}
    for i in reversed(range(depth)):
        filters = min(base_filters * 2**i, max_filters)
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_concat")([x, skips[i]])
        for j in range(decoder_convs):
            x = _conv_bn_relu(x, filters, 3, name=f"dec{i}_{j}")
        x = layers.Identity(name=f"dec{i}_out")(x)
        if deep_supervision and i > 0:
            sides[f"side_{i}"] = output_head(x, output_channels, output_activation, f"side_{i}")

    probability = output_head(x, output_channels, output_activation, "probability")
    if not deep_supervision or depth == 1:
        return keras.Model(inputs, probability, name=name)
    return keras.Model(inputs, {"probability": probability, **dict(sorted(sides.items()))}, name=name)
