"""Task `natural` (DeepFlux) end to end: pipeline targets, training, the run record, export to
SavedModel and TFLite, fresh-process serving, and the predict / evaluate commands."""

import json
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from keras_skel.cli import cli
from keras_skel.config import load_config
from keras_skel.data.natural import make_natural_sample, write_natural_dataset
from keras_skel.data.natural_pipeline import natural_target_fn
from keras_skel.data.pipeline import samples_dataset, training_pipeline
from keras_skel.data.targets import flux_target
from keras_skel.detection import flux_picture, load_detector, model_task
from keras_skel.errors import ConfigError
from keras_skel.export import export_run, read_model_card
from keras_skel.export.graph import detect_skeletons
from keras_skel.metrics.skeleton_f1 import skeleton_f1
from keras_skel.training import train
from tests.harness import unknown_ops

pytestmark = pytest.mark.xdist_group("natural_training")  # module fixtures built once (setup.cfg)

# The untrained tiny model's flux is weak; a run whose stored λ is this low yields skeletons,
# so the agreement tests below compare non-empty outputs.
LOW_LAMBDA = 0.02


@pytest.fixture(scope="module")
def natural_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("natural")
    result = train(load_config("deepflux_tiny"), root / "run", verbose=0, command="pytest")
    low = root / "low"
    shutil.copytree(result.run_dir, low)
    info = json.loads((low / "model.json").read_text())
    info["threshold"] = LOW_LAMBDA
    (low / "model.json").write_text(json.dumps(info))
    exported = export_run(low, "flux", root=root / "models", tflite=True, tflite_size=(64, 64), command="pytest")
    return result, low, exported


def _images():
    return [make_natural_sample(9, i, size, "heldout")[0] / np.float32(255) for i, size in
            enumerate([(64, 64), (80, 96), (67, 70)])]


def test_flux_target_follows_the_augmentation():
    """The pipeline makes the flux after the D4 transform: with the skeleton as the image, the
    target's skeleton channel is the image and its flux is that skeleton's flux field."""
    samples = []
    for i in range(4):
        _, skeleton = make_natural_sample(1, i, (64, 64), "train")
        samples.append((np.repeat(skeleton[..., None], 3, axis=-1).astype(np.float32), skeleton))
    ds = training_pipeline(samples_dataset(samples, 3), (64, 64), 4, seed=3, augment=True, image_channels=3,
                           target_fn=natural_target_fn("flux", 5))
    images, targets = next(iter(ds))
    originals = [s for _, s in samples]
    for image, target in zip(images.numpy(), targets.numpy()):
        skeleton = image[..., 0] > 0
        np.testing.assert_array_equal(target[..., 2], skeleton)
        np.testing.assert_allclose(target[..., :2], flux_target(skeleton, 5), atol=1e-6)
    assert any(not any(np.array_equal(i[..., 0], o) for o in originals) for i in images.numpy())


def test_binary_target_is_the_dilated_skeleton():
    from scipy import ndimage
    from skimage.morphology import disk

    skeleton = make_natural_sample(2, 0, (64, 64))[1]
    target = natural_target_fn("binary", 3)(tf.constant(skeleton[..., None].astype(np.float32))).numpy()
    np.testing.assert_array_equal(target[..., 0], ndimage.binary_dilation(skeleton, disk(3)))
    with pytest.raises(ConfigError, match="unknown natural-image target"):
        natural_target_fn("mask")


