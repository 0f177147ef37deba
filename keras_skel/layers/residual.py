"""Residual block used by the residual U-Net (and CANet's encoder/decoder stages)."""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["ResidualBlock"]


@keras.saving.register_keras_serializable(package="keras_skel")
class ResidualBlock(layers.Layer):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projected) shortcut.

    `out = act(BN(conv(act(BN(conv(x))))) + shortcut(x))` (He et al., 2016), the block the
    residual U-Net of Panichev & Voloshyna (CVPRW 2019) puts after each encoder convolution.

    Args:
        filters: output channels.
        kernel_size: size of both convolutions.
        use_batchnorm: batch normalization after each convolution.
        activation: activation name.
        shortcut: False drops the shortcut, leaving the plain double convolution of a U-Net
            stage (`act(BN(conv(act(BN(conv(x))))))`, for ablations).
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> y = ResidualBlock(16)(keras.ops.zeros((1, 32, 32, 8)))
        >>> tuple(y.shape)
        (1, 32, 32, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        use_batchnorm: bool = True,
        activation: str = "relu",
        shortcut: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.shortcut = bool(shortcut)
        self.kernel_size = kernel_size
        self.use_batchnorm = use_batchnorm
        self.activation = activation
        conv_kwargs = dict(padding="same", use_bias=not use_batchnorm, dtype=self.dtype_policy)
        self.conv1 = layers.Conv2D(filters, kernel_size, name="conv1", **conv_kwargs)
        self.conv2 = layers.Conv2D(filters, kernel_size, name="conv2", **conv_kwargs)
        self.bn1 = layers.BatchNormalization(name="bn1", dtype=self.dtype_policy) if use_batchnorm else None
        self.bn2 = layers.BatchNormalization(name="bn2", dtype=self.dtype_policy) if use_batchnorm else None
        self.act = layers.Activation(activation, dtype=self.dtype_policy)
        self.projection = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels != self.filters and self.shortcut:
            self.projection = layers.Conv2D(
                self.filters, 1, padding="same", name="projection", dtype=self.dtype_policy
            )
            self.projection.build(input_shape)
        self.conv1.build(input_shape)
        inner_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.conv2.build(inner_shape)
        if self.use_batchnorm:
            self.bn1.build(inner_shape)
            self.bn2.build(inner_shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        x = self.conv1(inputs)
        if self.bn1 is not None:
            x = self.bn1(x, training=training)
        x = self.act(x)
        x = self.conv2(x)
        if self.bn2 is not None:
            x = self.bn2(x, training=training)
        if not self.shortcut:
            return self.act(x)
        shortcut = inputs if self.projection is None else self.projection(inputs)
        return self.act(x + shortcut)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            use_batchnorm=self.use_batchnorm,
            activation=self.activation,
            shortcut=self.shortcut,
        )
        return config
