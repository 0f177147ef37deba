"""Pure-TensorFlow graph ops shared by training, prediction and exported models.

Each is exact against its NumPy / SciPy / scikit-image reference and converts to TFLite
builtin ops.
"""

from keras_skel.ops.edt import distance_transform, squared_distance_transform
from keras_skel.ops.flux import flux_to_skeleton
from keras_skel.ops.holes import fill_holes
from keras_skel.ops.morphology import binary_closing, binary_dilation, binary_erosion, binary_opening, disk
from keras_skel.ops.padding import crop_to, pad_to_multiple
from keras_skel.ops.postprocess import probability_to_skeleton
from keras_skel.ops.pruning import prune_spurs
from keras_skel.ops.thinning import thin

__all__ = [
    "thin",
    "prune_spurs",
    "probability_to_skeleton",
    "flux_to_skeleton",
    "squared_distance_transform",
    "distance_transform",
    "fill_holes",
    "disk",
    "binary_dilation",
    "binary_erosion",
    "binary_closing",
    "binary_opening",
    "pad_to_multiple",
    "crop_to",
]
