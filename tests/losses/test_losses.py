import math

import numpy as np
import pytest
from keras import ops

from keras_skel.losses import DiceLoss, FocalDiceLoss, WeightedFocalLoss, functional
from tests.harness import run_loss_test


@pytest.mark.parametrize("cls,kwargs", [
    (WeightedFocalLoss, dict(w_pos=10.0, w_neg=0.5, gamma=1.5)),
    (DiceLoss, dict(smooth=2.0)),
    (FocalDiceLoss, dict(focal_weight=0.5, dice_weight=2.0, w_pos=20.0, w_neg=1.0, gamma=2.0, smooth=1.0)),
])
def test_loss_harness(cls, kwargs, tmp_path):
    run_loss_test(cls, kwargs, tmp_path)


def test_focal_golden_values():
    # 2 pixels: a skeleton pixel predicted 0.8, a background pixel predicted 0.3.
    y_true = np.array([[1.0, 0.0]], "float32")
    y_pred = np.array([[0.8, 0.3]], "float32")
    pos = -50 * (0.2**2) * math.log(0.8)
    neg = -0.75 * (0.3**2) * math.log(0.7)
    got = float(functional.weighted_focal(y_true, y_pred)[0])
    assert got == pytest.approx((pos + neg) / 2, rel=1e-5)


def test_focal_gamma_zero_is_weighted_bce():
    y_true = np.array([[1.0, 0.0, 1.0]], "float32")
    y_pred = np.array([[0.6, 0.1, 0.9]], "float32")
    expected = -(2 * math.log(0.6) + 3 * math.log(1 - 0.1) + 2 * math.log(0.9)) / 3
    got = float(functional.weighted_focal(y_true, y_pred, w_pos=2.0, w_neg=3.0, gamma=0.0)[0])
    assert got == pytest.approx(expected, rel=1e-5)


def test_focal_is_per_sample():
    y_true = np.zeros((3, 4, 4, 1), "float32")
    y_pred = np.full((3, 4, 4, 1), 0.5, "float32")
    y_pred[1] = 0.9
    values = np.asarray(functional.weighted_focal(y_true, y_pred))
    assert values.shape == (3,)
    assert values[1] > values[0] == pytest.approx(values[2])


def test_dice_golden_values():
    y_true = np.array([[1.0, 1.0, 0.0, 0.0]], "float32")
    y_pred = np.array([[1.0, 0.5, 0.5, 0.0]], "float32")
    # intersection 1.5, sums 2 + 2 -> 1 - (3 + 1) / (4 + 1)
    assert float(functional.soft_dice(y_true, y_pred)[0]) == pytest.approx(1 - 4 / 5)
    assert float(functional.soft_dice(y_true, y_pred, smooth=0.0)[0]) == pytest.approx(1 - 3 / 4)


def test_dice_empty_target_and_prediction_is_zero():
    zeros = np.zeros((1, 3, 3, 1), "float32")
    assert float(functional.soft_dice(zeros, zeros)[0]) == 0.0


def test_focal_dice_is_weighted_sum():
    rng = np.random.default_rng(0)
    y_true = (rng.random((2, 6, 6, 1)) > 0.7).astype("float32")
    y_pred = rng.uniform(0.01, 0.99, (2, 6, 6, 1)).astype("float32")
    combined = functional.focal_dice(y_true, y_pred, focal_weight=0.3, dice_weight=2.0)
    parts = 0.3 * functional.weighted_focal(y_true, y_pred) + 2.0 * functional.soft_dice(y_true, y_pred)
    np.testing.assert_allclose(ops.convert_to_numpy(combined), ops.convert_to_numpy(parts), rtol=1e-6)


def test_focal_clips_extreme_probabilities():
    y_true = np.array([[1.0, 0.0]], "float32")
    y_pred = np.array([[0.0, 1.0]], "float32")
    assert np.isfinite(float(functional.weighted_focal(y_true, y_pred)[0]))
