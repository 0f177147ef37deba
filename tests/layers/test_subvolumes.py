import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.layers.subvolumes import SubvolumeMerge, SubvolumeSplit, overlap_counts


def reference_split(x: np.ndarray, core: int, halo: int) -> np.ndarray:
    """Block (b, i, j, k) cut out of the zero-padded volume by plain slicing, in the layer's order."""
    n, s = x.shape[1] // core, core + 2 * halo
    padded = np.pad(x, ((0, 0), (halo, halo), (halo, halo), (halo, halo), (0, 0)))
    return np.stack([padded[b, i * core:i * core + s, j * core:j * core + s, k * core:k * core + s]
                     for b in range(len(x)) for i in range(n) for j in range(n) for k in range(n)])


def reference_merge(blocks: np.ndarray, grid: int, core: int, halo: int) -> np.ndarray:
    """Each voxel the mean of the blocks covering it (one block at a time, with a count volume)."""
    s, side = core + 2 * halo, grid * core
    batch = len(blocks) // grid ** 3
    total = np.zeros((batch, side + 2 * halo, side + 2 * halo, side + 2 * halo, blocks.shape[-1]))
    count = np.zeros_like(total)
    row = 0
    for b in range(batch):
        for i in range(grid):
            for j in range(grid):
                for k in range(grid):
                    where = (b, slice(i * core, i * core + s), slice(j * core, j * core + s),
                             slice(k * core, k * core + s))
                    total[where] += blocks[row]
                    count[where] += 1
                    row += 1
    return (total / count)[:, halo:halo + side, halo:halo + side, halo:halo + side]


@pytest.mark.parametrize("core,halo", [(4, 2), (3, 1), (4, 0)])
def test_split_matches_slicing(core, halo):
    x = np.random.default_rng(core).normal(size=(2, 3 * core, 3 * core, 3 * core, 2)).astype("float32")
    got = keras.ops.convert_to_numpy(SubvolumeSplit(core, halo)(x))
    np.testing.assert_array_equal(got, reference_split(x, core, halo))


@pytest.mark.parametrize("scale", [1, 2])
def test_merge_matches_the_mean_of_covering_blocks(scale):
    grid, core, halo = 3, 2, 1
    s = scale * (core + 2 * halo)
    blocks = np.random.default_rng(scale).normal(size=(2 * grid ** 3, s, s, s, 1)).astype("float32")
    got = keras.ops.convert_to_numpy(SubvolumeMerge(grid, core, halo, scale)(blocks))
    expected = reference_merge(blocks, grid, core * scale, halo * scale)
    assert got.shape == (2, scale * grid * core, scale * grid * core, scale * grid * core, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_merge_inverts_split_and_counts_by_hand():
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 8, 1)).astype("float32")
    blocks = SubvolumeSplit(4, 2)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(SubvolumeMerge(2, 4, 2)(blocks)), x, rtol=1e-6)
    # Two blocks of side 8 starting at -2 and 2 along an 8-voxel axis: voxels 2..5 are in both.
    assert overlap_counts(2, 4, 2).tolist() == [1, 1, 2, 2, 2, 2, 1, 1]


def test_gradient_reaches_every_voxel_once_in_total():
    x = tf.Variable(np.zeros((1, 8, 8, 8, 1), "float32"))
    with tf.GradientTape() as tape:
        y = SubvolumeMerge(2, 4, 2)(SubvolumeSplit(4, 2)(x))
        loss = tf.reduce_sum(y)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), 1.0, rtol=1e-6)


def test_config_round_trip_shapes_and_saving(tmp_path):
    for layer in (SubvolumeSplit(4, 2), SubvolumeMerge(2, 4, 2, 2)):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = keras.Input((8, 8, 8, 1))
    blocks = SubvolumeSplit(4, 2, name="split")(inputs)
    assert tuple(blocks.shape) == (None, 8, 8, 8, 1)
    up = keras.layers.UpSampling3D(2)(blocks)
    out = SubvolumeMerge(2, 4, 2, 2, name="merge")(keras.layers.Conv3D(1, 1)(up))
    assert tuple(out.shape) == (None, 16, 16, 16, 1)
    model = keras.Model(inputs, out)
    data = np.random.default_rng(1).normal(size=(3, 8, 8, 8, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="multiple of 4"):
        SubvolumeSplit(4, 2)(np.zeros((1, 6, 6, 6, 1), "float32"))
    with pytest.raises(ValueError, match="core ≥ 1"):
        SubvolumeSplit(0, 2)
    with pytest.raises(ValueError, match="grid, core, scale"):
        SubvolumeMerge(2, 4, 2, scale=0)
