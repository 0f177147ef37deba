"""The shipped models (saved_models/denoiser_shapes, the default, saved_models/canet_shapes,
saved_models/unet_shapes and saved_models/deepflux_natural): loadable by name, their cards complete
and true to what they claim, their TFLite and Keras twins equivalent, and better than the classical
baseline where they say so."""

from pathlib import Path

import numpy as np
import pytest

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.export import read_model_card
from keras_skel.inference import SavedModelSkeletonizer, load
from keras_skel.metrics import SkeletonF1Accumulator

pytestmark = pytest.mark.xdist_group("shipped")  # module fixtures built once (setup.cfg)

ROOT = Path(__file__).resolve().parent.parent / "saved_models"
SHIPPED = ["denoiser_shapes", "canet_shapes", "unet_shapes"]


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    name = request.param
    if not (ROOT / name / "1").is_dir():
        pytest.skip(f"no shipped {name} in this checkout")
    return name, load(name)


def test_loads_by_name_with_its_card(shipped):
    name, model = shipped
    assert isinstance(model, SavedModelSkeletonizer)
    newest = max(int(v.name) for v in (ROOT / name).iterdir() if v.name.isdigit())
    assert model.path.resolve() == (ROOT / name / str(newest)).resolve()  # a name loads the newest version
    card = read_model_card(model.path)
    assert card["threshold"] == model.threshold and card["tflite_input_size"] == [256, 256]
    assert card["training_command"].startswith("keras-skel train")
    noisy = [split for split in card["scores"] if "noisy" in split]
    assert card["scores"] and noisy
    for split, scores in card["scores"].items():
        assert {"exact_f1", "f1_2px"} <= set(scores["model"]) and {"exact_f1", "f1_2px"} <= set(scores["classical"])
        assert scores["dataset"]["count"] == scores["count"]
    # What every card claims: better than classical on noisy shapes at 2 px.
    for split in noisy:
        assert card["scores"][split]["model"]["f1_2px"] > card["scores"][split]["classical"]["f1_2px"], split


def test_beats_classical_on_fresh_noisy_shapes(shipped):
    """Re-measured here on shapes drawn with a seed no training or card set used."""
    _, model = shipped
    classical = load("classical")
    learned_acc, classical_acc = SkeletonF1Accumulator(2.0), SkeletonF1Accumulator(2.0)
    for i in range(4):
        shape, gt = make_shape_sample(777, i, (256, 256), noise=2.0)
        learned_acc.update(model.skeletonize(shape), gt)
        classical_acc.update(classical.skeletonize(shape), gt)
    assert learned_acc.result()["f1"] > classical_acc.result()["f1"]


def test_gated_model_leaves_clean_shapes_exact():
    """canet_shapes gates the ground-truth rule applied to the input with its skeleton map: on
    clean held-out shapes its skeletons are (nearly all) the ground truth itself."""
    if not (ROOT / "canet_shapes" / "1").is_dir():
        pytest.skip("no shipped canet_shapes in this checkout")
    model = load("canet_shapes")
    assert model.prune_length == 10 and model.gate_radius == 2
    acc = SkeletonF1Accumulator(0.0)
    for i in range(8):
        shape, gt = make_shape_sample(779, i, (256, 256), noise=0.0, split="heldout")
        acc.update(model.skeletonize(shape), gt)
    card = read_model_card(model.path)
    claimed = card["scores"]["heldout_clean_256"]["model"]["exact_f1"]
    assert acc.result()["f1"] >= min(0.9, claimed - 0.1)


def test_denoiser_moves_the_skeleton_back_where_noise_moved_it():
    """denoiser_shapes runs the ground-truth rule on the shape it denoised: on fresh held-out
    shapes with bumps and dents its skeletons are exact more often than the rule on the noisy
    input (classical, which keeps every pixel the noise moved), and clean shapes stay (nearly) exact."""
    if not (ROOT / "denoiser_shapes" / "1").is_dir():
        pytest.skip("no shipped denoiser_shapes in this checkout")
    model, classical = load("denoiser_shapes"), load("classical")
    assert model.prune_length == 10 and model.gate_radius == 0
    learned, rule, clean = SkeletonF1Accumulator(0.0), SkeletonF1Accumulator(0.0), SkeletonF1Accumulator(0.0)
    for i in range(6):
        shape, gt, clean_shape = make_shape_sample(786, i, (256, 256), noise=3.0, noise_style="bumps",
                                                   split="heldout", with_clean=True)
        learned.update(model.skeletonize(shape), gt)
        rule.update(classical.skeletonize(shape), gt)
        if i < 3:  # half of them clean too: the network runs 16 times per image (2 members, 8 views)
            clean.update(model.skeletonize(clean_shape), gt)
    assert learned.result()["f1"] > rule.result()["f1"]
    assert clean.result()["f1"] >= 0.9


def test_tflite_twin_matches(shipped):
    name, model = shipped
    lite = load(ROOT / f"{name}.tflite")
    assert lite.size == (256, 256) and lite.threshold == model.threshold
    assert lite.prune_length == model.prune_length
    for i in range(2):
        shape = make_shape_sample(778, i, (256, 256), noise=2.0)[0]
        a, b = model.predict(shape), lite.predict(shape)
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-4)
        far = np.abs(a.probability - model.threshold) > 1e-4
        np.testing.assert_array_equal((a.probability >= model.threshold)[far], (b.probability >= model.threshold)[far])