def test_oracle_flux_recovers_the_skeleton():
    """Algorithm 1 + thinning on the ground-truth flux gives back the ground-truth skeleton
    (within 2 px): the post-processing loses nothing a perfect model would give it."""

    class Oracle:
        def __init__(self, flux):
            self.flux = flux

        def __call__(self, images, training=False):
            return tf.constant(self.flux)

    scores = []
    for i in range(6):
        _, skeleton = make_natural_sample(4, i, (128, 128), "all")
        oracle = Oracle(flux_target(skeleton, 7)[None])
        out = detect_skeletons(oracle, tf.zeros((1, 128, 128, 3)), stride=1, threshold=0.4)
        predicted = out["skeleton"].numpy()[0, ..., 0]
        assert set(np.unique(predicted)) <= {0, 1}
        scores.append(skeleton_f1([predicted], [skeleton], tolerance=2)["f1"])
    assert min(scores) > 0.75 and np.mean(scores) > 0.9, scores


class _FluxOracle:
    """A stand-in network that returns the ground-truth flux (radius 5) of the skeleton drawn in
    channel 0 of its input: exactly D4-equivariant where nearest skeleton pixels are unique."""

    def __call__(self, images, training=False):
        def fluxes(x):
            return np.stack([flux_target(image[..., 0] > 0.5, 5) for image in x]).astype(np.float32)

        out = tf.numpy_function(fluxes, [images], tf.float32)
        return tf.ensure_shape(out, [None, None, None, 2])


def test_tta_turns_the_fluxes_back():
    """D4 test-time augmentation of a flux: each of the 8 outputs turned back *and* its vectors
    turned back gives the untransformed flux again, so their mean is that flux (a wrong vector
    map would average the directions away)."""
    from keras_skel.export.graph import d4_vector_map, natural_raw_outputs

    skeleton = np.zeros((40, 40), np.float32)
    for y, x in ((8, 9), (10, 30), (29, 12), (31, 31)):  # isolated points: unique nearest pixels
        skeleton[y, x] = 1.0
    images = tf.constant(np.repeat(skeleton[None, ..., None], 3, axis=-1))
    plain = natural_raw_outputs(_FluxOracle(), images, stride=1).numpy()
    averaged = natural_raw_outputs(_FluxOracle(), images, stride=1, tta=True).numpy()
    assert np.abs(plain).max() == pytest.approx(1.0)
    np.testing.assert_allclose(averaged, plain, atol=1e-5)
    maps = {(k, f): np.array(d4_vector_map(k, f)) for k in range(4) for f in (False, True)}
    assert all(abs(abs(np.linalg.det(m)) - 1) < 1e-9 for m in maps.values()) and len({m.tobytes() for m in
                                                                                        maps.values()}) == 8


class _ChannelFlux:
    """A stand-in network whose flux is its input's first two channels: scale-equivariant on a
    smooth image (resizing the image resizes the flux)."""

    def __call__(self, images, training=False):
        return images[..., :2]


def test_multiscale_averaging_resizes_back():
    """Multi-scale averaging of a scale-equivariant network gives its one-scale output back (on a
    non-square image, so swapped or missing resizes would show), and each scale's output has
    the input's size."""
    from keras_skel.export.graph import natural_raw_outputs

    yy, xx = np.meshgrid(np.linspace(0, 1, 40), np.linspace(0, 1, 58), indexing="ij")
    angle = 2.0 * yy + 3.0 * xx
    image = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], -1).astype(np.float32)[None]
    plain = natural_raw_outputs(_ChannelFlux(), tf.constant(image), stride=1).numpy()
    for scales in ((0.5, 1.0), (0.75, 1.0, 1.5)):
        averaged = natural_raw_outputs(_ChannelFlux(), tf.constant(image), stride=1, scales=scales).numpy()
        assert averaged.shape == plain.shape
        inner = (slice(None), slice(3, -3), slice(3, -3))  # bilinear resizing shifts the borders a little
        np.testing.assert_allclose(averaged[inner], plain[inner], atol=0.03)
    mirrored = natural_raw_outputs(_ChannelFlux(), tf.constant(image[:, :, ::-1]), stride=1, scales=(0.5, 1.0)).numpy()
    assert np.abs(mirrored - plain).max() > 0.5  # the check can tell different fluxes apart


