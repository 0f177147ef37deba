"""Thin-structure (segmentation) models exported: SavedModel (2-D and 3-D) and builtin-only
TFLite (2-D), as TF Serving, LiteRT and the CLI meet them. Tiny models, real files, fresh
processes, real HTTP on loopback."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from keras_skel.cli import cli
from keras_skel.config import load_config
from keras_skel.data.thin import make_thin_sample, write_thin_dataset
from keras_skel.errors import ConfigError
from keras_skel.export import export_run, read_model_card
from keras_skel.segmentation import GraphSegmenter, TFLiteSegmenter, ThinSegmenter, load_segmenter
from keras_skel.training import train
from tests.harness import unknown_ops

pytestmark = pytest.mark.xdist_group("thin_export")  # module fixtures built once (setup.cfg)

FRESH = """
import sys
sys.modules["keras"] = None          # neither Keras nor keras-skel may be needed to serve
sys.modules["keras_skel"] = None
import numpy as np
import tensorflow as tf
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], labels=out["labels"].numpy(), probability=out["probability"].numpy())
"""


@pytest.fixture(scope="module")
def thin_2d(tmp_path_factory):
    """A 2-class (softmax) 2-D run, exported with a TFLite twin and scored on a small folder."""
    root = tmp_path_factory.mktemp("thin_export")
    run = train(load_config("thin_tiny"), root / "run", verbose=0, command="pytest")
    data = root / "eval"
    write_thin_dataset(data, 3, (40, 40), seed=11, classes=2, progress=False)
    exported = export_run(run.run_dir, "thin", root=root / "models", tflite=True, tflite_size=(32, 32),
                          eval_dirs=[data], command="pytest export")
    return run, exported, data


def _images():
    # Odd, non-square sizes: padding to the stride and cropping back happen in the graph.
    return [make_thin_sample(12, i, size, 2)[0] for i, size in enumerate([(32, 32), (37, 45), (21, 50)])]


def test_saved_model_equals_the_keras_model(thin_2d):
    run, exported, _ = thin_2d
    keras_model, saved = load_segmenter(run.run_dir), load_segmenter(exported.saved_model)
    assert isinstance(saved, GraphSegmenter) and (saved.classes, saved.ndim) == (2, 2)
    for image in _images():
        labels = saved.labels(image)
        assert labels.shape == image.shape and labels.dtype == np.uint8
        np.testing.assert_allclose(saved.probability(image), keras_model.probability(image), atol=1e-5)
        np.testing.assert_array_equal(labels, keras_model.labels(image))
    assert load_segmenter(exported.saved_model.parent).name == str(exported.saved_model)  # the newest version


def test_card_records_task_classes_validation_and_scores(thin_2d):
    run, exported, data = thin_2d
    card = read_model_card(exported.saved_model)
    assert card == exported.card
    assert (card["task"], card["classes"], card["ndim"], card["stride"]) == ("thin", 2, 2, 4)
    assert card["training_command"] == "pytest" and card["export_command"] == "pytest export"
    assert card["validation"]["dice"] == pytest.approx(run.val_scores["dice"])
    assert card["tflite_input_size"] == [32, 32] and card["tflite"] == {"thin.tflite": "none"}
    assert set(card["outputs"]["serving_default"]) == {"labels", "probability"}
    scores = card["scores"][data.name]
    assert scores["count"] == 3 and {"dice", "cldice", "betti0", "per_class"} <= set(scores)


def test_fresh_tensorflow_only_process_and_saved_model_cli(thin_2d, tmp_path):
    run, exported, _ = thin_2d
    image = _images()[1]
    np.save(tmp_path / "x.npy", image[None, ..., None].astype(np.float32))
    subprocess.run([sys.executable, "-c", FRESH, str(exported.saved_model), str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npz")], check=True, timeout=180, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    assert out["labels"].dtype == np.uint8 and out["probability"].shape == (1, 37, 45, 3)
    np.testing.assert_array_equal(out["labels"][0, ..., 0], load_segmenter(run.run_dir).labels(image))
    assert unknown_ops(exported.saved_model)[0] == []
    result = subprocess.run([sys.executable, "-c", "from tensorflow.python.tools.saved_model_cli import main; main()",
                             "run", "--dir", str(exported.saved_model), "--tag_set", "serve", "--signature_def",
                             "serving_default", "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir",
                             str(tmp_path / "cli")], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "labels.npy"), out["labels"])


def test_predict_png_signature(thin_2d):
    import tensorflow as tf

    run, exported, _ = thin_2d
    image = _images()[2]
    grey8 = np.round(image * 255).astype(np.uint8)
    rgb = np.repeat(grey8[..., None], 3, axis=-1)  # colour input goes through luminance
    fn = tf.saved_model.load(str(exported.saved_model)).signatures["predict_png"]
    encoded = [cv2.imencode(".png", picture)[1].tobytes() for picture in (grey8, rgb)]
    out = fn(image_bytes=tf.constant(encoded))["labels_png_bytes"].numpy()
    expected = load_segmenter(run.run_dir).labels(grey8.astype(np.float32) / 255)
    for png in out:
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), expected)


def test_tflite_is_builtin_only_and_agrees(thin_2d):
    from ai_edge_litert.interpreter import Interpreter

    run, exported, _ = thin_2d
    (path,) = exported.tflite
    ops = {d["op_name"] for d in Interpreter(model_path=str(path))._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    lite, keras_model = load_segmenter(path), load_segmenter(run.run_dir)
    assert isinstance(lite, TFLiteSegmenter) and lite.size == (32, 32) and lite.classes == 2
    image = _images()[0]  # exactly the TFLite size: the same computation as the Keras model
    np.testing.assert_allclose(lite.probability(image), keras_model.probability(image), atol=1e-4)
    large = make_thin_sample(13, 0, (70, 90), 2)[0]  # tiled
    probability = lite.probability(large)
    assert probability.shape == (70, 90, 3)
    np.testing.assert_allclose(probability.sum(-1), 1.0, atol=1e-4)
    assert lite.labels(large).shape == (70, 90)


def test_cli_export_predict_and_evaluate_an_export(thin_2d, tmp_path):
    run, _, data = thin_2d
    runner = CliRunner()
    r = runner.invoke(cli, ["export", str(run.run_dir), "--name", "seg", "--root", str(tmp_path / "models")])
    assert r.exit_code == 0, r.output
    model = tmp_path / "models" / "seg"
    r = runner.invoke(cli, ["predict", "--model", str(model), str(data / "images"), "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    image = cv2.imread(str(data / "images" / "000001.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255
    written = cv2.imread(str(tmp_path / "p" / "000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, load_segmenter(run.run_dir).labels(image))
    r = runner.invoke(cli, ["evaluate", "--model", str(model), "--data", str(data)])
    assert r.exit_code == 0 and "clDice" in r.output, r.output
    r = runner.invoke(cli, ["export", str(run.run_dir), "--name", "seg", "--root", str(tmp_path / "models"),
                            "--version", "1"])
    assert r.exit_code != 0 and "exists already" in r.output


def test_served_over_rest(thin_2d):
    from keras_skel.serving.server import start_server

    run, exported, _ = thin_2d
    handle = start_server(exported.saved_model.parent.parent, port=0, max_body_bytes=2_000_000)
    try:
        served = load_segmenter(f"{handle.url}/v1/models/thin")
        assert isinstance(served, GraphSegmenter) and (served.classes, served.ndim) == (2, 2)
        image = _images()[1]
        np.testing.assert_array_equal(served.labels(image), load_segmenter(run.run_dir).labels(image))
    finally:
        handle.stop()


def test_3d_binary_model_exports_as_saved_model_only(tmp_path):
    cfg = load_config("thin_tiny", ["data.image_size=[16,16,16]", "data.classes=1", "model.name=unet3d",
                                    "model.params={base_filters: 4, depth: 2, deep_supervision: true}",
                                    "loss.name=dice_ce", "loss.params={}", "train.epochs=1", "train.steps_per_epoch=2"])
    run = train(cfg, tmp_path / "run", verbose=0)
    with pytest.raises(ConfigError, match="SavedModels only"):
        export_run(run.run_dir, "vol", root=tmp_path / "models", tflite=True)
    assert not (tmp_path / "models").exists()
    exported = export_run(run.run_dir, "vol", root=tmp_path / "models")
    saved, keras_model = load_segmenter(exported.saved_model), load_segmenter(run.run_dir)
    assert isinstance(keras_model, ThinSegmenter) and (saved.classes, saved.ndim) == (1, 3)
    volume = make_thin_sample(14, 0, (17, 18, 21), 1)[0]  # padded to the stride on every axis
    labels = saved.labels(volume)
    assert labels.shape == volume.shape and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_allclose(saved.probability(volume), keras_model.probability(volume), atol=1e-5)
    np.testing.assert_array_equal(labels, keras_model.labels(volume))
    card = read_model_card(exported.saved_model)
    assert (card["ndim"], card["classes"]) == (3, 1) and "predict_png" not in card["inputs"]


def test_bad_specs_are_clear(thin_2d, tmp_path):
    from keras_skel.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="not a thin-structure model"):
        load_segmenter(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not a thin-structure one"):
        load_segmenter("denoiser_shapes")
