"""SkeletonNet, part 1: image → skeletal points via curve and sheet decoders.

Tang, Han, Xu, Gong, Jia, Yuan, "SkeletonNet: A Topology-Preserving Solution for Learning Mesh
Reconstruction of Object Surfaces from RGB Images", TPAMI (§4.1). An image encoder (ResNet-18-
like, `width` × 1, 2, 4, 8 channels, two residual blocks per stage) gives a latent code; the
CurSkeDecoder deforms samples of `lines` line segments [0, 1] and the SurSkeDecoder samples of
`squares` unit squares [0, 1]² into points on skeletal curves and sheets (one MLP per
primitive, `PrimitiveMLP`: 512, 256, 128, 3 with tanh last, scaled by 0.5 into the unit cube
[-0.5, 0.5]³). Each decoder is trained with Chamfer distance to its ground-truth subset plus
α · Laplacian smoothness over the primitives' neighbour tables (eq. 1–4, α 0.2).

`decoders` selects the paper's Table 1 variants:

- ``both`` (SkeletonNet): outputs `curve` and `sheet`;
- ``lines`` / ``squares``: one decoder of `lines + squares` primitives of one kind fits all
  skeletal points (output `points`);
- ``shared``: one decoder (shared MLPs) deforms lines and squares alike (a line sample is
  (t, 0)), fitting all skeletal points (output `points`);
- ``pointwise``: an MLP regresses all the points from the latent code directly (output
  `points`; no neighbour structure, so no Laplacian).

Example:
    >>> model = build_skeletonnet(image_size=32, width=4, latent=16, mlp_units=(16, 3), lines=2, squares=2,
    ...                           line_samples=4, square_side=2)
    >>> {k: tuple(v.shape) for k, v in model(np.zeros((1, 32, 32, 3), "float32")).items()}
    {'curve': (1, 8, 3), 'sheet': (1, 8, 3)}
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

from keras_skel.errors import ConfigError
from keras_skel.layers.primitive_mlp import PrimitiveMLP
from keras_skel.layers.residual import ResidualBlock
from keras_skel.registry import MODELS

__all__ = ["DECODER_VARIANTS", "build_skeletonnet", "line_grid", "square_grid", "line_neighbours",
           "square_neighbours", "skeletonnet_neighbours"]

DECODER_VARIANTS = ("both", "lines", "squares", "shared", "pointwise")


def line_grid(count: int, samples: int) -> np.ndarray:
    """`[count, samples, 1]` regular samples of [0, 1] for each of `count` segments."""
    return np.tile(np.linspace(0, 1, samples, dtype=np.float32)[None, :, None], (count, 1, 1))


def square_grid(count: int, side: int) -> np.ndarray:
    """`[count, side², 2]` regular `side × side` grid samples of [0, 1]² for each square."""
    g = np.linspace(0, 1, side, dtype=np.float32)
    uu, vv = np.meshgrid(g, g, indexing="ij")
    return np.tile(np.stack([uu.ravel(), vv.ravel()], -1)[None], (count, 1, 1))


def line_neighbours(count: int, samples: int, offset: int = 0) -> np.ndarray:
    """`[count · samples, 2]` indices of each sample's neighbours on its segment (-1 = none),
    points numbered segment by segment from `offset`."""
    table = np.full((count * samples, 2), -1, np.int32)
    for k in range(count):
        base = k * samples
        for i in range(samples):
            if i > 0:
                table[base + i, 0] = offset + base + i - 1
            if i < samples - 1:
                table[base + i, 1] = offset + base + i + 1
    return table


def square_neighbours(count: int, side: int, offset: int = 0) -> np.ndarray:
    """`[count · side², 4]` indices of each grid sample's 4-neighbours on its square (-1 = none)."""
    table = np.full((count * side * side, 4), -1, np.int32)
    for k in range(count):
        base = k * side * side
        for i in range(side):
            for j in range(side):
                row = base + i * side + j
                for slot, (di, dj) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
                    if 0 <= i + di < side and 0 <= j + dj < side:
                        table[row, slot] = offset + base + (i + di) * side + (j + dj)
    return table


def skeletonnet_neighbours(decoders: str = "both", lines: int = 20, squares: int = 20, line_samples: int = 25,
                           square_side: int = 5) -> dict[str, np.ndarray | None]:
    """The neighbour table of each output of `build_skeletonnet` with these arguments (None for
    pointwise)."""
    if decoders == "both":
        return {"curve": line_neighbours(lines, line_samples), "sheet": square_neighbours(squares, square_side)}
    if decoders == "lines":
        return {"points": line_neighbours(lines + squares, line_samples)}
    if decoders == "squares":
        return {"points": square_neighbours(lines + squares, square_side)}
    if decoders == "shared":
        table = line_neighbours(lines, line_samples)
        squares_table = square_neighbours(squares, square_side, offset=lines * line_samples)
        padded = np.full((len(table), 4), -1, np.int32)
        padded[:, :2] = table
        return {"points": np.concatenate([padded, squares_table])}
    return {"points": None}


