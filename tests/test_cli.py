"""The CLI as a user runs it: real subprocesses for exit behaviour, CliRunner for the rest."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from keras_skel.cli import cli

COMMANDS = [["data", "synth"], ["data", "convert"], ["train"], ["evaluate"], ["predict"], ["demo"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "keras-skel" in result.output


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom keras_skel.cli import cli\n"
            "r = CliRunner().invoke(cli, ['train', '--help'])\nassert r.exit_code == 0\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_synth_predict_evaluate_classical_is_perfect_on_clean_shapes(tmp_path):
    runner = CliRunner()
    data = tmp_path / "clean"
    r = runner.invoke(cli, ["data", "synth", "--task", "shapes", "--count", "10", "--size", "64",
                            "--out", str(data), "--seed", "3", "--noise", "0"])
    assert r.exit_code == 0, r.output
    assert len(list((data / "shapes").glob("*.png"))) == 10
    r = runner.invoke(cli, ["predict", "--model", "classical", str(data / "shapes"), "--out", str(tmp_path / "pred"),
                            "--overlay"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "pred").glob("*_overlay.png"))) == 10
    # The predicted PNGs equal the GT PNGs: predict writes exactly what the GT rule makes.
    from keras_skel.data.io import read_binary_image

    for gt in (data / "skeletons").glob("*.png"):
        np.testing.assert_array_equal(read_binary_image(tmp_path / "pred" / gt.name), read_binary_image(gt))
    r = runner.invoke(cli, ["evaluate", "--model", "classical", "--data", str(data), "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["exact"]["f1"] == 1.0 and report["count"] == 10
    # The report names its data: the synthesized folder's dataset.json.
    assert report["dataset"]["seed"] == 3 and report["dataset"]["noise"] == 0.0 and report["dataset"]["count"] == 10
    assert (tmp_path / "rep" / "overlays.png").stat().st_size > 0


def test_classical_drops_on_noisy_shapes(shapes_dir, clean_shapes_dir):
    from keras_skel.evaluation import evaluate

    clean = evaluate("classical", clean_shapes_dir)
    noisy = evaluate("classical", shapes_dir)
    assert clean["exact"]["f1"] == 1.0
    assert noisy["exact"]["f1"] < 0.95


def test_predict_refuses_to_overwrite(tmp_path, shapes_dir):
    runner = CliRunner()
    args = ["predict", "--model", "classical", str(shapes_dir / "shapes" / "000000.png"), "--out", str(tmp_path)]
    assert runner.invoke(cli, args).exit_code == 0
    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "exist already" in again.output and "--overwrite" in again.output
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_unknown_model_name_is_a_clear_error(shapes_dir):
    r = CliRunner().invoke(cli, ["evaluate", "--model", "no_such_model", "--data", str(shapes_dir)])
    assert r.exit_code == 2
    assert "model 'no_such_model' not found" in r.output and "classical" in r.output
    assert "Traceback" not in r.output


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "shapes").mkdir()
    (tmp_path / "skeletons").mkdir()
    r = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(tmp_path)])
    assert r.exit_code == 2 and "error:" in r.output and "shapes" in r.output
    r = CliRunner().invoke(cli, ["predict", "--model", "classical", str(tmp_path / "shapes"), "--out",
                                 str(tmp_path / "o")])
    assert r.exit_code == 2 and "error:" in r.output


def test_missing_and_unknown_config_keys_are_clear_errors(tmp_path):
    r = CliRunner().invoke(cli, ["train", "unet_tiny", "--set", "train.epoch=3", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "unknown key train.epoch" in r.output and "did you mean 'epochs'" in r.output
    r = CliRunner().invoke(cli, ["train", "unet_tiny", "--set", "model.params.widht=3", "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "no parameter 'widht'" in r.output
    r = CliRunner().invoke(cli, ["train", "unet_tiny", "--set", "data.source=folder", "--out", str(tmp_path / "r3")])
    assert r.exit_code == 2 and "data.train_dir" in r.output


def test_mismatched_pair_is_a_clear_error(tmp_path):
    import cv2

    for sub in ("shapes", "skeletons"):
        (tmp_path / sub).mkdir()
    cv2.imwrite(str(tmp_path / "shapes" / "a.png"), np.full((20, 20), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "skeletons" / "a.png"), np.full((20, 24), 255, np.uint8))
    r = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(tmp_path)])
    assert r.exit_code == 2 and "a.png" in r.output and "Traceback" not in r.output


def test_cli_process_exits_cleanly(tmp_path):
    """A real `keras-skel` process that loads TF and runs tf.data exits by itself."""
    out = subprocess.run([sys.executable, "-m", "keras_skel.cli", "train", "unet_tiny", "--out", str(tmp_path / "run"),
                          "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2", "--set", "data.val_count=2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "validation F1" in out.stdout


def test_skip_bad_skips_unreadable_pairs(tmp_path, shapes_dir):
    import shutil

    import cv2

    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    cv2.imwrite(str(data / "skeletons" / "000001.png"), np.zeros((10, 30), np.uint8))  # size mismatch
    r = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(data)])
    assert r.exit_code == 2 and "000001" in r.output
    r = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(data), "--skip-bad",
                                 "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["count"] == 11 and len(report["skipped"]) == 1
    # An existing report is not replaced without --overwrite.
    again = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(data), "--skip-bad",
                                     "--report", str(tmp_path / "rep")])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_threshold_with_classical_is_refused(shapes_dir, tmp_path):
    r = CliRunner().invoke(cli, ["evaluate", "--model", "classical", "--data", str(shapes_dir), "--threshold", "0.3"])
    assert r.exit_code == 2 and "no probability threshold" in r.output


def test_predict_refuses_colliding_outputs(tmp_path, shapes_dir):
    import shutil

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(shapes_dir / "shapes" / "000000.png", inputs / "a.png")
    shutil.copy(shapes_dir / "shapes" / "000001.png", inputs / "a_overlay.png")
    r = CliRunner().invoke(cli, ["predict", "--model", "classical", str(inputs), "--out", str(tmp_path / "o"),
                                 "--overlay"])
    assert r.exit_code == 2 and "would both be written" in r.output
    # The same file named twice is one input, not a collision.
    r = CliRunner().invoke(cli, ["predict", "--model", "classical", str(inputs / "a.png"), str(inputs / "a.png"),
                                 "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
