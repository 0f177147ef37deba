"""SkeletonNet's differentiable Point2Voxel layer: a point set → a soft occupancy volume."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
from keras import layers, ops

__all__ = ["Point2Voxel", "voxel_units"]


def voxel_units(points, resolution: int):
    """Points in the unit cube [-0.5, 0.5]³ → voxel units of a `resolution`³ grid, where voxel
    `i` has its centre at `i` (so the cube's faces are at -0.5 and `resolution` − 0.5).

    Example:
        >>> voxel_units(np.array([[-0.5, 0.0, 0.5]]), 4).tolist()
        [[-0.5, 1.5, 3.5]]
    """
    return (points + 0.5) * resolution - 0.5


@keras.saving.register_keras_serializable(package="keras_skel")
class Point2Voxel(layers.Layer):
    """`U(i) = exp(−M · min_p ‖c(i) − p‖²)` on a `resolution`³ grid (Tang et al., SkeletonNet,
    TPAMI, eq. 6; M = 10), distances in voxel units.

    Only voxels where `exp(−M d²) ≥ cutoff` (default 1e-4, i.e. within d² < ln(1/cutoff) / M
    of a point, 0.96 voxel for M = 10) are computed; all others are 0. Each point visits the
    voxels of the (2⌈r⌉ + 1)³ block around its nearest voxel, so memory is O(points ×
    neighbourhood), never O(points × voxels); the minimum over points is a segment max of
    `exp(−M d²)` over the visited voxels, which is differentiable with respect to the points
    (the gradient reaches the point nearest each voxel).

    Input: points `[B, P, 3]` in the unit cube [-0.5, 0.5]³ (x, y, z → volume axes 0, 1, 2),
    computed in the layer's dtype; points outside contribute only to voxels inside. Output:
    `[B, R, R, R, 1]`.

    Args:
        resolution: grid size R.
        scale: M.
        cutoff: smallest value kept.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> volume = Point2Voxel(8)(np.zeros((1, 5, 3), "float32"))
        >>> tuple(volume.shape)
        (1, 8, 8, 8, 1)
    """

    def __init__(self, resolution: int, scale: float = 10.0, cutoff: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        if int(resolution) < 1 or scale <= 0 or not 0 < cutoff < 1:
            raise ValueError(f"Point2Voxel needs resolution ≥ 1, scale > 0 and 0 < cutoff < 1; got {resolution}, "
                             f"{scale}, {cutoff}")
        self.resolution = int(resolution)
        self.scale = float(scale)
        self.cutoff = float(cutoff)
        self.radius2 = math.log(1.0 / self.cutoff) / self.scale
        reach = int(math.ceil(math.sqrt(self.radius2)))
        self._offsets = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3)), np.float32)

    def call(self, points):
        points = ops.cast(points, self.compute_dtype)
        r = self.resolution
        batch = ops.shape(points)[0]
        q = voxel_units(points, r)  # [B, P, 3]
        centre = ops.round(ops.stop_gradient(q))
        offsets = ops.convert_to_tensor(self._offsets, dtype=self.compute_dtype)
        voxels = centre[:, :, None, :] + offsets[None, None]  # [B, P, K, 3]
        d2 = ops.sum(ops.square(voxels - q[:, :, None, :]), axis=-1)  # [B, P, K]
        inside = ops.all((voxels >= 0) & (voxels <= r - 1), axis=-1) & (d2 < self.radius2)
        values = ops.where(inside, ops.exp(-self.scale * d2), ops.zeros_like(d2))
        index = ops.cast(ops.clip(voxels, 0, r - 1), "int32")
        flat = (index[..., 0] * r + index[..., 1]) * r + index[..., 2]
        flat = flat + ops.reshape(ops.arange(batch, dtype="int32") * (r ** 3), (-1, 1, 1))
        # Voxels outside the grid were clipped onto its faces with value 0: a max ignores them.
        volume = ops.segment_max(ops.reshape(values, (-1,)), ops.reshape(flat, (-1,)), num_segments=batch * r ** 3)
        volume = ops.maximum(volume, 0.0)  # segments no point reached hold the dtype's lowest value
        return ops.reshape(volume, (batch, r, r, r, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.resolution, self.resolution, self.resolution, 1)

    def get_config(self):
        config = super().get_config()
        config.update(resolution=self.resolution, scale=self.scale, cutoff=self.cutoff)
        return config
