"""Chamfer distance (SkeletonNet eq. 2) and Laplacian smoothness (eq. 3): hand values and a
brute-force NumPy cross-check."""

import keras
import numpy as np
import pytest

from keras_skel.losses.functional import chamfer_distance, laplacian_smoothness


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_chamfer_hand_values():
    a = np.array([[[0.0, 0, 0], [1, 0, 0]]])
    b = np.array([[[0.0, 0, 0]]])
    assert _np(chamfer_distance(a, b))[0] == pytest.approx(1.0)  # a: 0 + 1, b: 0
    assert _np(chamfer_distance(a, b, "mean"))[0] == pytest.approx(0.5)
    # Symmetric, zero for equal sets whatever their order.
    c = np.array([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]]])
    assert _np(chamfer_distance(c, c[:, ::-1]))[0] == 0.0
    shifted = c + np.array([0.0, 0.0, 0.5])
    assert _np(chamfer_distance(c, shifted))[0] == pytest.approx(6 * 0.25)
    with pytest.raises(ValueError, match="reduction"):
        chamfer_distance(a, b, "max")


def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 17, 3)), rng.normal(size=(3, 11, 3))
    got = _np(chamfer_distance(a, b))
    for i in range(3):
        d = ((a[i][:, None] - b[i][None]) ** 2).sum(-1)
        assert got[i] == pytest.approx(d.min(1).sum() + d.min(0).sum(), rel=1e-6)


def test_laplacian_hand_values():
    points = np.array([[[0.0, 0, 0], [1, 1, 0], [2, 0, 0]]])
    table = np.array([[1, -1], [0, 2], [1, -1]])
    # ends: ‖(0,0)-(1,1)‖² = 2 each; middle: ‖(1,1)-(1,0)‖² = 1.
    assert _np(laplacian_smoothness(points, table))[0] == pytest.approx(5.0)
    assert _np(laplacian_smoothness(points, table, "mean"))[0] == pytest.approx(5.0 / 3)
    # A straight, evenly sampled line is smooth inside; only its two ends pay.
    line = np.stack([np.linspace(0, 1, 5), np.zeros(5), np.zeros(5)], -1)[None]
    chain = np.array([[1, -1]] + [[i - 1, i + 1] for i in range(1, 4)] + [[3, -1]])
    assert _np(laplacian_smoothness(line, chain))[0] == pytest.approx(2 * 0.25 ** 2)
    # A point with no neighbours costs nothing.
    assert _np(laplacian_smoothness(points, np.full((3, 2), -1)))[0] == 0.0


def test_laplacian_gradient_flows_to_every_point():
    import tensorflow as tf

    points = tf.Variable(np.random.default_rng(1).normal(size=(1, 4, 3)))
    table = np.array([[1, -1], [0, 2], [1, 3], [2, -1]])
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(laplacian_smoothness(points, table))
    grad = tape.gradient(value, points).numpy()
    assert np.all(np.abs(grad).sum(-1) > 0)