def _encoder(image, width: int, latent: int):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, factor in enumerate((1, 2, 4, 8)):
        x = layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
        for block in range(2):
            x = ResidualBlock(width * factor, name=f"stage{stage + 1}_block{block + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return layers.Dense(latent, activation="relu", name="latent")(x)


class _Broadcast(layers.Layer):
    """[B, L] latent + constant samples [K, N, d] → [B, K, N, L + d] (internal)."""

    def __init__(self, samples: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.samples = np.asarray(samples, np.float32)

    def call(self, latent):
        batch = ops.shape(latent)[0]
        k, n, d = self.samples.shape
        code = ops.broadcast_to(latent[:, None, None, :], (batch, k, n, latent.shape[-1]))
        grid = ops.broadcast_to(ops.convert_to_tensor(self.samples, latent.dtype)[None], (batch, k, n, d))
        return ops.concatenate([code, grid], axis=-1)

    def compute_output_shape(self, input_shape):
        k, n, d = self.samples.shape
        return (input_shape[0], k, n, input_shape[-1] + d)

    def get_config(self):
        config = super().get_config()
        config.update(samples=self.samples.tolist())
        return config


keras.saving.register_keras_serializable(package="keras_skel", name="SkeletonNetBroadcast")(_Broadcast)


def _decode(latent, samples: np.ndarray, units, name: str):
    x = _Broadcast(samples, name=f"{name}_inputs")(latent)
    x = PrimitiveMLP(samples.shape[0], units, name=f"{name}_mlp")(x)
    x = layers.Reshape((samples.shape[0] * samples.shape[1], 3), name=f"{name}_flat")(x)
    return layers.Rescaling(0.5, dtype="float32", name=name)(x)


@MODELS.register("skeletonnet")
def build_skeletonnet(
    image_size: int = 64,
    width: int = 32,
    latent: int = 512,
    decoders: str = "both",
    lines: int = 20,
    squares: int = 20,
    line_samples: int = 25,
    square_side: int = 5,
    mlp_units: Sequence[int] = (512, 256, 128, 3),
    input_channels: int = 3,
    name: str = "skeletonnet",
) -> keras.Model:
    """Builds SkeletonNet's skeletal point generator.

    Args:
        image_size: side of the (square) input image.
        width: encoder channels of its first stage.
        latent: size of the latent code.
        decoders: a `DECODER_VARIANTS` entry (see the module docstring).
        lines: line primitives of the CurSkeDecoder.
        squares: unit squares of the SurSkeDecoder.
        line_samples: samples per line segment.
        square_side: grid samples per square side (side² per square).
        mlp_units: layers of each primitive's MLP; the last must be 3.
        input_channels: image channels.
        name: model name.

    Returns:
        A `keras.Model` from `[B, S, S, C]` to a dict of point sets `[B, P, 3]` in [-0.5, 0.5]³:
        `curve` and `sheet` (``both``) or `points`.
    """
    if decoders not in DECODER_VARIANTS:
        raise ConfigError(f"unknown decoders {decoders!r}; expected one of {', '.join(DECODER_VARIANTS)}")
    if tuple(mlp_units)[-1] != 3:
        raise ConfigError(f"mlp_units must end with 3 (x, y, z); got {list(mlp_units)}")
    if image_size % 16:
        raise ConfigError(f"image_size must be a multiple of 16 (four poolings); got {image_size}")
    image = keras.Input((image_size, image_size, input_channels), name="image")
    code = _encoder(image, width, latent)
    if decoders == "both":
        outputs = {"curve": _decode(code, line_grid(lines, line_samples), mlp_units, "curve"),
                   "sheet": _decode(code, square_grid(squares, square_side), mlp_units, "sheet")}
    elif decoders == "lines":
        outputs = {"points": _decode(code, line_grid(lines + squares, line_samples), mlp_units, "points")}
    elif decoders == "squares":
        outputs = {"points": _decode(code, square_grid(lines + squares, square_side), mlp_units, "points")}
    elif decoders == "shared":
        # One set of MLPs: line samples become (t, 0) so lines and squares share an input space;
        # the MLP of primitive k serves line k and square k.
        count = max(lines, squares)
        both = np.zeros((count, line_samples + square_side ** 2, 2), np.float32)
        both[:, :line_samples, :1] = line_grid(count, line_samples)
        both[:, line_samples:] = square_grid(count, square_side)
        x = _Broadcast(both, name="points_inputs")(code)
        x = PrimitiveMLP(count, mlp_units, name="points_mlp")(x)
        curve = layers.Reshape((lines * line_samples, 3))(x[:, :lines, :line_samples])
        sheet = layers.Reshape((squares * square_side ** 2, 3))(x[:, :squares, line_samples:])
        x = layers.Concatenate(axis=1, name="points_flat")([curve, sheet])
        outputs = {"points": layers.Rescaling(0.5, dtype="float32", name="points")(x)}
    else:
        total = lines * line_samples + squares * square_side ** 2
        x = code
        for i, units in enumerate(tuple(mlp_units)[:-1]):
            x = layers.Dense(units, activation="relu", name=f"pointwise_{i + 1}")(x)
        x = layers.Dense(total * 3, activation="tanh", name="pointwise_out")(x)
        x = layers.Reshape((total, 3), name="points_flat")(x)
        outputs = {"points": layers.Rescaling(0.5, dtype="float32", name="points")(x)}
    return keras.Model(image, outputs, name=name)

