"""CANet: residual U-Net with context attention (Huang et al., CVPRW 2022, Pixel SkelNetOn 1st).

Deep supervision makes the model multi-output; its outputs are a dict keyed by output name,
because Keras 3 matches per-output losses, loss weights, metrics and `fit` targets to a dict by
key (no ordering to get wrong), and a `.keras` file keeps the structure. The main output is
always `probability` at full resolution; `side_k` predicts the skeleton at 1/2^k of the input
size and trains against `downsample_target(y, 2**k)` (`deep_supervision_targets` makes the
whole target dict). Prediction and export want one output: `probability_model(model)` is the
single-output view sharing the same layers and weights (a model without deep supervision is
single-output already and comes back unchanged).
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
from keras import layers

from keras_skel.layers.context_attention import ContextAttention
from keras_skel.layers.input_skip import InputSkip
from keras_skel.layers.preprocess import INPUT_KINDS, ShapeInput
from keras_skel.layers.residual import ResidualBlock
from keras_skel.registry import MODELS

__all__ = [
    "build_canet",
    "canet_max_size",
    "canet_stride",
    "canet_side_factors",
    "downsample_target",
    "deep_supervision_targets",
    "probability_model",
]


def canet_stride(depth: int) -> int:
    """Side lengths a CANet of `depth` pooling stages accepts must be multiples of this."""
    return 2**depth


def canet_max_size(attention_stages: Sequence[int], depth: int = 5, budget_bytes: int = 2**30) -> int | None:
    """The largest square side a CANet runs whole: its first attention stage's `(H·W)²`
    float32 matrix stays within `budget_bytes` per image (1 GiB: a 128² stage).

    Larger inputs are run as overlapping tiles of this size by the prediction path
    (`KerasSkeletonizer`, `SavedModelSkeletonizer`); the exported graph refuses them with a
    clear error. None without attention (no limit). The side is a multiple of the stride.

    Example:
        >>> canet_max_size((3, 4, 5)), canet_max_size((1, 2, 3, 4, 5)), canet_max_size(())
        (512, 128, None)
    """
    stages = [int(k) for k in attention_stages]
    if not stages:
        return None
    positions = int((budget_bytes // 4) ** 0.5)  # positions per attention row
    stage_side = int(positions ** 0.5)  # square stage side
    side = stage_side * 2 ** (min(stages) - 1)
    stride = canet_stride(depth)
    return max(stride, side // stride * stride)


def canet_side_factors(depth: int) -> dict[str, int]:
    """`{"side_k": 2**k}` for the deep-supervision outputs of a CANet of `depth` stages.

    Example:
        >>> canet_side_factors(3)
        {'side_1': 2, 'side_2': 4}
    """
    return {f"side_{k}": 2**k for k in range(1, depth)}


def downsample_target(y: tf.Tensor, factor: int, mode: str = "max") -> tf.Tensor:
    """Downsamples a target by `factor`: max-pooling for skeletons, averaging for shapes.

    With `mode="max"` a low-resolution pixel is positive when any pixel of its
    `factor × factor` block is (average pooling or resizing would fade a 1-px line to
    1/factor and break it). With `mode="mean"` (a shape target) it is the block's foreground
    fraction, a soft target that keeps where the boundary lies. Sizes that are not multiples
    of `factor` get a last, partial block (SAME padding).

    Args:
        y: `[N, H, W, C]` or `[H, W, C]` target (one image, as in a `tf.data` map).
        factor: the downsampling factor (1 returns `y`).
        mode: `max` (skeleton targets) or `mean` (shape targets).

    Returns:
        The target at `ceil(H / factor) × ceil(W / factor)`, same rank and dtype.

    Example:
        >>> y = np.zeros((1, 4, 4, 1), "float32"); y[0, 1, :, 0] = 1  # a horizontal line
        >>> downsample_target(y, 2)[0, :, :, 0].numpy()
        array([[1., 1.],
               [0., 0.]], dtype=float32)
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank not in (3, 4):
        raise ValueError(f"downsample_target expects [N, H, W, C] or [H, W, C], got shape {y.shape}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if mode not in ("max", "mean"):
        raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")
    if factor == 1:
        return y
    batched = y if y.shape.rank == 4 else y[tf.newaxis]
    dtype = batched.dtype
    if not dtype.is_floating:
        batched = tf.cast(batched, tf.float32)
    pool = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
    pooled = pool(batched, factor, factor, padding="SAME")
    pooled = tf.cast(pooled, dtype)
    return pooled if y.shape.rank == 4 else pooled[0]


def deep_supervision_targets(y: tf.Tensor, depth: int, mode: str = "max") -> dict[str, tf.Tensor]:
    """The target dict for a deep-supervised CANet: `{"probability": y, "side_k": ...}`.

    Args:
        y: full-resolution target, `[N, H, W, 1]` or `[H, W, 1]`.
        depth: the model's `depth`.
        mode: how `downsample_target` pools (`max` for skeletons, `mean` for shapes).

    Example:
        >>> targets = deep_supervision_targets(np.zeros((2, 32, 32, 1), "float32"), depth=3)
        >>> {k: tuple(v.shape) for k, v in targets.items()}
        {'probability': (2, 32, 32, 1), 'side_1': (2, 16, 16, 1), 'side_2': (2, 8, 8, 1)}
    """
    targets = {"probability": tf.convert_to_tensor(y)}
    for name, factor in canet_side_factors(depth).items():
        targets[name] = downsample_target(y, factor, mode)
    return targets


def probability_model(model: keras.Model) -> keras.Model:
    """The single-output (`probability`) view of a model, for prediction and export.

    A deep-supervised CANet returns a dict; this returns a `keras.Model` over the same layers
    (weights shared, pooling layers included, so `infer_stride` still works) whose one output
    is `probability`. A model whose output is a single tensor is returned as it is.
    """
    if not isinstance(model.output, dict):
        return model
    return keras.Model(model.inputs, model.output["probability"], name=model.name)


def _stage(x, filters: int, blocks: int, prefix: str, residual: bool = True):
    for j in range(1, blocks + 1):
        x = ResidualBlock(filters, shortcut=residual, name=f"{prefix}_res{j}")(x)
    return x


def _sigmoid_head(x, name: str):
    logits = layers.Conv2D(1, 1, name=f"{name}_logits", dtype="float32")(x)
    return layers.Activation("sigmoid", name=name, dtype="float32")(logits)


@MODELS.register("canet")
def build_canet(
    input_kind: str = "repaired_distance",
    base_filters: int = 16,
    depth: int = 5,
    blocks_per_stage: int = 3,
    attention_stages: Sequence[int] = (3, 4, 5),
    max_filters: int = 256,
    deep_supervision: bool = True,
    hole_area: int = 16,
    distance_scale: float = 32.0,
    name: str = "canet",
    input_channels: int = 1,
    input_skip: bool = False,
    residual: bool = True,
) -> keras.Model:
    """Builds CANet, a residual U-Net with context attention at the deep encoder stages.

    Input `images`: a binary shape `[N, H, W, 1]` (0..1); the `shape_input` layer
    (`ShapeInput`) turns it into the network input of `input_kind` inside the graph.
    Encoder stage k = 1..depth: `blocks_per_stage` `ResidualBlock`s (`enc{k}_res{j}`), a
    `ContextAttention` block (`enc{k}_attention`) if k is in `attention_stages`, the stage
    output `enc{k}_out` (the skip connection), then 2×2 max-pool `enc{k}_pool`. Widths are
    `base_filters · 2^(k-1)` capped at `max_filters`. Bottleneck: `blocks_per_stage` blocks
    (`bottleneck_res{j}`, `bottleneck_out`) at 1/2^depth. Decoder stage k = depth..1: 2×2
    transposed convolution `dec{k}_up`, concatenation with `enc{k}_out`, `blocks_per_stage`
    blocks, `dec{k}_out`. Head: 1×1 conv and sigmoid `probability`, float32 under mixed
    precision.

    Stage k runs at 1/2^(k-1) of the input, so attention at stage k costs `(H·W / 4^(k-1))²`
    floats per image (see `ContextAttention` for the table): with stages 3–5, inputs up to
    512² train within 1 GiB per attention matrix; tile larger images.

    Deep supervision (`deep_supervision=True`): each decoder stage below full resolution gets
    a 1×1 conv + sigmoid head `side_{k}` (k = 1..depth-1, at 1/2^k of the input, float32),
    and the model's outputs are the dict `{"probability": ..., "side_1": ..., ...}`; targets
    come from `deep_supervision_targets(y, depth)`. Use `probability_model(model)` for
    prediction and export. Without deep supervision the output is the `probability` tensor.

    Height and width are free but must be multiples of `canet_stride(depth)`; the prediction
    path pads and crops. `infer_stride` counts the `enc{k}_pool` layers.

    Args:
        input_kind: `shape`, `distance`, `repaired_distance` (the paper's best) or
            `shape_distance` (see `ShapeInput`).
        base_filters: width of the first stage.
        depth: number of encoder stages (and pooling steps).
        blocks_per_stage: residual blocks per encoder/decoder stage (3 in the paper).
        attention_stages: 1-based encoder stages followed by context attention (the paper:
            3–5 best, 1–5 worse); values in 1..depth, may be empty.
        max_filters: cap on the width of deep stages.
        deep_supervision: add the `side_k` outputs (dict outputs).
        hole_area: `repaired_distance` fills holes with fewer pixels than this.
        distance_scale: distances are divided by this many pixels.
        name: model name.
        input_channels: must be 1 (a binary shape); accepted so the training code can pass
            it to every model builder.
        input_skip: add the binary input, as a learned multiple of ±1 (`InputSkip`), to the
            head's logits: the network then starts as the identity on the shape and learns
            corrections, for a model that predicts the clean shape (`data.target: shape`).
        residual: False removes the blocks' shortcuts (a plain U-Net of double convolutions,
            the ablation's baseline); the layer names stay.

    Returns:
        A `keras.Model` from `images` `[N, H, W, 1]` to `probability` `[N, H, W, 1]` (or the
        dict of outputs with deep supervision).

    Raises:
        ValueError: on a bad depth, input kind, attention stage or channel count.

    Example:
        >>> model = build_canet(base_filters=4, depth=3, blocks_per_stage=1,
        ...                     attention_stages=(3,), deep_supervision=False)
        >>> model.output_shape
        (None, None, None, 1)

    Reference:
        Huang et al., "Context Attention Network for Skeleton Extraction", CVPR Workshops
        2022 (Pixel SkelNetOn 2022, 1st place).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"unknown input_kind {input_kind!r}; choose one of {', '.join(INPUT_KINDS)}")
    if input_channels != 1:
        raise ValueError(f"CANet takes a binary shape with 1 channel, got input_channels={input_channels}")
    attention_stages = tuple(int(k) for k in attention_stages)
    bad = [k for k in attention_stages if not 1 <= k <= depth]
    if bad:
        raise ValueError(f"attention_stages must lie in 1..{depth} (depth), got {bad}")

    def width(k: int) -> int:
        return min(base_filters * 2 ** (k - 1), max_filters)

    inputs = keras.Input(shape=(None, None, 1), name="images")
    x = ShapeInput(input_kind, scale=distance_scale, hole_area=hole_area, name="shape_input")(inputs)

    skips = {}
    for k in range(1, depth + 1):
        x = _stage(x, width(k), blocks_per_stage, f"enc{k}", residual)
        if k in attention_stages:
            x = ContextAttention(name=f"enc{k}_attention")(x)
        x = layers.Identity(name=f"enc{k}_out")(x)
        skips[k] = x
        x = layers.MaxPooling2D(2, name=f"enc{k}_pool")(x)

    x = _stage(x, width(depth + 1), blocks_per_stage, "bottleneck", residual)
    x = layers.Identity(name="bottleneck_out")(x)

    outputs = {}
    for k in range(depth, 0, -1):
        x = layers.Conv2DTranspose(width(k), 2, strides=2, padding="same", name=f"dec{k}_up")(x)
        x = layers.Concatenate(name=f"dec{k}_concat")([x, skips[k]])
        x = _stage(x, width(k), blocks_per_stage, f"dec{k}", residual)
        x = layers.Identity(name=f"dec{k}_out")(x)
        if deep_supervision and k > 1:
            outputs[f"side_{k - 1}"] = _sigmoid_head(x, f"side_{k - 1}")

    logits = layers.Conv2D(1, 1, name="head", dtype="float32")(x)
    if input_skip:
        logits = InputSkip(name="input_skip")([logits, inputs])
    probability = layers.Activation("sigmoid", name="probability", dtype="float32")(logits)
    if not deep_supervision:
        return keras.Model(inputs, probability, name=name)
    outputs = {"probability": probability, **{side: outputs[side] for side in canet_side_factors(depth)}}
    return keras.Model(inputs, outputs, name=name)
