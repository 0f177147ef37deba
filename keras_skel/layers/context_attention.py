"""Context attention block of CANet: non-local spatial attention, then squeeze-excitation.

Memory grows with the square of the number of positions at the block's stage; see
`ContextAttention` for the limits.
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["ContextAttention", "attention_matrix_bytes"]


def attention_matrix_bytes(height: int, width: int, batch: int = 1) -> int:
    """Bytes of one float32 `[batch, H·W, H·W]` attention matrix at a stage of size H × W.

    A forward pass holds about two such matrices (the logits and the softmax), a training step
    about four (their gradients too).

    Example:
        >>> attention_matrix_bytes(64, 64) // 2**20  # stage 3 of a 256² input: 64 MiB
        64
    """
    positions = height * width
    return 4 * batch * positions * positions


@keras.saving.register_keras_serializable(package="keras_skel")
class ContextAttention(layers.Layer):
    """Spatial attention over all positions followed by channel attention (CANet, Fig. 3).

    Spatial part (non-local block, Wang et al. 2018, in the position-attention form of
    DANet): 1×1 projections `q = Wq x`, `k = Wk x` (`channels // key_reduction` channels each)
    and `v = Wv x` (`channels`); with the `P = H·W` positions flattened,

        A = softmax_j(q_i · k_j)            # [P, P], each row sums to 1
        y = gamma · (A v) + x                # gamma: learned scalar, initialized to 0

    so the block starts as the identity and learns how much long-range context to mix in.
    Channel part (squeeze-excitation, Hu et al. 2018): `s = sigmoid(W2 relu(W1 mean_P(y)))`
    with `W1` reducing to `channels // se_reduction` (1/16 as in the paper) and the output
    `y · s` (per channel). The softmax is computed in float32 under mixed precision.

    Works with unknown batch, height and width. Memory: the attention matrix has `(H·W)²`
    entries per image at the block's stage (`attention_matrix_bytes`); a forward pass holds
    about two of them, a training step about four. At a stage whose input is `2^(k-1)` times
    smaller than the network input (stage k of `build_canet`, 1-based), one float32 matrix
    per image costs:

        network input   stage 1     stage 2     stage 3     stage 4     stage 5
        128 × 128       1 GiB       64 MiB      4 MiB       256 KiB     16 KiB
        256 × 256       16 GiB      1 GiB       64 MiB      4 MiB       256 KiB
        512 × 512       256 GiB     16 GiB      1 GiB       64 MiB      4 MiB
        1024 × 1024     4 TiB       256 GiB     16 GiB      1 GiB       64 MiB

    Keeping one matrix at or under 1 GiB per image (a 128² stage, 16384 positions), the
    largest network input is 128² with attention at stage 1, 256² at stage 2, 512² at stage
    3, 1024² at stage 4 and 2048² at stage 5: the paper's stages 3–5 run at 512² (tile larger
    images with overlap), stages 1–5 only at 128².

    Args:
        key_reduction: query/key channels are `max(1, channels // key_reduction)`.
        se_reduction: squeeze-excitation hidden units are `max(1, channels // se_reduction)`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> y = ContextAttention()(keras.ops.zeros((1, 16, 16, 32)))
        >>> tuple(y.shape)
        (1, 16, 16, 32)

    References:
        Huang et al., "Context Attention Network for Skeleton Extraction", CVPR Workshops
        2022. Wang et al., "Non-local neural networks", CVPR 2018. Fu et al., "Dual attention
        network for scene segmentation", CVPR 2019. Hu et al., "Squeeze-and-excitation
        networks", CVPR 2018.
    """

    def __init__(self, key_reduction: int = 8, se_reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        if key_reduction < 1 or se_reduction < 1:
            raise ValueError(
                f"key_reduction and se_reduction must be >= 1, got {key_reduction}, {se_reduction}"
            )
        self.key_reduction = key_reduction
        self.se_reduction = se_reduction
        self.query = None
        self.key = None
        self.value = None
        self.se_reduce = None
        self.se_expand = None
        self.gamma = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"ContextAttention needs a known channel dimension, got {input_shape}")
        key_channels = max(1, channels // self.key_reduction)
        se_channels = max(1, channels // self.se_reduction)
        policy = self.dtype_policy
        self.query = layers.Conv2D(key_channels, 1, name="query", dtype=policy)
        self.key = layers.Conv2D(key_channels, 1, name="key", dtype=policy)
        self.value = layers.Conv2D(channels, 1, name="value", dtype=policy)
        self.se_reduce = layers.Dense(se_channels, activation="relu", name="se_reduce", dtype=policy)
        self.se_expand = layers.Dense(channels, activation="sigmoid", name="se_expand", dtype=policy)
        for projection in (self.query, self.key, self.value):
            projection.build(input_shape)
        self.se_reduce.build((None, channels))
        self.se_expand.build((None, se_channels))
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, channels = shape[0], inputs.shape[-1]
        query = ops.reshape(self.query(inputs), (batch, -1, self.query.filters))
        key = ops.reshape(self.key(inputs), (batch, -1, self.key.filters))
        value = ops.reshape(self.value(inputs), (batch, -1, channels))
        logits = ops.matmul(query, ops.transpose(key, (0, 2, 1)))  # [N, P, P]
        attention = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        context = ops.matmul(ops.cast(attention, value.dtype), value)  # [N, P, C]
        context = ops.reshape(context, shape)
        spatial = ops.cast(self.gamma, inputs.dtype) * context + inputs

        squeeze = ops.mean(spatial, axis=(1, 2))
        excite = self.se_expand(self.se_reduce(squeeze))
        return spatial * ops.expand_dims(ops.expand_dims(excite, 1), 1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(key_reduction=self.key_reduction, se_reduction=self.se_reduction)
        return config
