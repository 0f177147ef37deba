"""Custom Keras layers (one per file), registered for `.keras` serialization."""

from keras_skel.layers.residual import ResidualBlock

__all__ = ["ResidualBlock"]
