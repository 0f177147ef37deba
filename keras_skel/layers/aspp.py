"""Atrous spatial pyramid pooling, DeepFlux's variant (four parallel atrous 3×3 convolutions)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

__all__ = ["ASPP"]


@keras.saving.register_keras_serializable(package="keras_skel")
class ASPP(layers.Layer):
    """Parallel 3×3 convolutions with dilation rates `rates`, each followed by batch norm and
    ReLU, concatenated along channels.

    DeepFlux puts it on VGG16's last stage (conv5, stride 16) with rates 2, 4, 8 and 16 to
    enlarge the receptive field without more downsampling (Chen et al., "DeepLab", TPAMI 2018;
    Wang et al., "DeepFlux for Skeletons in the Wild", CVPR 2019, §3.3).

    Args:
        filters: channels of each branch (output: `filters * len(rates)` channels).
        rates: dilation rate of each branch.
        use_batchnorm: batch norm after each branch's convolution.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> y = ASPP(8, rates=(2, 4))(keras.ops.zeros((1, 16, 16, 4)))
        >>> tuple(y.shape)
        (1, 16, 16, 16)
    """

    def __init__(self, filters: int, rates: Sequence[int] = (2, 4, 8, 16), use_batchnorm: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not rates or any(int(r) < 1 for r in rates):
            raise ValueError(f"ASPP rates must be a non-empty list of integers ≥ 1; got {rates}")
        self.filters = int(filters)
        self.rates = tuple(int(r) for r in rates)
        self.use_batchnorm = bool(use_batchnorm)
        self.convs = [layers.Conv2D(self.filters, 3, padding="same", dilation_rate=r, use_bias=not use_batchnorm,
                                    name=f"atrous_{r}", dtype=self.dtype_policy) for r in self.rates]
        self.norms = [layers.BatchNormalization(name=f"bn_{r}", dtype=self.dtype_policy) if use_batchnorm else None
                      for r in self.rates]
        self.act = layers.Activation("relu", dtype=self.dtype_policy)
        self.concat = layers.Concatenate(axis=-1, dtype=self.dtype_policy)

    def build(self, input_shape):
        inner = tuple(input_shape[:-1]) + (self.filters,)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(input_shape)
            if norm is not None:
                norm.build(inner)
        super().build(input_shape)

    def call(self, inputs, training=None):
        branches = []
        for conv, norm in zip(self.convs, self.norms):
            x = conv(inputs)
            if norm is not None:
                x = norm(x, training=training)
            branches.append(self.act(x))
        return self.concat(branches) if len(branches) > 1 else branches[0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters * len(self.rates),)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, rates=list(self.rates), use_batchnorm=self.use_batchnorm)
        return config
