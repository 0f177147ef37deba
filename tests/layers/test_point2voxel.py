import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.layers.point2voxel import Point2Voxel, voxel_units


def dense_reference(points: np.ndarray, resolution: int, scale: float = 10.0, cutoff: float = 1e-4) -> np.ndarray:
    """Eq. 6 over every voxel and every point (float64), values below the cutoff set to 0."""
    grid = np.stack(np.meshgrid(*[np.arange(resolution)] * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    out = []
    for cloud in points:
        q = voxel_units(cloud.astype(np.float64), resolution)[None]
        d2 = ((grid - q) ** 2).sum(-1).min(axis=1)
        value = np.exp(-scale * d2)
        out.append(np.where(value >= cutoff, value, 0.0).reshape(resolution, resolution, resolution, 1))
    return np.stack(out)


@pytest.mark.parametrize("resolution,scale", [(8, 10.0), (12, 10.0), (6, 2.0)])
def test_matches_dense_reference(resolution, scale):
    rng = np.random.default_rng(resolution)
    points = rng.uniform(-0.55, 0.55, (2, 40, 3)).astype(np.float32)  # some just outside the cube
    got = keras.ops.convert_to_numpy(Point2Voxel(resolution, scale)(points))
    np.testing.assert_allclose(got, dense_reference(points, resolution, scale), rtol=1e-5, atol=1e-6)


def test_hand_values_and_the_cutoff():
    r = 8
    centre = (np.array([2, 5, 7]) + 0.5) / r - 0.5
    volume = keras.ops.convert_to_numpy(Point2Voxel(r)(centre[None, None].astype(np.float32)))[0, ..., 0]
    assert volume[2, 5, 7] == pytest.approx(1.0)
    # The face neighbours are 1 voxel away: exp(-10) = 4.5e-5 is under the 1e-4 cutoff.
    assert np.count_nonzero(volume) == 1
    # Half-way between two centres: d² = 0.25 to both, exp(-2.5) each.
    between = centre + np.array([0.5 / r, 0, 0])
    volume = keras.ops.convert_to_numpy(Point2Voxel(r)(between[None, None].astype(np.float32)))[0, ..., 0]
    assert volume[2, 5, 7] == pytest.approx(math.exp(-2.5), rel=1e-5)
    assert volume[3, 5, 7] == pytest.approx(math.exp(-2.5), rel=1e-5)
    assert np.count_nonzero(volume) == 2


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    points = tf.Variable(rng.uniform(-0.4, 0.4, (1, 6, 3)).astype(np.float64))
    layer = Point2Voxel(10, dtype="float64")
    weights = tf.constant(rng.random((1, 10, 10, 10, 1)))

    def objective(p):
        return tf.reduce_sum(tf.cast(layer(p), tf.float64) * weights)

    with tf.GradientTape() as tape:
        value = objective(points)
    grad = tape.gradient(value, points).numpy()
    assert np.abs(grad).max() > 0
    eps = 1e-6
    numeric = np.zeros_like(grad)
    base = points.numpy()
    for idx in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (objective(tf.constant(plus)) - objective(tf.constant(minus))).numpy() / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-4)


def test_config_and_save(tmp_path):
    layer = Point2Voxel(6, scale=5.0, cutoff=1e-3)
    assert Point2Voxel.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, Point2Voxel(6, name="p2v")(inputs))
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 9, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(x), model(x), atol=1e-7)
    with pytest.raises(ValueError, match="resolution"):
        Point2Voxel(0)
