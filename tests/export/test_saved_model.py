"""Exported SavedModels as TF Serving and users meet them: real files, fresh processes."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.errors import ConfigError, DataError, ModelNotFoundError
from keras_skel.export import export_run, read_model_card
from keras_skel.inference import SavedModelSkeletonizer, TFLiteSkeletonizer, load
from tests.harness import load_tool, unknown_ops

ROOT = Path(__file__).resolve().parents[2]


def _shapes():
    # Odd and non-square sizes: padding to the stride and cropping back happen in the graph.
    return [make_shape_sample(5, i, size, noise=1.0)[0] for i, size in enumerate([(64, 64), (45, 71), (33, 40)])]


def _masks_agree(p_a, p_b, threshold, tol=1e-4):
    """Binarized maps equal wherever the probability is not within `tol` of the threshold."""
    far = np.abs(p_a - threshold) > tol
    return np.array_equal((p_a >= threshold)[far], (p_b >= threshold)[far])


def test_savedmodel_matches_keras_model(tiny_run, exported_tiny):
    keras_model = load(tiny_run.run_dir)
    saved = load(exported_tiny.saved_model)
    assert isinstance(saved, SavedModelSkeletonizer) and saved.threshold == keras_model.threshold
    for shape in _shapes():
        a, b = keras_model.predict(shape), saved.predict(shape)
        assert b.skeleton.shape == shape.shape and b.skeleton.dtype == np.uint8
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-5)
        np.testing.assert_array_equal(a.skeleton, b.skeleton)


def test_model_card(exported_tiny, tiny_run):
    card = read_model_card(exported_tiny.saved_model)
    assert card == exported_tiny.card
    assert card["name"] == "tiny" and card["version"] == 1 and card["task"] == "shapes"
    assert card["threshold"] == tiny_run.threshold and card["stride"] == 8
    assert card["export_command"] == "pytest" and card["training_command"] == "pytest"
    assert "synthetic shapes" in card["training_data"]
    assert card["validation"]["exact"]["f1"] == pytest.approx(tiny_run.val_exact_f1)
    assert card["tflite_input_size"] == [64, 64] and card["tflite"] == {"tiny.tflite": "none"}
    assert set(card["inputs"]) == {"serving_default", "predict_png"}


FRESH = textwrap.dedent("""
    import sys
    sys.modules["keras"] = None          # neither Keras nor keras-skel may be needed to serve
    sys.modules["keras_skel"] = None
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    out = model.signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
    np.savez(sys.argv[3], skeleton=out["skeleton"].numpy(), probability=out["probability"].numpy())
    png = model.signatures["predict_png"](image_bytes=tf.constant([open(sys.argv[4], "rb").read()]))
    open(sys.argv[3] + ".png", "wb").write(png["skeleton_png_bytes"].numpy()[0])
