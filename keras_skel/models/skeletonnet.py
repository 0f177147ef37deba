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

Part 2, the volumetric refinement (§4.2–4.3, `refinement`): the points K (curve ∪ sheet) go
through the differentiable `Point2Voxel` (M 10) onto an r′³ grid (r′ = r / 2 for the output
resolution r = `resolution`), U_in. ``subvolume``: a local 3-D U-Net super-resolves the 4³
overlapping subvolumes of U_in (cores of r′ / 4 voxels plus a 2-voxel halo: the paper's
s′ = r′/4 + 4, s = 2s′) to twice the resolution, averaged where they overlap (`volume`, r³).
``guided`` (SkeletonNet): first a global 3-D U-Net refines U_in max-pooled to (r / 4)³, with an
image feature volume ((r / 8)³, from an independent image encoder, upsampled ×2) as extra
input channels, into `coarse`; the local stream then gets `coarse` (upsampled to r′) as a second
input channel of every subvolume. Both streams are `models.unet3d.unet3d_features` bodies with
sigmoid heads, trained with per-voxel BCE (eq. 5) against V* (and V* max-pooled by 4 for
`coarse`). `stage` is the paper's schedule: ``points`` (no refinement: the decoders alone),
``refine`` (the point generator frozen, BatchNorm in inference mode: the streams learn on its
points) and ``joint`` (everything trainable: Chamfer + Laplacian + β · BCE, eq. 7).

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
from keras_skel.layers.point2voxel import Point2Voxel
from keras_skel.layers.primitive_mlp import PrimitiveMLP
from keras_skel.layers.residual import ResidualBlock
from keras_skel.layers.subvolumes import SubvolumeMerge, SubvolumeSplit
from keras_skel.registry import MODELS

__all__ = ["DECODER_VARIANTS", "REFINEMENTS", "STAGES", "build_skeletonnet", "refine_geometry",
           "line_grid", "square_grid", "line_neighbours",
           "square_neighbours", "skeletonnet_neighbours", "point_label_runs"]

DECODER_VARIANTS = ("both", "lines", "squares", "shared", "pointwise")
REFINEMENTS = ("none", "subvolume", "guided")
STAGES = ("points", "refine", "joint")


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


def point_label_runs(decoders: str = "both", lines: int = 20, squares: int = 20, line_samples: int = 25,
                     square_side: int = 5) -> list[list[int]]:
    """The label of each point of the model's point output (curve points then sheet points) as
    runs `[[label, count], ...]`: 0 curve, 1 sheet, -1 unknown (point-wise fitting). Line
    primitives give curve points, squares sheet points, whatever they fit.

    Example:
        >>> point_label_runs("both", 2, 3, 4, 2)
        [[0, 8], [1, 12]]
    """
    line_points, square_points = lines * line_samples, squares * square_side ** 2
    if decoders in ("both", "shared"):
        return [[0, line_points], [1, square_points]]
    total = (lines + squares) * (line_samples if decoders == "lines" else square_side ** 2)
    if decoders == "lines":
        return [[0, total]]
    if decoders == "squares":
        return [[1, total]]
    return [[-1, line_points + square_points]]


def _encoder(image, width: int, latent: int, prefix: str = ""):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}stem_conv")(image)
    x = layers.BatchNormalization(name=f"{prefix}stem_bn")(x)
    x = layers.Activation("relu", name=f"{prefix}stem_relu")(x)
    for stage, factor in enumerate((1, 2, 4, 8)):
        x = layers.MaxPooling2D(2, name=f"{prefix}pool{stage + 1}")(x)
        for block in range(2):
            x = ResidualBlock(width * factor, name=f"{prefix}stage{stage + 1}_block{block + 1}")(x)
    x = layers.GlobalAveragePooling2D(name=f"{prefix}gap")(x)
    return layers.Dense(latent, activation="relu", name=f"{prefix}latent")(x)


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


