"""Skeleton metrics (NumPy/SciPy, no TensorFlow)."""

from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator, match_count, prf_from_counts, skeleton_f1
from keras_skel.metrics.threshold import search_threshold

__all__ = ["SkeletonF1Accumulator", "match_count", "prf_from_counts", "skeleton_f1", "search_threshold"]