def test_tta_run_record_export_and_refusals(natural_run, tmp_path):
    """`--reselect --set eval.tta=true --set eval.scales=[0.75,1.0]` re-chooses λ with TTA at two
    scales and records both; loading and exporting the run then run them (SavedModel = Keras,
    builtin-only TFLite); exporting a non-TTA natural run with --tta is refused (its λ was chosen
    without it)."""
    _, low, exported = natural_run
    run = tmp_path / "tta_run"
    shutil.copytree(low, run)
    done = CliRunner().invoke(cli, ["train", "deepflux_tiny", "--out", str(run), "--reselect", "--set", "eval.tta=true",
                                    "--set", "eval.scales=[0.75,1.0]", "--set", "eval.thresholds=[0.005,0.01,0.02]"])
    assert done.exit_code == 0, done.output
    info = json.loads((run / "model.json").read_text())
    assert info["tta"] is True and info["scales"] == [0.75, 1.0] and info["threshold"] in (0.005, 0.01, 0.02)
    assert f"threshold {info['threshold']:g}, validation skeleton F1" in done.output
    assert info["command"].startswith("pytest; ")  # the training command, then the reselect's
    detector = load_detector(run)
    assert detector.name.endswith("+TTA scales 0.75,1")
    done = export_run(run, "flux_tta", root=tmp_path / "models", tflite=True, tflite_size=(64, 64), command="pytest")
    assert done.card["tta"] is True and done.card["scales"] == [0.75, 1.0]
    served = load_detector(done.saved_model)
    lite = load_detector(done.tflite[0])
    image = _images()[0]
    want = detector.detect(image)
    got = served.detect(image)
    np.testing.assert_array_equal(got["skeleton"], want["skeleton"])
    np.testing.assert_allclose(got["flux"], want["flux"], atol=1e-5)
    np.testing.assert_allclose(lite.detect(image)["flux"], want["flux"], atol=1e-4)
    from ai_edge_litert.interpreter import Interpreter

    ops = {d["op_name"] for d in Interpreter(model_path=str(done.tflite[0]))._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    assert not unknown_ops(done.saved_model)[0]
    with pytest.raises(ConfigError, match="eval.tta=true"):
        export_run(low, "flux_tta2", root=tmp_path / "models", tta=True, command="pytest")


def test_run_record(natural_run):
    result, _, _ = natural_run
    info = json.loads((result.run_dir / "model.json").read_text())
    assert info["task"] == "natural" and info["output"] == "flux" and info["stride"] == 16
    assert info["threshold"] in (0.3, 0.4, 0.5) and (info["k1"], info["k2"]) == (3, 4)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert len(metrics["val"]["threshold_table"]) == 3 and metrics["val"]["count"] == 4
    assert 0 <= metrics["val"]["skeleton"]["f1"] <= 1 and "ods_f" in metrics["val"]["benchmark"]
    assert model_task(result.run_dir) == "natural"


def test_savedmodel_matches_keras(natural_run):
    _, low, exported = natural_run
    card = read_model_card(exported.saved_model)
    assert card["task"] == "natural" and card["output"] == "flux" and card["threshold"] == LOW_LAMBDA
    assert set(card["outputs"]["serving_default"]) == {"skeleton", "flux", "confidence"}
    keras_detector, saved = load_detector(low), load_detector(exported.saved_model)
    found = 0
    for image in _images():
        a, b = keras_detector.detect(image), saved.detect(image)
        assert b["skeleton"].shape == image.shape[:2] and b["flux"].shape == (*image.shape[:2], 2)
        np.testing.assert_allclose(a["flux"], b["flux"], atol=1e-5)
        np.testing.assert_array_equal(a["skeleton"], b["skeleton"])
        np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)
        assert not (b["score"] * (1 - b["skeleton"])).any()
        found += int(b["skeleton"].sum())
    assert found > 0, "the comparison needs skeleton pixels"


