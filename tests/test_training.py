import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_skel.config import load_config
from keras_skel.errors import ConfigError
from keras_skel.training import resolve_precision, train


def test_run_dir_holds_everything(tiny_run):
    run = tiny_run.run_dir
    for name in ("config.yaml", "best.keras", "model.json", "metrics.json", "history.csv"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("*tfevents*"))
    info = json.loads((run / "model.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert info["threshold"] == metrics["threshold"] == tiny_run.threshold
    assert info["threshold"] in load_config("unet_tiny").eval.thresholds
    assert info["stride"] == 8 and info["task"] == "shapes" and info["command"] == "pytest"
    best = max(metrics["threshold_table"], key=lambda r: r["f1"])
    assert best["f1"] == pytest.approx(metrics["val"]["exact"]["f1"])
    assert 0.0 <= tiny_run.val_exact_f1 <= tiny_run.val_tolerant_f1 <= 1.0
    assert not (run / "backup").exists()  # a finished run leaves no backup


def test_finished_run_is_not_overwritten(tiny_run):
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(load_config("unet_tiny"), tiny_run.run_dir, verbose=0)


def test_interrupted_run_with_other_config_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    import yaml

    from keras_skel.config import config_to_dict

    (run / "config.yaml").write_text(yaml.safe_dump(config_to_dict(load_config("unet_tiny", ["seed=5"]))))
    (run / "backup").mkdir()
    with pytest.raises(ConfigError, match="different config"):
        train(load_config("unet_tiny"), run, verbose=0)


def test_a_failed_start_does_not_block_the_run_dir(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="data.train_dir"):
        train(load_config("unet_tiny", ["data.source=folder"]), run, verbose=0)
    # Nothing was trained: the corrected command starts fresh in the same folder.
    with pytest.raises(ConfigError, match="endless stream"):
        train(load_config("unet_tiny", ["train.steps_per_epoch=null"]), run, verbose=0)


def test_folder_source_and_bfloat16(tmp_path, shapes_dir):
    cfg = load_config("unet_tiny", ["data.source=folder", f"data.train_dir={shapes_dir}", "data.val_fraction=0.25",
                                    "train.epochs=1", "train.steps_per_epoch=null", "train.precision=mixed_bfloat16"])
    result = train(cfg, tmp_path / "run", verbose=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_count"] == 3 and metrics["precision_policy"] == "mixed_bfloat16"
    assert result.epochs == 1
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_training_and_validation_steps_are_traced_once(tmp_path, shapes_dir, monkeypatch):
    """Under the default strategy Keras creates the optimizer's slots and the loss trackers while
    it first traces the step, and tf.function traces a step that creates variables a second time
    (the step graph built twice per run). `build_before_fit` creates them first: one trace each."""
    import keras

    traces = {"train": 0, "test": 0}
    train_step, test_step = keras.Model.train_step, keras.Model.test_step

    def counted(kind, step):
        def wrapper(self, data):
            traces[kind] += 1  # runs only while tracing: the step is a tf.function
            return step(self, data)
        return wrapper

    monkeypatch.setattr(keras.Model, "train_step", counted("train", train_step))
    monkeypatch.setattr(keras.Model, "test_step", counted("test", test_step))
    cfg = load_config("unet_tiny", ["data.source=folder", f"data.train_dir={shapes_dir}", "data.val_fraction=0.25",
                                    "train.epochs=2", "train.steps_per_epoch=2"])
    train(cfg, tmp_path / "run", verbose=0)
    assert traces == {"train": 1, "test": 1}


def test_resolve_precision():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")


def _train_cmd(run_dir, *extra):
    return [sys.executable, "-m", "keras_skel.cli", "train", "unet_tiny", "--out", str(run_dir),
            "--set", "data.val_count=2", *extra]


@pytest.mark.slow
def test_killed_run_resumes_from_backup(tmp_path):
    run = tmp_path / "run"
    epochs = 16  # killed after 3: a margin of 13 epochs (about a second each) for the kill to land
    args = ["--set", f"train.epochs={epochs}", "--set", "train.steps_per_epoch=3", "--set",
            "train.backup_every_steps=3"]
    proc = subprocess.Popen(_train_cmd(run, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            rows = list(csv.DictReader(open(run / "history.csv"))) if (run / "history.csv").exists() else []
            if len(rows) >= 3 and (run / "backup").exists():
                break
            time.sleep(0.5)
        else:
            pytest.fail("training did not reach 3 epochs")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = len(list(csv.DictReader(open(run / "history.csv"))))
    assert not (run / "metrics.json").exists()
    out = subprocess.run(_train_cmd(run, *args), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-2000:]
    logged = [int(r["epoch"]) for r in csv.DictReader(open(run / "history.csv"))]
    # The resumed session starts where the backup left off, not at epoch 0.
    assert logged[done_before] >= done_before - 1 and logged[-1] == epochs - 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_this_session"] < epochs


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = subprocess.run(_train_cmd(tmp_path / "run", "--set", "train.strategy=mirrored", "--set",
                                    "train.cpu_devices=2",
                                    "--set", "train.epochs=1"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["replicas"] == 2


def test_foreign_folder_is_not_used_as_run_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a keras-skel run directory"):
        train(load_config("unet_tiny"), tmp_path, verbose=0)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_sigint_stops_and_finishes_the_run(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(run, "--set", "train.epochs=200", "--set", "train.steps_per_epoch=3"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "history.csv").exists():
        time.sleep(0.5)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-3000:]
    assert "stopping after this batch" in output
    metrics = json.loads((run / "metrics.json").read_text())
    assert 1 <= metrics["epochs_this_session"] < 200
    assert (run / "model.json").is_file() and not (run / "backup").exists()


def test_init_from_copies_weights(tiny_run):
    import keras
    import numpy as np

    from keras_skel.registry import MODELS
    from keras_skel.training import init_weights_from

    params = load_config("unet_tiny").model.params
    model = MODELS.build("unet", input_channels=1, **params)
    copied = init_weights_from(model, str(tiny_run.run_dir))
    source = keras.saving.load_model(tiny_run.run_dir / "best.keras", compile=False)
    assert copied == sum(1 for layer in model.layers if layer.weights)
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = MODELS.build("unet", input_channels=1, base_filters=4, depth=2, decoder_convs=1)
    with pytest.raises(ConfigError, match="no layer .* matches"):
        init_weights_from(other, str(tiny_run.run_dir / "best.keras"))


def test_init_from_an_ensemble_takes_the_member_it_is_told(tmp_path):
    """An ensemble (`keras-skel ensemble`, like the shipped denoiser_shapes) has no top-level
    layer to match: without a member it is refused naming the fix, with one that member's
    weights are copied; a member for a single model or out of range is refused."""
    import keras
    import numpy as np

    from keras_skel.ensemble import build_ensemble
    from keras_skel.registry import MODELS
    from keras_skel.training import init_weights_from

    params = load_config("unet_tiny").model.params
    members = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        members.append(MODELS.build("unet", input_channels=1, **params))
    path = tmp_path / "ens.keras"
    build_ensemble(members).save(path)
    model = MODELS.build("unet", input_channels=1, **params)
    with pytest.raises(ConfigError, match=r"ensemble of 2 models \(member_1, member_2\).*train.init_member=K"):
        init_weights_from(model, str(path))
    with pytest.raises(ConfigError, match="expected 1..2"):
        init_weights_from(model, str(path), member=3)
    assert init_weights_from(model, str(path), member=2) == sum(1 for layer in model.layers if layer.weights)
    for a, b, c in zip(model.get_weights(), members[1].get_weights(), members[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(b, c) for b, c in zip(members[1].get_weights(), members[0].get_weights()))
    members[0].save(tmp_path / "single.keras")
    with pytest.raises(ConfigError, match="is a single model, not an ensemble"):
        init_weights_from(model, str(tmp_path / "single.keras"), member=1)


def test_init_from_runs_through_train(tiny_run, tmp_path):
    from click.testing import CliRunner

    from keras_skel.cli import cli

    r = CliRunner().invoke(cli, ["train", "unet_tiny", "--init-from", str(tiny_run.run_dir), "--out",
                                 str(tmp_path / "ft"), "--set", "train.epochs=1", "--set", "train.steps_per_epoch=1",
                                 "--set", "data.val_count=2"])
    assert r.exit_code == 0, r.output
    import yaml

    assert yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())["train"]["init_from"] == str(tiny_run.run_dir)
    r = CliRunner().invoke(cli, ["train", "unet_tiny", "--init-from", "no_such_model", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no Keras model found" in r.output


def test_shape_target_run_records_its_post_processing(tmp_path):
    from keras_skel.inference import load

    overrides = ["data.target=shape", "model.params.input_skip=true", "eval.prune_length=10",
                 "train.optimizer=adam", "train.learning_rate=0.001", "train.epochs=1"]
    train(load_config("canet_tiny", overrides), tmp_path / "run", verbose=0)
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["target"] == "shape" and info["prune_length"] == 10
    assert load(tmp_path / "run").prune_length == 10


def test_folder_shape_target_reads_clean_shapes(tmp_path):
    import numpy as np

    from keras_skel.data.datasets import folder
    from keras_skel.data.synthetic import make_shape_sample, write_shapes_dataset
    from keras_skel.errors import DataError

    write_shapes_dataset(tmp_path / "ds", 4, (64, 64), seed=1, noise=2.0, progress=False, with_clean=True)
    splits = folder(str(tmp_path / "ds"), seed=0, val_fraction=0.25, target="shape")
    (sample_id, shape, _), = splits.val
    clean = make_shape_sample(1, int(sample_id), (64, 64), 0.0)[0]
    np.testing.assert_array_equal(splits.val_targets[0], clean.astype(bool))
    _, target = next(iter(splits.train))
    assert set(np.unique(target.numpy())) <= {0.0, 1.0}
    (tmp_path / "ds" / "clean" / "000002.png").unlink()
    with pytest.raises(DataError, match="000002"):
        folder(str(tmp_path / "ds"), seed=0, target="shape")


def test_input_skip_scale_is_calibrated_on_validation(tmp_path):
    import keras

    import keras_skel.layers  # noqa: F401

    overrides = ["data.target=shape", "model.params.input_skip=true", "eval.prune_length=10",
                 "train.optimizer=adam", "train.learning_rate=0.001", "train.epochs=1",
                 "eval.skip_scale_offsets=[2.0,8.0]"]
    train(load_config("canet_tiny", overrides), tmp_path / "run", verbose=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    table = metrics["input_skip_calibration"]
    assert [row["offset"] for row in table] == [0.0, 2.0, 8.0]
    best = max(table, key=lambda row: (row["f1"], -abs(row["offset"])))
    model = keras.saving.load_model(tmp_path / "run" / "best.keras", compile=False)
    assert float(model.get_layer("input_skip").scale.numpy()) == pytest.approx(best["scale"], abs=1e-4)
    assert metrics["threshold"] == best["threshold"]
    # The validation score recorded is the calibrated model's.
    assert metrics["val"]["exact"]["f1"] == pytest.approx(best["f1"])


def test_reselect_recalibrates_a_finished_run(tmp_path):
    from click.testing import CliRunner

    from keras_skel.cli import cli
    from keras_skel.training import reselect

    overrides = ["data.target=shape", "model.params.input_skip=true", "eval.prune_length=10",
                 "train.optimizer=adam", "train.learning_rate=0.001", "train.epochs=1"]
    first = train(load_config("canet_tiny", overrides), tmp_path / "run", verbose=0, command="keras-skel train x")
    before = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert before["input_skip_calibration"] is None
    result = reselect(tmp_path / "run", ["eval.skip_scale_offsets=[3.0]"], command="keras-skel train x --reselect")
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [row["offset"] for row in after["input_skip_calibration"]] == [0.0, 3.0]
    assert after["history"] == before["history"] and after["train_seconds"] == before["train_seconds"]
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["command"] == "keras-skel train x; keras-skel train x --reselect"
    assert result.val_exact_f1 >= first.val_exact_f1 - 1e-9  # offset 0 is among the candidates
    with pytest.raises(ConfigError, match="only eval"):
        reselect(tmp_path / "run", ["train.epochs=3"])
    r = CliRunner().invoke(cli, ["train", "canet_tiny", "--out", str(tmp_path / "run"), "--reselect",
                                 "--set", "eval.skip_scale_offsets=[1.0]"])
    assert r.exit_code == 0, r.output


def test_threshold_chosen_with_tta_is_recorded_loaded_and_exported(tmp_path):
    """`eval.tta`: the threshold search runs the model with D4 TTA, the record says so, and
    loading or exporting the run runs TTA without being asked (the SavedModel = the Keras run)."""
    import numpy as np

    from keras_skel.data.synthetic import make_shape_sample
    from keras_skel.export import export_run, read_model_card
    from keras_skel.inference import load
    from keras_skel.training import reselect

    train(load_config("unet_tiny", ["train.epochs=1"]), tmp_path / "run", verbose=0)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["tta"] is False
    assert not load(tmp_path / "run").tta
    result = reselect(tmp_path / "run", ["eval.tta=true"])
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["tta"] is True and info["threshold"] == result.threshold
    model = load(tmp_path / "run")
    assert model.tta and model.name.endswith("+TTA") and model.threshold == result.threshold
    exported = export_run(tmp_path / "run", "tta_tiny", root=tmp_path / "models", command="pytest")
    assert read_model_card(exported.saved_model)["tta"] is True
    shape = make_shape_sample(3, 0, (64, 64), 2.0)[0]
    np.testing.assert_allclose(load(exported.saved_model).predict(shape).probability,
                               model.predict(shape).probability, atol=1e-5)
    with pytest.raises(ConfigError, match="eval.tta"):
        load_config("thin_tiny", ["eval.tta=true"])
