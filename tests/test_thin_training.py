"""Training, resuming and evaluating thin-structure models end to end (tiny, seconds)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_skel.cli import cli
from keras_skel.config import load_config
from keras_skel.errors import ConfigError
from keras_skel.training import train

pytestmark = pytest.mark.xdist_group("thin_training")  # module fixtures built once (setup.cfg)


@pytest.fixture(scope="module")
def thin_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("thin") / "run"
    return train(load_config("thin_tiny"), run_dir, verbose=0, command="pytest")


def test_thin_run_records_scores_and_rates(thin_run):
    run = thin_run.run_dir
    info = json.loads((run / "model.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert info["task"] == "thin" and info["classes"] == 2 and info["ndim"] == 2 and info["stride"] == 4
    val = metrics["val"]
    assert thin_run.val_scores == val and thin_run.val_exact_f1 is None
    for key in ("dice", "cldice"):
        assert 0.0 <= val[key] <= 1.0
    assert val["betti0"] >= 0 and val["betti1"] >= 0 and len(val["per_class"]) == 2
    assert metrics["samples_per_second_pipeline"] > 0 and metrics["step_seconds"] > 0


def test_thin_evaluate_cli_scores_a_thin_folder(thin_run, tmp_path):
    runner = CliRunner()
    data = tmp_path / "thin"
    r = runner.invoke(cli, ["data", "synth", "--task", "thin", "--classes", "2", "--count", "3", "--size", "32",
                            "--out", str(data), "--seed", "4"])
    assert r.exit_code == 0, r.output
    assert len(list((data / "images").glob("*.png"))) == 3
    r = runner.invoke(cli, ["evaluate", "--model", str(thin_run.run_dir), "--data", str(data),
                            "--report", str(tmp_path / "report")])
    assert r.exit_code == 0, r.output
    assert "clDice" in r.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["count"] == 3 and len(report["per_image"]) == 3
    # A folder with another number of classes is refused with a message naming both.
    other = tmp_path / "binary"
    runner.invoke(cli, ["data", "synth", "--task", "thin", "--count", "2", "--size", "32", "--out", str(other)])
    r = runner.invoke(cli, ["evaluate", "--model", str(thin_run.run_dir), "--data", str(other)])
    assert r.exit_code != 0 and "1 class" in r.output and "segments 2" in r.output


@pytest.mark.parametrize("loss", ["dice_ce", "cldice"])
def test_3d_binary_training_with_deep_supervision(loss, tmp_path):
    overrides = ["data.image_size=[16,16,16]", "data.classes=1", "model.name=unet3d",
                 "model.params={base_filters: 4, depth: 2, deep_supervision: true}", f"loss.name={loss}",
                 "loss.params={}" if loss == "dice_ce" else "loss.params={iterations: 2}",
                 "train.epochs=1", "train.steps_per_epoch=2"]
    result = train(load_config("thin_tiny", overrides), tmp_path / "run", verbose=0)
    info = json.loads((result.run_dir / "model.json").read_text())
    assert info["ndim"] == 3 and info["classes"] == 1
    assert set(result.val_scores) >= {"dice", "cldice", "betti0", "betti1"}


def test_thin_folder_source_with_cached_tubes(tmp_path):
    runner = CliRunner()
    data = tmp_path / "thin"
    assert runner.invoke(cli, ["data", "synth", "--task", "thin", "--classes", "2", "--count", "6", "--size", "40",
                               "--out", str(data)]).exit_code == 0
    cfg = load_config("thin_tiny", ["data.source=thin_folder", f"data.train_dir={data}", "data.val_fraction=0.34"])
    result = train(cfg, tmp_path / "run", verbose=0)
    assert json.loads((result.run_dir / "metrics.json").read_text())["val_count"] == 2
    with pytest.raises(ConfigError, match="data.classes=2"):
        train(load_config("thin_tiny", ["data.source=thin_folder", f"data.train_dir={data}", "data.classes=3"]),
              tmp_path / "run3", verbose=0)


@pytest.mark.parametrize("overrides,match", [
    (["data.image_size=[30,30]"], "multiples of the model's stride"),
    (["model.name=unet3d", "model.params={base_filters: 4, depth: 2}"], "2-D"),
    (["model.params.output_channels=5"], "output channels"),
    (["data.source=synthetic_shapes"], "task thin needs"),
    (["data.classes=9"], "1..8"),
])
def test_bad_thin_configs_are_clear_errors(overrides, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        train(load_config("thin_tiny", overrides), tmp_path / "run", verbose=0)


def test_loss_comparison_tool_trains_scores_and_reuses_rows(tmp_path, monkeypatch):
    from tests.harness import load_tool

    tool = load_tool("compare_thin_losses")
    args = ["--out", str(tmp_path), "--recipe", "thin_tiny", "--losses", "dice_ce", "skeleton_recall",
            "--count", "3", "--set", "train.epochs=1"]
    assert tool.main(args) == 0
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [r["loss"] for r in rows] == ["dice_ce", "skeleton_recall"]
    assert all(r["count"] == 3 and 0 <= r["dice"] <= 1 for r in rows)
    table = (tmp_path / "comparison.md").read_text()
    assert "| skeleton_recall (thin_tiny_skeleton_recall) |" in table
    # A second call reuses the finished rows (their cached scores) instead of training again.
    monkeypatch.setattr("keras_skel.training.train", lambda *a, **k: pytest.fail("trained again"))
    assert tool.main(args) == 0


def test_thin_predict_cli_writes_label_maps_and_refuses_overwrite(thin_run, tmp_path):
    runner = CliRunner()
    data = tmp_path / "thin"
    assert runner.invoke(cli, ["data", "synth", "--task", "thin", "--classes", "2", "--count", "2", "--size", "40",
                               "--out", str(data)]).exit_code == 0
    out = tmp_path / "pred"
    r = runner.invoke(cli, ["predict", "--model", str(thin_run.run_dir), str(data / "images"), "--out", str(out),
                            "--overlay"])
    assert r.exit_code == 0, r.output
    import cv2

    from keras_skel.segmentation import load_segmenter

    segmenter = load_segmenter(thin_run.run_dir)
    image = cv2.imread(str(data / "images" / "000000.png"), cv2.IMREAD_UNCHANGED).astype("float32") / 255
    written = cv2.imread(str(out / "000000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, segmenter.labels(image))  # any size: 40 is padded to the stride
    assert written.shape == (40, 40) and written.max() <= 2
    assert (out / "000001_overlay.png").is_file()
    r = runner.invoke(cli, ["predict", "--model", str(thin_run.run_dir), str(data / "images"), "--out", str(out)])
    assert r.exit_code != 0 and "exists already" in r.output
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 4, 4), "float32"))
    r = runner.invoke(cli, ["predict", "--model", str(thin_run.run_dir), str(bad), "--out", str(tmp_path / "p2")])
    assert r.exit_code != 0 and "bad.npy" in r.output and "reads images" in r.output


def test_train_cli_prints_segmentation_scores_and_rates(tmp_path):
    r = CliRunner().invoke(cli, ["train", "thin_tiny", "--out", str(tmp_path / "run"), "--set", "train.epochs=1"])
    assert r.exit_code == 0, r.output
    assert "validation Dice" in r.output and "clDice" in r.output
    assert "input pipeline" in r.output and "training step" in r.output
