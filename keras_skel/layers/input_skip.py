"""`InputSkip`: a learned residual path from the binary input shape to a model's logits."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

__all__ = ["InputSkip"]


@keras.saving.register_keras_serializable(package="keras_skel")
class InputSkip(layers.Layer):
    """`[logits, images]` → `logits + scale · (2 · (images > 0.5) − 1)`, `scale` learned.

    A residual path around the whole network for a model that predicts the clean shape: with
    `scale` starting at `initial_scale` (3: probability 0.95 inside, 0.05 outside) the model
    begins as the identity on the input shape and its layers only learn the corrections
    (boundary noise to remove). float32 throughout.
    """

    def __init__(self, initial_scale: float = 3.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.initial_scale = float(initial_scale)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(),
                                     initializer=keras.initializers.Constant(self.initial_scale))

    def call(self, inputs):
        logits, images = inputs
        sign = 2.0 * tf.cast(images > 0.5, logits.dtype) - 1.0
        return logits + tf.cast(self.scale, logits.dtype) * sign

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale}
