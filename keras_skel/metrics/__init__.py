"""Skeleton and segmentation/topology metrics (NumPy/SciPy, no TensorFlow)."""

from keras_skel.metrics.benchmark import BenchmarkAccumulator, plot_pr_curve, thin_map
from keras_skel.metrics.points import chamfer
from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator, match_count, prf_from_counts, skeleton_f1
from keras_skel.metrics.threshold import search_threshold
from keras_skel.metrics.topology import (
    SegmentationAccumulator,
    betti_errors,
    betti_numbers,
    cldice_score,
    dice_score,
    segmentation_scores,
)

__all__ = ["chamfer", "SkeletonF1Accumulator", "match_count", "prf_from_counts", "skeleton_f1", "search_threshold",
           "SegmentationAccumulator", "betti_errors", "betti_numbers", "cldice_score", "dice_score",
           "segmentation_scores", "BenchmarkAccumulator", "plot_pr_curve", "thin_map"]