FRESH = textwrap.dedent("""
    import sys
    sys.modules["keras"] = None
    sys.modules["keras_skel"] = None
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    out = model.signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
    np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
    png = model.signatures["predict_png"](image_bytes=tf.constant([open(sys.argv[4], "rb").read()]))
    open(sys.argv[3] + ".png", "wb").write(png["skeleton_png_bytes"].numpy()[0])
""")


def test_fresh_tensorflow_only_process_and_saved_model_cli(natural_run, tmp_path):
    _, low, exported = natural_run
    image = _images()[1]
    np.save(tmp_path / "x.npy", image[None])
    cv2.imwrite(str(tmp_path / "in.png"), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
    (tmp_path / "serve.py").write_text(FRESH)
    subprocess.run([sys.executable, str(tmp_path / "serve.py"), str(exported.saved_model), str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npz"), str(tmp_path / "in.png")], check=True, timeout=240, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    reference = load_detector(low).detect(image)
    np.testing.assert_array_equal(out["skeleton"][0, ..., 0], reference["skeleton"])
    np.testing.assert_allclose(out["flux"][0], reference["flux"], atol=1e-5)
    from_png = cv2.imread(str(tmp_path / "out.npz.png"), cv2.IMREAD_UNCHANGED)
    # The PNG is 8-bit: its pixels are the array's rounded, so compare the decoded input's result.
    png_reference = load_detector(low).detect(cv2.imread(str(tmp_path / "in.png"))[..., ::-1] / np.float32(255))
    np.testing.assert_array_equal(from_png > 127, png_reference["skeleton"] > 0)

    command = [sys.executable, "-c", "from tensorflow.python.tools.saved_model_cli import main; main()", "run",
               "--dir", str(exported.saved_model), "--tag_set", "serve", "--signature_def", "serving_default",
               "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "cli")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "skeleton.npy"), out["skeleton"])
    unknown, ops = unknown_ops(exported.saved_model)
    assert not unknown and "ResizeBilinear" in ops


def test_tflite_builtins_and_agreement(natural_run):
    from ai_edge_litert.interpreter import Interpreter

    _, _, exported = natural_run
    interpreter = Interpreter(model_path=str(exported.tflite[0]))
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    lite, saved = load_detector(exported.tflite[0]), load_detector(exported.saved_model)
    image = _images()[0]
    a, b = saved.detect(image), lite.detect(image)
    np.testing.assert_allclose(a["flux"], b["flux"], atol=1e-4)
    far = np.abs(np.hypot(*np.moveaxis(a["flux"], -1, 0)) - LOW_LAMBDA) > 1e-3
    if far.all():
        np.testing.assert_array_equal(a["skeleton"], b["skeleton"])
    with pytest.raises(Exception, match="fixed-size model for 64x64"):
        lite.detect(_images()[1])


def test_predict_and_evaluate_commands(natural_run, tmp_path):
    _, low, exported = natural_run
    data = tmp_path / "data"
    write_natural_dataset(data, 3, (64, 64), seed=5, split="heldout", progress=False)
    runner = CliRunner()
    out = tmp_path / "pred"
    done = runner.invoke(cli, ["predict", "--model", str(exported.saved_model), str(data / "images"), "--out",
                               str(out), "--overlay"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir())[:3] == ["000000.png", "000000_flux.png", "000000_overlay.png"]
    skeleton = cv2.imread(str(out / "000001.png"), cv2.IMREAD_UNCHANGED)
    expected = load_detector(low).detect(cv2.imread(str(data / "images" / "000001.png"))[..., ::-1] / np.float32(255))
    np.testing.assert_array_equal(skeleton > 0, expected["skeleton"] > 0)
    again = runner.invoke(cli, ["predict", "--model", str(low), str(data / "images"), "--out", str(out)])
    assert again.exit_code != 0 and "exists already" in again.output

    report = tmp_path / "report"
    done = runner.invoke(cli, ["evaluate", "--model", str(low), "--data", str(data), "--report", str(report)])
    assert done.exit_code == 0, done.output
    assert "skeleton F1" in done.output and "within 4 px" in done.output
    saved = json.loads((report / "report.json").read_text())
    assert saved["count"] == 3 and (report / "pr_curve.png").is_file()
    classical = runner.invoke(cli, ["evaluate", "--model", "classical", "--data", str(data)])
    assert classical.exit_code == 0 and "classical (Otsu" in classical.output


def test_flux_picture_colours():
    flux = np.array([[[0, 1], [1, 0], [0, -1], [0, 0]]], np.float32)  # right, down, left, none
    picture = flux_picture(flux)
    assert picture.dtype == np.uint8 and picture.shape == (1, 4, 3)
    assert tuple(picture[0, 0]) == (255, 0, 0) and tuple(picture[0, 3]) == (0, 0, 0)
    assert len({tuple(p) for p in picture[0, :3]}) == 3


def test_config_checks():
    with pytest.raises(ConfigError, match="task natural needs data.source"):
        load_config("deepflux_tiny", ["data.source=synthetic_shapes"])
    with pytest.raises(ConfigError, match="data.target flux is for task natural"):
        load_config("unet_tiny", ["data.target=flux"])
    with pytest.raises(ConfigError, match="for task natural"):
        load_config("unet_tiny", ["data.source=natural_folder"])
    with pytest.raises(ConfigError, match="colour_augment is for RGB inputs"):
        load_config("unet_tiny", ["data.colour_augment=0.5"])
    with pytest.raises(ConfigError, match=r"strength in \[0, 1\]"):
        load_config("deepflux_tiny", ["data.colour_augment=2"])
    assert load_config("deepflux_tiny", ["data.colour_augment=0.7"]).data.colour_augment == 0.7
    with pytest.raises(ConfigError, match="data.photos textures fresh composites"):
        load_config("deepflux_tiny", ["data.source=natural_folder", "data.train_dir=x", "data.photos=p"])
    with pytest.raises(ConfigError, match="data.photos textures fresh composites"):
        load_config("unet_tiny", ["data.photos=p"])


def test_synthetic_natural_source_with_photos(tmp_path):
    from keras_skel.data.datasets import _train_seed, _val_seed, synthetic_natural
    from keras_skel.errors import DataError

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):
        cv2.imwrite(str(photos / f"p{i}.png"), rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    cfg = load_config("deepflux_tiny", [f"data.photos={photos}"])
    assert cfg.data.photos == str(photos)
    splits = synthetic_natural((64, 64), seed=4, split="train", val_count=2, photos=str(photos))
    image, skeleton = next(iter(splits.train))
    want = make_natural_sample(_train_seed(4), 0, (64, 64), "train", photos=photos)
    np.testing.assert_allclose(image.numpy(), want[0] / np.float32(255), atol=1e-6)
    np.testing.assert_array_equal(splits.val[1][1], make_natural_sample(_val_seed(4), 1, (64, 64), "train",
                                                                        photos=photos)[0] / np.float32(255))
    assert "photos" in splits.description
    with pytest.raises(DataError, match="does not exist"):
        synthetic_natural((64, 64), seed=4, val_count=1, photos=str(tmp_path / "none"))


def test_python_api_dispatches_natural_models(natural_run):
    import keras_skel

    _, low, exported = natural_run
    detector = keras_skel.load(exported.saved_model)
    assert detector.task == "natural"
    image = make_natural_sample(9, 0, (64, 64), "heldout")[0]
    skeleton = keras_skel.skeletonize(image, model=low)
    assert skeleton.shape == (64, 64) and skeleton.dtype == np.uint8
    np.testing.assert_array_equal(skeleton, detector.skeletonize(image))


def test_rest_server_serves_the_natural_model(natural_run):
    """The embedded TF Serving REST server answers a DeepFlux model like any other: RGB rows in,
    skeleton / flux / confidence out, equal to the SavedModel called directly."""
    import urllib.request

    from keras_skel.serving.server import start_server

    _, _, exported = natural_run
    handle = start_server(exported.saved_model.parent.parent, port=0, threads=2)
    try:
        image = _images()[0][None]
        body = json.dumps({"instances": image.tolist()}).encode()
        request = urllib.request.Request(handle.url + "/v1/models/flux:predict", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            rows = json.loads(response.read())["predictions"]
    finally:
        handle.stop()
    assert set(rows[0]) == {"skeleton", "flux", "confidence"}
    expected = load_detector(exported.saved_model).fn(image)
    np.testing.assert_array_equal(np.array([r["skeleton"] for r in rows], np.uint8), expected["skeleton"].numpy())
    np.testing.assert_allclose(np.array([r["flux"] for r in rows], np.float32), expected["flux"].numpy(), atol=1e-6)


def test_served_natural_model_through_load_predict_and_evaluate(natural_run, tmp_path):
    """`keras_skel.load(URL)` and `predict` / `evaluate --model URL` talk to a served DeepFlux
    model (RGB in, the served graph's skeleton out), equal to the SavedModel in process."""
    import keras_skel
    from keras_skel.serving.server import start_server

    _, _, exported = natural_run
    handle = start_server(exported.saved_model.parent.parent, port=0, threads=2)
    url = handle.url + "/v1/models/flux"
    try:
        assert model_task(url) == "natural"
        served = keras_skel.load(url)
        local = load_detector(exported.saved_model)
        assert served.task == "natural" and served.output == "flux" and served.threshold is None
        for image in _images():  # sizes that are not multiples of the stride
            got, want = served.detect(image), local.detect(image)
            np.testing.assert_array_equal(got["skeleton"], want["skeleton"])
            np.testing.assert_allclose(got["flux"], want["flux"], atol=1e-6)
        assert _images()[0].shape[:2] == served.skeletonize((_images()[0] * 255).astype(np.uint8)).shape
        with pytest.raises(ConfigError, match="baked into the exported graph"):
            keras_skel.load(url, threshold=0.3)

        data = tmp_path / "data"
        write_natural_dataset(data, 2, (64, 64), seed=6, split="heldout", progress=False)
        runner = CliRunner()
        done = runner.invoke(cli, ["predict", "--model", url, str(data / "images"), "--out", str(tmp_path / "p"),
                                   "--overlay"])
        assert done.exit_code == 0, done.output
        written = cv2.imread(str(tmp_path / "p" / "000001.png"), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(data / "images" / "000001.png"))[..., ::-1] / np.float32(255)
        np.testing.assert_array_equal(written > 0, local.detect(image)["skeleton"] > 0)
        assert (tmp_path / "p" / "000001_flux.png").is_file()
        via_url = runner.invoke(cli, ["evaluate", "--model", url, "--data", str(data)])
        in_process = runner.invoke(cli, ["evaluate", "--model", str(exported.saved_model), "--data", str(data)])
        assert via_url.exit_code == 0 and in_process.exit_code == 0, via_url.output + in_process.output
        score = lambda out: out[out.index("skeleton F1"):]  # noqa: E731  (the model name differs)
        assert score(via_url.output) == score(in_process.output)
    finally:
        handle.stop()


def test_predict_refuses_to_write_over_its_inputs(natural_run, tmp_path):
    import cv2 as _cv2

    _, low, _ = natural_run
    _cv2.imwrite(str(tmp_path / "photo.png"), (_images()[0] * 255).astype(np.uint8))
    runner = CliRunner()
    done = runner.invoke(cli, ["predict", "--model", str(low), str(tmp_path), "--out", str(tmp_path), "--overwrite"])
    assert done.exit_code != 0 and "is an input image" in done.output
    assert _cv2.imread(str(tmp_path / "photo.png")).shape == (64, 64, 3)