def test_keras_twin_matches(shipped):
    name, model = shipped
    keras_model = load(ROOT / f"{name}.keras")
    assert keras_model.threshold == model.threshold and keras_model.prune_length == model.prune_length
    shape = make_shape_sample(779, 0, (200, 230), noise=2.0)[0]
    np.testing.assert_array_equal(keras_model.skeletonize(shape), model.skeletonize(shape))


@pytest.fixture(scope="module")
def deepflux():
    if not (ROOT / "deepflux_natural").is_dir() or not any(v.name.isdigit() for v in
                                                             (ROOT / "deepflux_natural").iterdir()):
        pytest.skip("no shipped deepflux_natural in this checkout")
    from keras_skel.detection import load_detector

    return load_detector("deepflux_natural")


def test_deepflux_card_and_scores(deepflux):
    newest = max(int(v.name) for v in (ROOT / "deepflux_natural").iterdir() if v.name.isdigit())
    card = read_model_card(ROOT / "deepflux_natural" / str(newest))
    assert card["task"] == "natural" and card["output"] == "flux" and card["threshold"] == deepflux.threshold
    assert card["training_command"].startswith("keras-skel train deepflux_natural")
    scores = card["scores"]["natural_heldout"]
    assert scores["count"] >= 100 and scores["model"]["f1_4px"] > scores["classical"]["f1_4px"]


def test_deepflux_beats_classical_on_fresh_held_out_images(deepflux):
    """Re-measured on held-out composites of a seed no training, validation or card set used."""
    from keras_skel.data.natural import make_natural_sample
    from keras_skel.detection import classical_natural_skeleton

    learned, classical = SkeletonF1Accumulator(4.0), SkeletonF1Accumulator(4.0)
    for i in range(10):
        image, gt = make_natural_sample(781, i, (256, 256), "heldout")
        learned.update(deepflux.skeletonize(image), gt)
        classical.update(classical_natural_skeleton(image / np.float32(255)), gt)
    assert learned.result()["f1"] > classical.result()["f1"] + 0.1


def test_deepflux_twins_match(deepflux):
    from keras_skel.data.natural import make_natural_sample
    from keras_skel.detection import load_detector

    image = make_natural_sample(782, 0, (256, 256), "heldout")[0] / np.float32(255)
    reference = deepflux.detect(image)
    lite = load_detector(ROOT / "deepflux_natural.tflite").detect(image)
    np.testing.assert_allclose(lite["flux"], reference["flux"], atol=1e-3)
    keras_twin = load_detector(ROOT / "deepflux_natural.keras")
    assert keras_twin.threshold == deepflux.threshold
    newest = max(int(v.name) for v in (ROOT / "deepflux_natural").iterdir() if v.name.isdigit())
    # the .keras twin follows the card: test-time augmentation when the threshold was chosen with it
    card = read_model_card(ROOT / "deepflux_natural" / str(newest))
    assert ("+TTA" in keras_twin.name) == bool(card.get("tta"))
    assert ("scales" in keras_twin.name) == (tuple(card.get("scales") or (1.0,)) != (1.0,))
    twin = keras_twin.detect(image)
    np.testing.assert_allclose(twin["flux"], reference["flux"], atol=1e-4)
    np.testing.assert_array_equal(twin["skeleton"], reference["skeleton"])


@pytest.fixture(scope="module")
def skeletonnet():
    if not (ROOT / "skeletonnet_synth" / "1").is_dir():
        pytest.skip("no shipped skeletonnet_synth in this checkout")
    from keras_skel.skeletal_points import load_points_predictor

    return load_points_predictor("skeletonnet_synth")


def test_skeletonnet_card_and_scores(skeletonnet):
    card = read_model_card(ROOT / "skeletonnet_synth" / "1")
    assert card["task"] == "volumes" and card["refinement"] == "guided" and card["stage"] == "joint"
    assert card["threshold"] == skeletonnet.threshold and card["resolution"] == skeletonnet.resolution
    assert card["training_command"].startswith("keras-skel train skeletonnet_synth")
    scores = card["scores"]["volumes64_heldout"]
    assert scores["count"] >= 90 and scores["iou"] > scores["iou_quantize"]


def test_skeletonnet_beats_quantize_dilate_on_fresh_objects(skeletonnet):
    """Re-measured on objects of a seed no training, validation or card set used."""
    from keras_skel.data.volumes import make_volume_sample
    from keras_skel.skeletal_points import evaluate_predictor

    samples = []
    for i in range(6):
        s = make_volume_sample(783, i, resolution=skeletonnet.resolution, image_size=64, views=2)
        samples.append(dict(images=s.images, skeleton_points=s.skeleton_points, skeletal_volume=s.skeletal_volume))
    scores = evaluate_predictor(skeletonnet, samples)
    assert scores["count"] == 12 and scores["iou"] > scores["iou_quantize"]
