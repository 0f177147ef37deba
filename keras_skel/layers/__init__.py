"""Custom Keras layers (one per file), registered for `.keras` serialization."""

from keras_skel.layers.aspp import ASPP
from keras_skel.layers.context_attention import ContextAttention
from keras_skel.layers.input_skip import InputSkip
from keras_skel.layers.point2voxel import Point2Voxel
from keras_skel.layers.primitive_mlp import PrimitiveMLP
from keras_skel.layers.preprocess import ShapeInput
from keras_skel.layers.residual import ResidualBlock
from keras_skel.layers.resize import ResizeLike
from keras_skel.layers.subvolumes import SubvolumeMerge, SubvolumeSplit

__all__ = ["ASPP", "ContextAttention", "InputSkip", "Point2Voxel", "PrimitiveMLP", "ResidualBlock", "ResizeLike",
           "ShapeInput",
           "SubvolumeMerge", "SubvolumeSplit"]
