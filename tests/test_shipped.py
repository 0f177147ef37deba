"""The shipped model (saved_models/unet_shapes): loadable by name, better than the classical
baseline on held-out noisy shapes, its TFLite twin equivalent, its card complete."""

from pathlib import Path

import numpy as np
import pytest

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.export import read_model_card
from keras_skel.inference import SavedModelSkeletonizer, load
from keras_skel.metrics import SkeletonF1Accumulator

ROOT = Path(__file__).resolve().parent.parent / "saved_models"
pytestmark = pytest.mark.skipif(not (ROOT / "unet_shapes" / "1").is_dir(), reason="no shipped model in this checkout")


@pytest.fixture(scope="module")
def shipped():
    return load("unet_shapes")


def test_loads_by_name_with_its_card(shipped):
    assert isinstance(shipped, SavedModelSkeletonizer)
    assert shipped.path.resolve() == (ROOT / "unet_shapes" / "1").resolve()
    card = read_model_card(shipped.path)
    assert card["threshold"] == shipped.threshold and card["tflite_input_size"] == [256, 256]
    for split in ("test_clean_256", "test_noisy_256"):
        scores = card["scores"][split]
        assert {"exact_f1", "f1_2px"} <= set(scores["model"]) and {"exact_f1", "f1_2px"} <= set(scores["classical"])
        assert scores["dataset"]["count"] == scores["count"]
    # What the card claims: better than classical on noisy shapes at 2 px.
    noisy = card["scores"]["test_noisy_256"]
    assert noisy["model"]["f1_2px"] > noisy["classical"]["f1_2px"]


def test_beats_classical_on_fresh_noisy_shapes(shipped):
    """Re-measured here on shapes drawn with a seed no training or card set used."""
    classical = load("classical")
    learned_acc, classical_acc = SkeletonF1Accumulator(2.0), SkeletonF1Accumulator(2.0)
    for i in range(12):
        shape, gt = make_shape_sample(777, i, (256, 256), noise=2.0)
        learned_acc.update(shipped.skeletonize(shape), gt)
        classical_acc.update(classical.skeletonize(shape), gt)
    assert learned_acc.result()["f1"] > classical_acc.result()["f1"]


def test_tflite_twin_matches(shipped):
    lite = load(ROOT / "unet_shapes.tflite")
    assert lite.size == (256, 256) and lite.threshold == shipped.threshold
    for i in range(2):
        shape = make_shape_sample(778, i, (256, 256), noise=2.0)[0]
        a, b = shipped.predict(shape), lite.predict(shape)
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-4)
        far = np.abs(a.probability - shipped.threshold) > 1e-4
        np.testing.assert_array_equal((a.probability >= shipped.threshold)[far], (b.probability >= shipped.threshold)[far])


def test_keras_twin_matches(shipped):
    keras_model = load(ROOT / "unet_shapes.keras")
    assert keras_model.threshold == shipped.threshold
    shape = make_shape_sample(779, 0, (200, 230), noise=2.0)[0]
    np.testing.assert_array_equal(keras_model.skeletonize(shape), shipped.skeletonize(shape))
