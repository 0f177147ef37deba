"""A shape denoiser: noisy binary shape → probability of the clean shape, for the GT rule.

The route to *exact* skeletons of noisy shapes (issue 4): the ground truth is the rule of
DESIGN.md §3 applied to the clean shape, so a model that removes the bumps and dents and leaves
every other boundary pixel where it is gives back the ground truth pixel for pixel once the
same rule (threshold, thinning, spur pruning at 10 px, thinning) runs on its output in graph
ops. That rule already exists for `data.target: shape`; this module adds a network shaped for
the job: a full-resolution path that can keep single pixels exact, a half-resolution path of
dilated residual blocks that sees far enough along the boundary (about 150 px) to tell a bump
from the shape's own outline, and an identity path from the input to the logits (`InputSkip`),
so that an untrained model is the identity and training learns only the corrections.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from keras_skel.layers.input_skip import InputSkip
from keras_skel.layers.preprocess import ShapeInput
from keras_skel.registry import MODELS

__all__ = ["build_shape_denoiser"]


@MODELS.register("shape_denoiser")
def build_shape_denoiser(
    stem_filters: int = 24,
    filters: int = 48,
    dilations: Sequence[int] = (1, 2, 4, 8, 1, 2),
    skip_scale: float = 4.0,
    fine_dilations: Sequence[int] = (),
    name: str = "shape_denoiser",
    input_channels: int = 1,
) -> keras.Model:
    """Builds the shape denoiser (`data.target: shape`).

    Layers: the binary input as ±1 (`signed`); two 3×3 convolutions at full resolution
    (`stem_conv1`, `stem_conv2`, `stem_filters` wide); 2×2 max-pool (`down_pool`) and a 3×3
    convolution (`down_conv`, `filters` wide); one residual block per entry of `dilations`
    (`ctx{i}_conv1`, `ctx{i}_conv2`: two 3×3 convolutions with that dilation rate, added to the
    block's input); a 2×2 transposed convolution back to full resolution (`up`), concatenated
    with the stem and the signed input; a 3×3 convolution (`fuse_conv1`); one full-resolution
    residual block per entry of `fine_dilations` (`fine{i}_conv1`, `fine{i}_conv2`, `stem_filters`
    wide, the second convolution initialized to zero so that a block starts as the identity);
    a 3×3 convolution (`fuse_conv2`); a 1×1 convolution `head` (float32); `InputSkip` adds
    `skip_scale · (±1 input)` to the logits; sigmoid `probability`. ReLU throughout, no
    normalization (the model must treat every image alike, batch statistics would not).

    Height and width must be even (one pooling step); the prediction path pads and crops
    (`infer_stride` counts `down_pool`).

    Args:
        stem_filters: width of the full-resolution layers.
        filters: width of the half-resolution blocks.
        dilations: one residual block per entry, with that dilation rate.
        skip_scale: initial scale of the input skip (4: probability 0.98 inside the input
            shape and 0.02 outside before training).
        fine_dilations: full-resolution residual blocks after `fuse_conv1`, one per dilation
            rate (e.g. `(1, 2, 4, 8)`: ±30 px of single-pixel-exact context, for rebuilding the
            outline under a bump); empty = none. Zero-initialized, so a model with them built
            with `--init-from` a model without them starts as that model.
        name: model name.
        input_channels: must be 1 (a binary shape); accepted so the training code can pass it
            to every model builder.

    Returns:
        A `keras.Model` from `images` `[N, H, W, 1]` (0..1) to `probability` `[N, H, W, 1]`.

    Raises:
        ValueError: on a bad width, dilation or channel count.

    Example:
        >>> model = build_shape_denoiser(stem_filters=4, filters=8, dilations=(1, 2))
        >>> model.output_shape
        (None, None, None, 1)
    """
    if input_channels != 1:
        raise ValueError(f"the shape denoiser takes a binary shape with 1 channel, got input_channels={input_channels}")
    if stem_filters < 1 or filters < 1:
        raise ValueError(f"stem_filters and filters must be >= 1, got {stem_filters} and {filters}")
    dilations = tuple(int(d) for d in dilations)
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"dilations must be one or more rates >= 1, got {list(dilations)}")
    fine_dilations = tuple(int(d) for d in fine_dilations)
    if any(d < 1 for d in fine_dilations):
        raise ValueError(f"fine_dilations must be rates >= 1, got {list(fine_dilations)}")

    def conv(width: int, layer_name: str, rate: int = 1, activation: str | None = "relu", init: str = "glorot_uniform"):
        return layers.Conv2D(width, 3, padding="same", dilation_rate=rate, activation=activation,
                             kernel_initializer=init, name=layer_name)

    inputs = keras.Input(shape=(None, None, 1), name="images")
    binary = ShapeInput("shape", name="binarize")(inputs)
    signed = layers.Rescaling(2.0, offset=-1.0, name="signed")(binary)
    stem = conv(stem_filters, "stem_conv1")(signed)
    stem = conv(stem_filters, "stem_conv2")(stem)
    x = layers.MaxPooling2D(2, name="down_pool")(stem)
    x = conv(filters, "down_conv")(x)
    for i, rate in enumerate(dilations, start=1):
        r = conv(filters, f"ctx{i}_conv1", rate)(x)
        r = conv(filters, f"ctx{i}_conv2", rate, activation=None)(r)
        x = layers.Activation("relu", name=f"ctx{i}_out")(layers.Add(name=f"ctx{i}_add")([x, r]))
    up = layers.Conv2DTranspose(stem_filters, 2, strides=2, padding="same", activation="relu", name="up")(x)
    x = layers.Concatenate(name="fuse_concat")([up, stem, signed])
    x = conv(stem_filters, "fuse_conv1")(x)
    for i, rate in enumerate(fine_dilations, start=1):
        r = conv(stem_filters, f"fine{i}_conv1", rate)(x)
        r = conv(stem_filters, f"fine{i}_conv2", rate, activation=None, init="zeros")(r)
        x = layers.Activation("relu", name=f"fine{i}_out")(layers.Add(name=f"fine{i}_add")([x, r]))
    x = conv(stem_filters, "fuse_conv2")(x)
    logits = layers.Conv2D(1, 1, name="head", dtype="float32")(x)
    logits = InputSkip(initial_scale=skip_scale, name="input_skip")([logits, inputs])
    probability = layers.Activation("sigmoid", name="probability", dtype="float32")(logits)
    return keras.Model(inputs, probability, name=name)
