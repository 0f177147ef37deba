"""Overlapping subvolumes of a cubic volume, and their merge back (averaged where they overlap).

SkeletonNet's local refinement stream (Tang et al., TPAMI, §4.2) super-resolves overlapping
subvolumes of the Point2Voxel volume one by one and averages the upsampled subvolumes where
they overlap. `SubvolumeSplit` cuts a `[B, R, R, R, C]` volume into the `n³` blocks of a regular
grid of cores of side `core` (n = R / core), each widened by `halo` voxels on every side (zeros
beyond the volume), and stacks them on the batch axis; `SubvolumeMerge` places `n³` blocks back
on their grid — at `scale` times the resolution — and divides every voxel by the number of blocks
covering it. Both are slicing, stacking and padding one axis at a time (3·n ops, not n³).

Example:
    >>> x = np.random.rand(2, 8, 8, 8, 1).astype("float32")
    >>> blocks = SubvolumeSplit(core=4, halo=2)(x)
    >>> tuple(blocks.shape)
    (16, 8, 8, 8, 1)
    >>> bool(np.allclose(SubvolumeMerge(grid=2, core=4, halo=2)(blocks), x))
    True
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

__all__ = ["SubvolumeSplit", "SubvolumeMerge", "overlap_counts"]


def overlap_counts(grid: int, core: int, halo: int) -> np.ndarray:
    """How many of the `grid` blocks (side `core + 2·halo`, starting every `core` voxels at
    −`halo`) cover each voxel of `[0, grid · core)`, float32 `[grid · core]`."""
    side = core + 2 * halo
    count = np.zeros(grid * core + 2 * halo, np.float32)
    for i in range(grid):
        count[i * core:i * core + side] += 1
    return count[halo:halo + grid * core]


@keras.saving.register_keras_serializable(package="keras_skel")
class SubvolumeSplit(layers.Layer):
    """`[B, R, R, R, C]` → `[B · n³, s, s, s, C]` with n = R / `core`, s = `core` + 2 · `halo`;
    block `(i, j, k)` of image `b` is row `b · n³ + (i · n + j) · n + k` and covers voxels
    `[i · core − halo, (i + 1) · core + halo)` along axis 1 (and likewise j, k), zeros outside.

    Args:
        core: side of each block's core; R must be a multiple of it.
        halo: voxels of context added on each side.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, core: int, halo: int, **kwargs):
        super().__init__(**kwargs)
        if int(core) < 1 or int(halo) < 0:
            raise ValueError(f"SubvolumeSplit needs core ≥ 1 and halo ≥ 0; got {core}, {halo}")
        self.core, self.halo = int(core), int(halo)

    def _grid(self, side) -> int:
        if side is None or side % self.core:
            raise ValueError(f"SubvolumeSplit(core={self.core}) needs a known volume side that is a multiple of "
                             f"{self.core}; got {side}")
        return side // self.core

    def call(self, x):
        n = self._grid(x.shape[1])
        h, c, s = self.halo, self.core, self.core + 2 * self.halo
        x = ops.pad(x, [[0, 0], [h, h], [h, h], [h, h], [0, 0]])
        x = ops.stack([x[:, i * c:i * c + s] for i in range(n)], axis=1)  # [B, n, s, L, L, C]
        x = ops.stack([x[:, :, :, j * c:j * c + s] for j in range(n)], axis=2)  # [B, n, n, s, s, L, C]
        x = ops.stack([x[:, :, :, :, :, k * c:k * c + s] for k in range(n)], axis=3)  # [B, n, n, n, s, s, s, C]
        return ops.reshape(x, (-1, s, s, s, x.shape[-1]))

    def compute_output_shape(self, input_shape):
        n = self._grid(input_shape[1])
        s = self.core + 2 * self.halo
        batch = None if input_shape[0] is None else input_shape[0] * n ** 3
        return (batch, s, s, s, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(core=self.core, halo=self.halo)
        return config


@keras.saving.register_keras_serializable(package="keras_skel")
class SubvolumeMerge(layers.Layer):
    """The inverse of `SubvolumeSplit(core, halo)` at `scale` × its resolution: `[B · grid³, s,
    s, s, C]` blocks (s = `scale` · (`core` + 2 · `halo`)) → `[B, R, R, R, C]` with R = `scale` ·
    `grid` · `core`, each voxel the mean of the blocks covering it.

    Args:
        grid: blocks per axis (n).
        core: core side at the split's resolution.
        halo: halo at the split's resolution.
        scale: how much larger the blocks are than the split's (2 for super-resolved blocks).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, grid: int, core: int, halo: int, scale: int = 1, **kwargs):
        super().__init__(**kwargs)
        if int(grid) < 1 or int(core) < 1 or int(halo) < 0 or int(scale) < 1:
            raise ValueError(f"SubvolumeMerge needs grid, core, scale ≥ 1 and halo ≥ 0; got {grid}, {core}, {halo}, "
                             f"{scale}")
        self.grid, self.core, self.halo, self.scale = int(grid), int(core), int(halo), int(scale)
        c, h = self.core * self.scale, self.halo * self.scale
        count = overlap_counts(self.grid, c, h)
        self._inverse_count = (1.0 / (count[:, None, None] * count[None, :, None] * count[None, None, :]))[..., None]

    def call(self, blocks):
        n, c, h = self.grid, self.core * self.scale, self.halo * self.scale
        s, length = c + 2 * h, n * c + 2 * h
        x = ops.reshape(blocks, (-1, n, n, n, s, s, s, blocks.shape[-1]))

        def overlap_add(t, grid_axis, block_axis):
            # Sums block i, shifted to offset i·c along `block_axis`, over the grid axis.
            total = None
            for i in range(n):
                part = ops.take(t, i, axis=grid_axis)  # drops grid_axis: block_axis moves down by one
                pad = [[0, 0]] * len(part.shape)
                pad[block_axis - 1] = [i * c, length - i * c - s]
                part = ops.pad(part, pad)
                total = part if total is None else total + part
            return total

        # x: [B, n, n, n, s, s, s, C]; block (i, j, k) spans axes 4, 5, 6.
        x = overlap_add(x, 3, 6)  # [B, n, n, s, s, L, C]
        x = overlap_add(x, 2, 4)  # [B, n, s, L, L, C]
        x = overlap_add(x, 1, 2)  # [B, L, L, L, C]
        x = x[:, h:h + n * c, h:h + n * c, h:h + n * c]
        return x * ops.convert_to_tensor(self._inverse_count, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        side = self.scale * self.grid * self.core
        batch = None if input_shape[0] is None else input_shape[0] // self.grid ** 3
        return (batch, side, side, side, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(grid=self.grid, core=self.core, halo=self.halo, scale=self.scale)
        return config