""")


def test_fresh_process_with_only_tensorflow(exported_tiny, tiny_run, tmp_path):
    import cv2

    shape = _shapes()[1]
    batch = np.stack([shape, np.fliplr(shape)]).astype(np.float32)[..., None]
    np.save(tmp_path / "x.npy", batch)
    cv2.imwrite(str(tmp_path / "in.png"), shape.astype(np.uint8) * 255)
    script = tmp_path / "serve_only_tf.py"
    script.write_text(FRESH)
    subprocess.run([sys.executable, str(script), str(exported_tiny.saved_model), str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npz"), str(tmp_path / "in.png")], check=True, timeout=180,
                   capture_output=True)
    out = np.load(tmp_path / "out.npz")
    reference = load(tiny_run.run_dir)
    for i in range(2):
        expected = reference.predict(batch[i, ..., 0])
        np.testing.assert_allclose(out["probability"][i, ..., 0], expected.probability, atol=1e-5)
        np.testing.assert_array_equal(out["skeleton"][i, ..., 0], expected.skeleton)
    png = cv2.imread(str(tmp_path / "out.npz.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png > 127, reference.predict(shape).skeleton.astype(bool))


def test_saved_model_cli_run(exported_tiny, tmp_path):
    """`saved_model_cli run` uses the C++ loader TF Serving uses (TF_NOTES)."""
    np.save(tmp_path / "x.npy", _shapes()[0].astype(np.float32)[None, ..., None])
    cli = [sys.executable, "-c", "from tensorflow.python.tools.saved_model_cli import main; main()"]
    out = subprocess.run([*cli, "run", "--dir", str(exported_tiny.saved_model), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", f"images={tmp_path / 'x.npy'}",
                          "--outdir", str(tmp_path / "out")], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    skeleton = np.load(tmp_path / "out" / "skeleton.npy")
    assert skeleton.shape == (1, 64, 64, 1) and skeleton.dtype == np.uint8
    np.testing.assert_array_equal(skeleton[0, ..., 0], load(exported_tiny.saved_model).skeletonize(_shapes()[0]))


def test_every_op_is_a_stock_tensorflow_op(exported_tiny):
    unknown, ops = unknown_ops(exported_tiny.saved_model)
    assert not unknown, f"ops that stock TensorFlow does not register: {unknown}"
    assert {"Conv2D", "While"} & ops or {"Conv2D", "StatelessWhile"} & ops


def test_predict_png_round_trips_real_png_bytes(exported_tiny):
    import cv2

    loaded = tf.saved_model.load(str(exported_tiny.saved_model))
    shapes = _shapes()
    encoded = []
    for i, shape in enumerate(shapes):
        image = shape.astype(np.uint8) * 255
        if i == 1:  # RGBA with the shape in the alpha channel and constant colour
            image = np.dstack([np.full_like(image, 90)] * 3 + [image])
        if i == 2:  # 16-bit grey
            image = shape.astype(np.uint16) * 65535
        encoded.append(cv2.imencode(".png", image)[1].tobytes())
    out = loaded.signatures["predict_png"](image_bytes=tf.constant(encoded))["skeleton_png_bytes"].numpy()
    reference = load(exported_tiny.saved_model)
    for shape, png in zip(shapes, out):
        decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == shape.shape
        np.testing.assert_array_equal(decoded > 127, reference.skeletonize(shape).astype(bool))


def test_existing_version_is_not_overwritten(exported_tiny, tiny_run):
    root = exported_tiny.saved_model.parent.parent
    before = (exported_tiny.saved_model / "saved_model.pb").read_bytes()
    with pytest.raises(ConfigError, match="exists already"):
        export_run(tiny_run.run_dir, "tiny", root=root, version=1)
    assert (exported_tiny.saved_model / "saved_model.pb").read_bytes() == before


def test_failed_export_leaves_nothing(tiny_run, tmp_path):
    with pytest.raises(DataError):
        # Scoring on a folder without data fails after the SavedModel was written to the temp dir.
        (tmp_path / "empty").mkdir()
        export_run(tiny_run.run_dir, "m", root=tmp_path / "models", eval_dirs=[tmp_path / "empty"])
    assert not (tmp_path / "models" / "m").exists() or not any((tmp_path / "models" / "m").iterdir())
    with pytest.raises(ConfigError, match="multiple of the model stride"):
        export_run(tiny_run.run_dir, "m", root=tmp_path / "models", tflite=True, tflite_size=(60, 60))
    assert not list((tmp_path / "models").rglob("*.tflite"))


def test_version_numbers_and_force(tiny_run, tmp_path):
    first = export_run(tiny_run.run_dir, "m", root=tmp_path)
    second = export_run(tiny_run.run_dir, "m", root=tmp_path)
    assert (first.saved_model.name, second.saved_model.name) == ("1", "2")
    again = export_run(tiny_run.run_dir, "m", root=tmp_path, version=1, force=True)
    assert again.saved_model == first.saved_model and (first.saved_model / "saved_model.pb").exists()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no temp dirs left


def test_bad_names_and_runs(tiny_run, tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a finished training run"):
        export_run(tmp_path, "m", root=tmp_path / "out")
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run.run_dir, damaged)
    (damaged / "best.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ModelNotFoundError, match="best.keras could not be loaded as a Keras model"):
        export_run(damaged, "m", root=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_shipped_name_lookup(exported_tiny, monkeypatch):
    root = exported_tiny.saved_model.parent.parent
    monkeypatch.setenv("KERAS_SKEL_MODELS", str(root))
    model = load("tiny")
    assert isinstance(model, SavedModelSkeletonizer) and model.path == exported_tiny.saved_model
    with pytest.raises(ModelNotFoundError, match="KERAS_SKEL_MODELS"):
        load("no_such_shipped_model")


def test_tflite_matches_saved_model(exported_tiny):
    saved = load(exported_tiny.saved_model)
    lite = load(exported_tiny.tflite[0])
    assert isinstance(lite, TFLiteSkeletonizer) and lite.size == (64, 64)
    assert lite.threshold == saved.threshold
    # At the TFLite input size both run the same graph on the same pixels.
    for shape in [make_shape_sample(6, i, (64, 64), noise=1.0)[0] for i in range(4)]:
        a, b = saved.predict(shape), lite.predict(shape)
        assert b.skeleton.shape == shape.shape
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-4)
        if np.array_equal(a.probability >= saved.threshold, b.probability >= saved.threshold):
            np.testing.assert_array_equal(a.skeleton, b.skeleton)
        assert _masks_agree(a.probability, b.probability, saved.threshold)
    # Smaller images are padded with background to the fixed size and cropped back.
    small = make_shape_sample(6, 9, (33, 40), noise=1.0)[0]
    assert lite.predict(small).skeleton.shape == (33, 40)


def test_tflite_uses_builtin_ops_only(exported_tiny):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exported_tiny.tflite[0]))
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    assert list(interpreter.get_signature_list()) == ["serving_default"]


def test_tflite_tiles_large_images(exported_tiny):
    saved = load(exported_tiny.saved_model)
    lite = load(exported_tiny.tflite[0])
    shape = make_shape_sample(8, 3, (150, 130), noise=1.0)[0]
    result = lite.predict(shape)
    assert result.skeleton.shape == (150, 130)
    whole = saved.predict(shape).probability
    # Tiles see less context than the whole image; away from seams they agree closely.
    assert np.mean(np.abs(result.probability - whole) < 0.05) > 0.95


def test_quantized_variants(tiny_run, tmp_path):
    result = export_run(tiny_run.run_dir, "q", root=tmp_path, tflite=True, tflite_size=(64, 64),
                        quantize=("float16", "dynamic"))
    names = sorted(p.name for p in result.tflite)
    assert names == ["q_dynamic.tflite", "q_float16.tflite"]
    saved = load(result.saved_model)
    shape = _shapes()[0]
    reference = saved.predict(shape).probability
    for path in result.tflite:
        lite = load(path)
        assert lite.threshold == saved.threshold  # found via the SavedModel beside it
        np.testing.assert_allclose(lite.predict(shape).probability, reference, atol=0.05)


def test_full_integer_int8_keeps_post_processing_exact(tiny_run, tmp_path):
    """Full-integer quantization must not quantize the thinning: the int8 model's skeleton is
    exactly the thinning of its own thresholded probability."""
    from keras_skel.ops import probability_to_skeleton

    result = export_run(tiny_run.run_dir, "q8", root=tmp_path, tflite=True, tflite_size=(64, 64),
                        quantize=("int8",))
    lite = load(result.tflite[0])
    for shape in [make_shape_sample(9, i, (64, 64), noise=1.0)[0] for i in range(3)]:
        out = lite.predict(shape)
        expected = probability_to_skeleton(out.probability[None, :, :, None], lite.threshold).numpy()[0, :, :, 0]
        np.testing.assert_array_equal(out.skeleton, expected)


def test_predict_cli_on_every_model_kind(exported_tiny, tiny_run, shapes_dir, tmp_path):
    from click.testing import CliRunner

    from keras_skel.cli import cli
    from keras_skel.data.io import read_binary_image

    files = sorted((shapes_dir / "shapes").glob("*.png"))[:3]
    outputs = {}
    for label, spec in (("keras", tiny_run.run_dir), ("saved", exported_tiny.saved_model)):
        out = tmp_path / label
        r = CliRunner().invoke(cli, ["predict", "--model", str(spec), *map(str, files), "--out", str(out),
                                     "--save-probability"])
        assert r.exit_code == 0, r.output
        outputs[label] = [read_binary_image(out / f.name) for f in files]
        probability = tmp_path / label / f"{files[0].stem}_probability.png"
        import cv2

        assert cv2.imread(str(probability), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    for a, b in zip(outputs["keras"], outputs["saved"]):
        np.testing.assert_array_equal(a, b)
    r = CliRunner().invoke(cli, ["predict", "--model", "classical", str(files[0]), "--out", str(tmp_path / "c"),
                                 "--save-probability"])
    assert r.exit_code == 2 and "no probability map" in r.output


def test_exports_are_readable_by_others(exported_tiny):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    for path in (exported_tiny.saved_model, exported_tiny.tflite[0]):
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert mode == expected, (path, oct(mode), oct(expected))


def test_tta_is_d4_equivariant_and_exported(tiny_run, tmp_path):
    """With D4 test-time augmentation the probability of a rotated/mirrored shape is the
    rotated/mirrored probability; the Keras path and the exported SavedModel agree."""
    from keras_skel.errors import ConfigError

    model = load(tiny_run.run_dir, tta=True)
    shape = make_shape_sample(12, 0, (48, 40), noise=1.0)[0]
    p = model.probability(shape)
    np.testing.assert_allclose(model.probability(np.rot90(shape)), np.rot90(p), atol=1e-5)
    np.testing.assert_allclose(model.probability(np.fliplr(shape)), np.fliplr(p), atol=1e-5)
    assert not np.allclose(p, load(tiny_run.run_dir).probability(shape), atol=1e-6)  # it does something
    result = export_run(tiny_run.run_dir, "tta", root=tmp_path, tta=True)
    assert result.card["tta"] is True
    exported = load(result.saved_model).predict(shape)
    np.testing.assert_allclose(exported.probability, p, atol=1e-5)
    with pytest.raises(ConfigError, match="test-time augmentation applies to Keras models"):
        load(result.saved_model, tta=True)


def test_variables_are_written_in_shards_that_load_as_one(tiny_run, tmp_path, monkeypatch):
    """Exports split variables into files of at most `MAX_VARIABLES_SHARD_BYTES` (16 MiB: shipped
    models stay in git-friendly files); a sharded SavedModel answers like the Keras model."""
    from keras_skel.export import saved_model as exporter

    reference = load(tiny_run.run_dir)
    total = sum(v.numpy().nbytes for v in reference.model.weights)
    monkeypatch.setattr(exporter, "MAX_VARIABLES_SHARD_BYTES", total // 3)
    result = export_run(tiny_run.run_dir, "sharded", root=tmp_path)
    shards = sorted((result.saved_model / "variables").glob("variables.data-*"))
    assert len(shards) >= 3 and shards[0].name.endswith(f"-of-{len(shards):05d}")
    shape = make_shape_sample(5, 0, (64, 64), noise=1.0)[0]
    a, b = reference.predict(shape), load(result.saved_model).predict(shape)
    np.testing.assert_allclose(a.probability, b.probability, atol=1e-5)
    np.testing.assert_array_equal(a.skeleton, b.skeleton)


@pytest.mark.slow
def test_resave_tool_rebuilds_an_inline_tta_graph_and_refuses_a_wrong_twin(tiny_run, tmp_path, monkeypatch, capsys):
    """`tools/resave_shipped.py` rebuilds a version exported with the 8 TTA views inline (as the
    exports before `traced_once` were) from its `.keras` twin: a smaller graph with the same
    answers and the card kept; a twin with other weights is refused and nothing is replaced."""
    import keras

    from keras_skel.export import graph

    with monkeypatch.context() as patch:  # the old export: every view traces the network inline
        patch.setattr(graph, "traced_once", lambda model: model)
        old = export_run(tiny_run.run_dir, "twin", root=tmp_path, tta=True, notes=["kept"])
    shutil.copy(tiny_run.run_dir / "best.keras", tmp_path / "twin.keras")
    old_pb = (old.saved_model / "saved_model.pb").read_bytes()
    shapes = [make_shape_sample(21, i, (64, 48), noise=1.0)[0] for i in range(2)]
    inline = load(old.saved_model)
    before = [inline.predict(s) for s in shapes]
    tool = load_tool("resave_shipped")

    assert tool.main(["twin", "1", "--models", str(tmp_path), "--count", "1", "--why", "pytest"]) == 0
    new_pb = (old.saved_model / "saved_model.pb").read_bytes()
    assert len(new_pb) < len(old_pb) / 2
    card = read_model_card(old.saved_model)
    assert card["notes"][0] == "kept" and "resave_shipped.py" in card["notes"][-1] and card["tta"] is True
    rebuilt = load(old.saved_model)
    for shape, want in zip(shapes, before):
        got = rebuilt.predict(shape)
        np.testing.assert_array_equal(got.skeleton, want.skeleton)
        np.testing.assert_allclose(got.probability, want.probability, atol=1e-5)

    wrong = keras.saving.load_model(tmp_path / "twin.keras", compile=False)
    wrong.set_weights([w + 0.05 for w in wrong.get_weights()])
    wrong.save(tmp_path / "twin.keras")
    capsys.readouterr()
    assert tool.main(["twin", "1", "--models", str(tmp_path), "--count", "1", "--why", "pytest"]) == 1
    assert "answers differently; nothing replaced" in capsys.readouterr().err
    assert (old.saved_model / "saved_model.pb").read_bytes() == new_pb
    assert not [p for p in (tmp_path / "twin").iterdir() if p.name.startswith(".")]  # no temp dirs left
