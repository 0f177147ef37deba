import keras
import numpy as np
import pytest

from keras_skel.errors import ConfigError
from keras_skel.losses.functional import laplacian_smoothness
from keras_skel.models.skeletonnet import (DECODER_VARIANTS, build_skeletonnet, line_grid, line_neighbours,
                                           point_label_runs, refine_geometry, skeletonnet_neighbours, square_grid,
                                           square_neighbours)

TINY = dict(image_size=32, width=4, latent=8, mlp_units=(8, 3), lines=2, squares=3, line_samples=4, square_side=3)


@pytest.mark.parametrize("decoders", DECODER_VARIANTS)
def test_outputs_and_neighbour_tables_agree(decoders):
    model = build_skeletonnet(decoders=decoders, **TINY)
    out = model(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32))
    tables = skeletonnet_neighbours(decoders, TINY["lines"], TINY["squares"], TINY["line_samples"],
                                    TINY["square_side"])
    assert set(out) == set(tables)
    for name, points in out.items():
        points = keras.ops.convert_to_numpy(points)
        assert points.shape[0] == 2 and points.shape[-1] == 3
        assert np.abs(points).max() <= 0.5  # tanh scaled into the unit cube
        if tables[name] is not None:
            assert len(tables[name]) == points.shape[1]
            assert tables[name].max() < points.shape[1]


def test_grids_and_neighbours():
    np.testing.assert_allclose(line_grid(2, 3)[1, :, 0], [0, 0.5, 1])
    grid = square_grid(1, 2)[0]
    assert sorted(map(tuple, grid.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert line_neighbours(2, 3).tolist() == [[-1, 1], [0, 2], [1, -1], [-1, 4], [3, 5], [4, -1]]
    table = square_neighbours(1, 3)
    assert sorted(i for i in table[4] if i >= 0) == [1, 3, 5, 7]  # the centre of a 3x3 grid
    assert sorted(i for i in table[0] if i >= 0) == [1, 3]
    # Undeformed primitives are smooth inside: only ends / borders pay.
    flat = np.concatenate([line_grid(1, 5)[0], np.zeros((5, 2))], -1)[None]
    assert float(laplacian_smoothness(flat, line_neighbours(1, 5))[0]) == pytest.approx(2 * 0.25 ** 2)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown decoders"):
        build_skeletonnet(decoders="mesh", **TINY)
    with pytest.raises(ConfigError, match="end with 3"):
        build_skeletonnet(**{**TINY, "mlp_units": (8, 2)})
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_skeletonnet(**{**TINY, "image_size": 40})


def test_save_and_reload(tmp_path):
    model = build_skeletonnet(decoders="shared", **TINY)
    x = np.random.default_rng(1).random((1, 32, 32, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(restored(x)["points"], model(x)["points"], atol=1e-6)


REFINE = dict(TINY, refine_width=2, feature_channels=2)


@pytest.mark.parametrize("refinement", ["subvolume", "guided"])
def test_refinement_outputs(refinement):
    model = build_skeletonnet(refinement=refinement, resolution=32, **REFINE)
    out = model(np.zeros((2, 32, 32, 3), "float32"))
    assert tuple(out["volume"].shape) == (2, 32, 32, 32, 1)
    assert ("coarse" in out) == (refinement == "guided")
    if refinement == "guided":
        assert tuple(out["coarse"].shape) == (2, 8, 8, 8, 1)
    volume = keras.ops.convert_to_numpy(out["volume"])
    assert volume.min() >= 0 and volume.max() <= 1
    primed = build_skeletonnet(refinement=refinement, resolution=32, volume_prior=0.02, **REFINE)
    start = keras.ops.convert_to_numpy(primed(np.zeros((1, 32, 32, 3), "float32"))["volume"])
    assert abs(start.mean() - 0.02) < 0.01  # the heads' bias is the prior's logit
    assert refine_geometry(64) == dict(resolution=64, points=32, coarse=16, features=8, core=8, halo=2, grid=4,
                                       block=12)


def test_stage_refine_freezes_the_point_generator():
    points_only = build_skeletonnet(**TINY)
    refine = build_skeletonnet(refinement="guided", resolution=32, stage="refine", **REFINE)
    joint = build_skeletonnet(refinement="guided", resolution=32, stage="joint", **REFINE)
    generator = {layer.name for layer in points_only.layers if layer.weights}
    assert generator and all(not refine.get_layer(name).trainable for name in generator)
    assert all(joint.get_layer(name).trainable for name in generator)
    assert refine.get_layer("global_enc0_0_conv").trainable and refine.get_layer("volume_stem_conv").trainable
    assert len(joint.trainable_weights) > len(refine.trainable_weights) > 0


def test_refinement_arguments_are_checked():
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_skeletonnet(refinement="guided", resolution=48, **REFINE)
    with pytest.raises(ConfigError, match="unknown refinement"):
        build_skeletonnet(refinement="dense", **REFINE)
    with pytest.raises(ConfigError, match="stage refine does not go with refinement 'none'|stage 'refine'"):
        build_skeletonnet(stage="refine", **REFINE)
    with pytest.raises(ConfigError, match="refine_depth 4"):
        refine_geometry(32, depth=4)  # the 8³ blocks do not halve 4 times
    with pytest.raises(ConfigError, match="volume_prior"):
        build_skeletonnet(refinement="guided", resolution=32, volume_prior=1.5, **REFINE)
    assert point_label_runs("pointwise", 2, 2, 4, 2) == [[-1, 16]]
    assert point_label_runs("squares", 2, 2, 4, 2) == [[1, 16]]
