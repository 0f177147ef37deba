import math

import keras
import numpy as np
import pytest

from keras_skel.losses import ThinSegmentationLoss, functional
from keras_skel.ops.soft_skeleton import soft_skeleton
from keras_skel.registry import LOSSES
from tests.harness import run_loss_test


def _line(ndim):
    # A 5-voxel line along the last spatial axis, in a [1, ..., 7, 1] tensor.
    shape = (1,) + (5,) * (ndim - 1) + (7, 1)
    y = np.zeros(shape, "float32")
    y[(0,) + (2,) * (ndim - 1) + (slice(1, 6), 0)] = 1
    return y


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(dice_weight=0.5, ce_weight=0.0, cldice_weight=0.5, cldice_iterations=3, smooth=1.0),
])
def test_harness(kwargs, tmp_path):
    run_loss_test(ThinSegmentationLoss, kwargs, tmp_path)


def test_skeleton_recall_hand_value():
    tube = np.array([[[1.0], [1.0], [0.0]]], "float32")
    pred = np.array([[[0.5], [1.0], [1.0]]], "float32")
    assert float(functional.skeleton_recall(tube, pred, 1.0)[0]) == pytest.approx(-2.5 / 3, rel=1e-6)
    assert float(functional.skeleton_recall(tube, pred, 1e-6)[0]) == pytest.approx(-0.75, rel=1e-5)


def test_skeleton_recall_multiclass_skips_background_and_averages_classes():
    # softmax channels (bg, a, b) at 2 pixels; the tube has class a at pixel 0, class b at pixel 1.
    pred = np.array([[[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]]], "float32")
    tube = np.array([[[0, 1, 0], [0, 0, 1]]], "float32")
    eps = 0.5
    expected = -((0.6 + eps) / (1 + eps) + (0.6 + eps) / (1 + eps)) / 2
    assert float(functional.skeleton_recall(tube, pred, eps)[0]) == pytest.approx(expected, rel=1e-6)
    # A class with an empty tube has recall 1 (eps / eps).
    tube[..., 2] = 0
    expected = -((0.6 + eps) / (1 + eps) + 1.0) / 2
    assert float(functional.skeleton_recall(tube, pred, eps)[0]) == pytest.approx(expected, rel=1e-6)


def test_class_dice_and_cross_entropy_hand_values():
    y = np.array([[[1.0], [0.0]]], "float32")
    p = np.array([[[0.5], [0.5]]], "float32")
    assert float(functional.class_dice(y, p, 1.0)[0]) == pytest.approx(1 - 2 / 3, rel=1e-6)
    assert float(functional.cross_entropy(y, p)[0]) == pytest.approx(math.log(2), rel=1e-5)
    y3 = np.array([[[0, 1, 0], [1, 0, 0]]], "float32")
    p3 = np.array([[[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]]], "float32")
    assert float(functional.cross_entropy(y3, p3)[0]) == pytest.approx(-(math.log(0.5) + math.log(0.7)) / 2, rel=1e-5)
    # Foreground classes only: class 1 Dice (2*.5+1)/(1+.6+1), class 2 Dice (0+1)/(0+.5+1).
    d1, d2 = 2.0 / 2.6, 1.0 / 1.5
    assert float(functional.class_dice(y3, p3, 1.0)[0]) == pytest.approx(1 - (d1 + d2) / 2, rel=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("iterations", [0, 3])
def test_soft_cldice_hand_value_on_a_line(ndim, iterations):
    # A 1-px line is its own soft skeleton (erosion removes it). Prediction 0.5 on the line:
    # Tprec = (2.5 + 1) / (2.5 + 1) = 1, Tsens = (5·0.5 + 1) / (5 + 1) = 7/12,
    # clDice loss = 1 − 2·(7/12) / (1 + 7/12) = 5/19.
    y = _line(ndim)
    got = float(functional.soft_cldice(y, 0.5 * y, iterations, 1.0)[0])
    assert got == pytest.approx(5 / 19, rel=1e-5)
    assert float(functional.soft_cldice(y, y, iterations, 1.0)[0]) == pytest.approx(0.0, abs=1e-6)


def test_soft_skeleton_reaches_the_centre_of_a_thick_bar():
    bar = np.zeros((1, 11, 30, 1), "float32")
    bar[0, 2:9, 3:27, 0] = 1  # 7 rows thick: 3 erosions reach the centre row 5
    skel = np.asarray(soft_skeleton(bar, 3))[0, :, :, 0]
    assert skel[5, 10:20].min() == 1.0
    assert skel[[2, 3, 7, 8], 10:20].max() == 0.0  # not the rows near the edge
    assert np.asarray(soft_skeleton(bar, 0))[0, 5, 10:20].max() == 0.0  # too few iterations


def test_thin_segmentation_sums_its_terms():
    rng = np.random.default_rng(0)
    seg = (rng.random((2, 16, 16, 1)) > 0.7).astype("float32")
    tube = seg * (rng.random(seg.shape) > 0.5)
    pred = rng.uniform(0.05, 0.95, seg.shape).astype("float32")
    y_true = np.concatenate([seg, tube], -1)
    total = functional.thin_segmentation(y_true, pred, 1.0, 2.0, 3.0, 4.0, 2, 1.0)
    parts = (functional.class_dice(seg, pred) + 2 * functional.cross_entropy(seg, pred)
             + 3 * functional.skeleton_recall(tube, pred) + 4 * functional.soft_cldice(seg, pred, 2))
    np.testing.assert_allclose(np.asarray(total), np.asarray(parts), rtol=1e-5)


def test_recall_without_the_tube_is_a_clear_error():
    loss = LOSSES.build("skeleton_recall")
    assert loss.uses_tubed_skeleton and not LOSSES.build("cldice").uses_tubed_skeleton
    with pytest.raises(ValueError, match="tubed skeleton"):
        loss(np.ones((1, 4, 4, 3), "float32"), np.full((1, 4, 4, 3), 1 / 3, "float32"))
    with pytest.raises(ValueError, match="weights"):
        ThinSegmentationLoss(0, 0, 0, 0)


@pytest.mark.parametrize("name", ["dice_ce", "skeleton_recall", "cldice", "dice_cldice"])
def test_registered_losses_train_a_3d_softmax_model(name, tmp_path):
    # Multi-class 3-D: one step of each registered loss lowers it; .keras keeps its config.
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, (2, 8, 8, 8))
    seg = np.eye(3, dtype="float32")[labels]
    tube = seg * (rng.random(seg.shape[:-1]) > 0.5)[..., None]
    tube[..., 0] = 0
    loss = LOSSES.build(name, **({"iterations": 2} if "cldice" in name else {}))
    y_true = np.concatenate([seg, tube], -1) if loss.uses_tubed_skeleton else seg
    inputs = keras.Input((8, 8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv3D(3, 3, padding="same", activation="softmax")(inputs))
    model.compile(keras.optimizers.Adam(0.05), loss=loss)
    x = rng.normal(size=(2, 8, 8, 8, 1)).astype("float32")
    first = model.evaluate(x, y_true, verbose=0)
    model.fit(x, y_true, epochs=5, verbose=0)
    assert model.evaluate(x, y_true, verbose=0) < first
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").loss.get_config() == loss.get_config()
