"""K parallel MLPs, one per primitive (AtlasNet / SkeletonNet decoders), as batched einsums."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers, ops

__all__ = ["PrimitiveMLP"]


@keras.saving.register_keras_serializable(package="keras_skel")
class PrimitiveMLP(layers.Layer):
    """`primitives` independent MLPs applied to `[B, K, N, C]` (K = primitives, N samples each):
    primitive k's samples go through MLP k only. Hidden layers use ReLU, the last layer
    `output_activation` (SkeletonNet's decoders: units 512, 256, 128, 3 with tanh last).

    Args:
        primitives: K.
        units: widths of the layers; the last is the output size.
        output_activation: activation of the last layer.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> y = PrimitiveMLP(4, (8, 3))(keras.ops.zeros((2, 4, 5, 6)))
        >>> tuple(y.shape)
        (2, 4, 5, 3)
    """

    def __init__(self, primitives: int, units: Sequence[int] = (512, 256, 128, 3), output_activation: str = "tanh",
                 **kwargs):
        super().__init__(**kwargs)
        if int(primitives) < 1 or not units:
            raise ValueError(f"PrimitiveMLP needs ≥ 1 primitive and ≥ 1 layer; got {primitives}, {units}")
        self.primitives = int(primitives)
        self.units = tuple(int(u) for u in units)
        self.output_activation = output_activation
        self._activation = keras.activations.get(output_activation)

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.kernels, self.biases = [], []
        for i, width in enumerate(self.units):
            # Glorot per primitive: a (K, in, out) kernel given to glorot_uniform would count K
            # into both fans and start every MLP about sqrt(K) times too small.
            limit = (6.0 / (size + width)) ** 0.5
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=(self.primitives, size, width),
                                                initializer=keras.initializers.RandomUniform(-limit, limit)))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(self.primitives, width), initializer="zeros"))
            size = width
        super().build(input_shape)

    def call(self, inputs):
        x = inputs
        last = len(self.units) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = ops.einsum("bkni,kio->bkno", x, ops.cast(kernel, x.dtype)) + ops.cast(bias, x.dtype)[None, :, None, :]
            x = self._activation(x) if i == last else ops.relu(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(primitives=self.primitives, units=list(self.units), output_activation=self.output_activation)
        return config
