"""Pure-TensorFlow graph ops shared by training, prediction and exported models."""

from keras_skel.ops.padding import crop_to, pad_to_multiple
from keras_skel.ops.postprocess import probability_to_skeleton
from keras_skel.ops.thinning import thin

__all__ = ["thin", "probability_to_skeleton", "pad_to_multiple", "crop_to"]