def refine_geometry(resolution: int, depth: int = 2) -> dict:
    """The volume sizes of the refinement at output resolution `resolution` (r): `points`
    (Point2Voxel grid r′ = r / 2), `coarse` (r / 4), `features` (r / 8), `core` (r′ / 4),
    `halo` (2), `block` (s′ = core + 2 · halo) and `grid` (4 blocks per axis).

    Raises:
        ConfigError: r is not a multiple of 32, or the blocks or the coarse volume do not halve
            `depth` times.
    """
    r = int(resolution)
    if r < 32 or r % 32:
        raise ConfigError(f"refinement resolution must be a multiple of 32 (32, 64, 128, 256); got {resolution}")
    geometry = dict(resolution=r, points=r // 2, coarse=r // 4, features=r // 8, core=r // 8, halo=2, grid=4)
    geometry["block"] = geometry["core"] + 2 * geometry["halo"]
    for key in ("block", "coarse"):
        if geometry[key] % 2 ** depth:
            raise ConfigError(f"refine_depth {depth} halves the {key} volume ({geometry[key]}³ at resolution {r}) "
                              f"to a fraction; choose a smaller refine_depth")
    return geometry


def _refine(image, points, refinement: str, resolution: int, width: int, depth: int, feature_channels: int,
            encoder_width: int, latent: int, volume_prior: float | None) -> dict:
    from keras_skel.models.unet3d import unet3d_features

    g = refine_geometry(resolution, depth)
    # Heads start at the prior occupancy (RetinaNet's prior init) instead of 0.5: V* fills ~1-4 %
    # of the grid, and from 0.5 the first hundreds of steps only learn "mostly empty".
    bias = "zeros" if volume_prior is None else keras.initializers.Constant(
        float(np.log(volume_prior / (1.0 - volume_prior))))
    u_in = Point2Voxel(g["points"], name="point2voxel")(points)  # [B, r', r', r', 1]
    outputs = {}
    local_in = u_in
    if refinement == "guided":
        code = _encoder(image, encoder_width, latent, prefix="volume_")
        channels = 4 * feature_channels
        f = layers.Dense(4 ** 3 * channels, activation="relu", name="volume_features_dense")(code)
        f = layers.Reshape((4, 4, 4, channels), name="volume_features_grid")(f)
        side, step = 4, 0
        while side < g["features"]:
            channels = max(feature_channels, channels // 2)
            step += 1
            f = layers.Conv3DTranspose(channels, 2, strides=2, activation="relu", name=f"volume_features_up{step}")(f)
            side *= 2
        f = layers.Conv3D(feature_channels, 1, activation="relu", name="volume_features")(f)  # [B, r/8, ...]
        down = layers.MaxPooling3D(2, name="point2voxel_down")(u_in)  # U_in↓, [B, r/4, ...]
        x = layers.Concatenate(name="global_inputs")([down, layers.UpSampling3D(2, name="volume_features_up")(f)])
        x, _ = unet3d_features(x, width, depth, prefix="global_")
        outputs["coarse"] = layers.Conv3D(1, 1, activation="sigmoid", dtype="float32", bias_initializer=bias,
                                          name="coarse")(x)
        guide = layers.UpSampling3D(2, name="coarse_up")(outputs["coarse"])
        local_in = layers.Concatenate(name="local_inputs")([u_in, guide])
    blocks = SubvolumeSplit(g["core"], g["halo"], name="subvolumes")(local_in)
    x, _ = unet3d_features(blocks, width, depth, prefix="local_")
    # The super-resolving last layer is a stride-2 transposed conv straight to the output, as the
    # paper's local stream ends (its fifth deconvolution gives the 2 class maps).
    x = layers.Conv3DTranspose(1, 2, strides=2, activation="sigmoid", dtype="float32", bias_initializer=bias,
                               name="local_volume")(x)
    outputs["volume"] = SubvolumeMerge(g["grid"], g["core"], g["halo"], scale=2, dtype="float32", name="volume")(x)
    return outputs


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
    refinement: str = "none",
    resolution: int = 32,
    refine_width: int = 8,
    refine_depth: int = 2,
    feature_channels: int = 4,
    volume_prior: float | None = None,
    stage: str = "joint",
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
        refinement: ``none`` (points only), ``subvolume`` (local stream alone) or ``guided``
            (global + local streams; see the module docstring).
        resolution: side r of the refined skeletal volume (a multiple of 32).
        refine_width: first-stage channels of the 3-D U-Nets (paper: 32).
        refine_depth: poolings of the 3-D U-Nets.
        feature_channels: channels of the image feature volume (``guided``).
        volume_prior: initial output probability of the volume heads (their bias is its logit;
            e.g. 0.02, about V*'s occupancy); None: bias 0 (probability 0.5).
        stage: ``refine`` freezes the point generator; ``joint`` trains everything (ignored
            without refinement).
        name: model name.

    Returns:
        A `keras.Model` from `[B, S, S, C]` to a dict of point sets `[B, P, 3]` in [-0.5, 0.5]³:
        `curve` and `sheet` (``both``) or `points`; with refinement also `volume` `[B, r, r, r, 1]`
        (probability of the skeletal volume) and, for ``guided``, `coarse` `[B, r/4, r/4, r/4, 1]`.
    """
    if decoders not in DECODER_VARIANTS:
        raise ConfigError(f"unknown decoders {decoders!r}; expected one of {', '.join(DECODER_VARIANTS)}")
    if tuple(mlp_units)[-1] != 3:
        raise ConfigError(f"mlp_units must end with 3 (x, y, z); got {list(mlp_units)}")
    if image_size % 16:
        raise ConfigError(f"image_size must be a multiple of 16 (four poolings); got {image_size}")
    if refinement not in REFINEMENTS:
        raise ConfigError(f"unknown refinement {refinement!r}; expected one of {', '.join(REFINEMENTS)}")
    if stage not in STAGES or (refinement == "none") != (stage == "points") and stage != "joint":
        raise ConfigError(f"stage {stage!r} does not go with refinement {refinement!r}: stage points trains the "
                          "decoders alone (refinement none); refine and joint need a refinement (subvolume or guided)")
    if refinement != "none":
        refine_geometry(resolution, refine_depth)  # validates before building anything
    if volume_prior is not None and not 0 < volume_prior < 1:
        raise ConfigError(f"volume_prior must be in (0, 1) or None; got {volume_prior}")
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
    if refinement == "none":
        return keras.Model(image, outputs, name=name)
    generator = keras.Model(image, outputs)  # only to list the point generator's layers
    points = outputs["points"] if "points" in outputs else \
        layers.Concatenate(axis=1, name="skeletal_points")([outputs["curve"], outputs["sheet"]])
    outputs.update(_refine(image, points, refinement, resolution, refine_width, refine_depth, feature_channels,
                           width, latent, volume_prior))
    model = keras.Model(image, outputs, name=name)
    if stage == "refine":
        frozen = {layer.name for layer in generator.layers}
        for layer in model.layers:
            if layer.name in frozen:
                layer.trainable = False
    return model

