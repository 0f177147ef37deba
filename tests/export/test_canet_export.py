"""CANet (deep supervision, graph-op distance input, context attention) — single, as an
ensemble with TTA, and as a clean-shape model with spur pruning — through the same deployment
checks as the U-Net: fresh-process SavedModel, saved_model_cli, builtin-only TFLite."""

import subprocess
import sys

import numpy as np
import pytest

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.inference import load
from tests.export.test_saved_model import FRESH, _masks_agree

pytestmark = pytest.mark.xdist_group("canet_export")  # the session fixture canet_exported built once (setup.cfg)


def test_canet_run_keras_and_savedmodel_agree(canet_exported):
    run_dir, tta, exported = canet_exported
    keras_model, saved = load(run_dir, tta=tta), load(exported.saved_model)
    assert saved.prune_length == keras_model.prune_length and saved.gate_radius == keras_model.gate_radius
    for size in ((64, 64), (45, 71)):
        shape = make_shape_sample(3, 0, size, noise=1.0)[0]
        a, b = keras_model.predict(shape), saved.predict(shape)
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-5)
        np.testing.assert_array_equal(a.skeleton, b.skeleton)


def test_canet_savedmodel_in_a_fresh_tensorflow_only_process(canet_exported, tmp_path):
    import cv2

    run_dir, tta, exported = canet_exported
    shape = make_shape_sample(3, 1, (64, 64), noise=1.0)[0]
    np.save(tmp_path / "x.npy", shape.astype(np.float32)[None, ..., None])
    cv2.imwrite(str(tmp_path / "in.png"), shape.astype(np.uint8) * 255)
    (tmp_path / "fresh.py").write_text(FRESH)
    subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(exported.saved_model), str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npz"), str(tmp_path / "in.png")], check=True, timeout=180, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["skeleton"][0, ..., 0], load(run_dir, tta=tta).skeletonize(shape))
    cli = [sys.executable, "-c", "from tensorflow.python.tools.saved_model_cli import main; main()"]
    result = subprocess.run([*cli, "run", "--dir", str(exported.saved_model), "--tag_set", "serve",
                             "--signature_def", "serving_default", "--inputs", f"images={tmp_path / 'x.npy'}",
                             "--outdir", str(tmp_path / "cli")], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]


def test_canet_tflite_builtins_and_agreement(canet_exported):
    from ai_edge_litert.interpreter import Interpreter

    _, _, exported = canet_exported
    ops = {d["op_name"] for d in Interpreter(model_path=str(exported.tflite[0]))._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    saved, lite = load(exported.saved_model), load(exported.tflite[0])
    for i in range(3):
        shape = make_shape_sample(4, i, (64, 64), noise=1.0)[0]
        a, b = saved.predict(shape), lite.predict(shape)
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-4)
        assert _masks_agree(a.probability, b.probability, saved.threshold)
        if not (np.abs(a.probability - saved.threshold) <= 1e-4).any():  # same mask: same skeleton
            np.testing.assert_array_equal(a.skeleton, b.skeleton)
