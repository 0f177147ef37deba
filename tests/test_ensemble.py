"""Ensembles: `train --folds K`, the averaged model, loading and exporting a folds directory."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_skel.cli import cli
from keras_skel.config import load_config
from keras_skel.ensemble import build_ensemble, combine_runs, ensemble_info, is_ensemble_dir, train_folds
from keras_skel.errors import ConfigError, ModelNotFoundError
from keras_skel.inference import KerasSkeletonizer, load
from keras_skel.data.synthetic import make_shape_sample, write_shapes_dataset
from keras_skel.metrics import SkeletonF1Accumulator
from keras_skel.models.canet import build_canet, probability_model

pytestmark = pytest.mark.xdist_group("ensemble")  # module fixtures built once (setup.cfg)

TINY = dict(base_filters=4, depth=2, blocks_per_stage=1, attention_stages=(2,))


def test_ensemble_output_is_the_mean_of_its_members():
    members = [build_canet(**TINY, name=f"m{seed}") for seed in range(3)]
    ensemble = build_ensemble(members)
    x = (np.random.default_rng(0).random((2, 16, 16, 1)) > 0.5).astype("float32")
    expected = np.mean([probability_model(m).predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="at least one"):
        build_ensemble([])


def test_cli_train_folds_resume_load_and_describe(tmp_path):
    r = CliRunner().invoke(cli, ["train", "canet_tiny", "--folds", "2", "--set", "train.epochs=1",
                                 "--set", "train.steps_per_epoch=2", "--out", str(tmp_path / "ens")])
    assert r.exit_code == 0, r.output
    assert "fold 2:" in r.output and is_ensemble_dir(tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").iterdir() if p.is_dir()) == ["fold_1", "fold_2"]
    cfg = load_config("canet_tiny", ["train.epochs=1", "train.steps_per_epoch=2"])  # what the command trained
    seeds = [json.loads((tmp_path / "ens" / f"fold_{k}" / "config.yaml").read_text().split("seed: ")[1].split()[0])
             for k in (1, 2)]
    assert seeds == [0, 1]  # members differ in seed: split, samples and initialization
    info = ensemble_info(tmp_path / "ens")
    assert info["stride"] == 8 and len(info["members"]) == 2  # canet_tiny: depth 3
    assert "ensemble of 2" in json.dumps(info["model"])
    model = load(tmp_path / "ens")
    assert isinstance(model, KerasSkeletonizer) and model.skeletonize(np.ones((20, 28), bool)).shape == (20, 28)
    # Synthetic validation samples are held out from every member: the ensemble's own threshold is
    # chosen on them pooled (8 per member), and is the best row of its table, re-measured here.
    record = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert info["threshold_source"] == "pooled validation" and record["threshold_samples"] == 16
    assert info["threshold"] == record["threshold"] in cfg.eval.thresholds and model.threshold == info["threshold"]
    best = max(record["threshold_table"], key=lambda row: (row["f1"], -row["threshold"]))
    assert best["threshold"] == info["threshold"]
    acc = SkeletonF1Accumulator(0.0)
    for seed in (1, 3):  # the validation seeds of members 1 and 2 (data.datasets._val_seed)
        for index in range(8):
            shape, skeleton = make_shape_sample(seed, index, (64, 64), noise=1.0)
            acc.update(model.skeletonize(shape), skeleton)
    assert acc.result()["f1"] == pytest.approx(best["f1"], abs=1e-9)
    # Finished members are kept: a second call trains nothing.
    before = (tmp_path / "ens" / "fold_1" / "best.keras").stat().st_mtime
    train_folds(cfg, tmp_path / "ens", 2, verbose=0)
    assert (tmp_path / "ens" / "fold_1" / "best.keras").stat().st_mtime == before
    # A missing member is reported, not half-loaded.
    (tmp_path / "ens" / "fold_2" / "best.keras").unlink()
    with pytest.raises(ModelNotFoundError, match="fold_2"):
        load(tmp_path / "ens")


def test_folder_ensemble_keeps_the_mean_of_member_thresholds(tmp_path):
    """A folder dataset's validation split of one member is the others' training data: no pooled
    choice there, the members' thresholds are averaged."""
    write_shapes_dataset(tmp_path / "ds", 12, (64, 64), seed=2, noise=1.0, progress=False)
    cfg = load_config("canet_tiny", ["train.epochs=1", "train.steps_per_epoch=1", "data.source=folder",
                                     f"data.train_dir={tmp_path / 'ds'}", "data.val_fraction=0.25"])
    results = train_folds(cfg, tmp_path / "ens", 2, verbose=0)
    info = ensemble_info(tmp_path / "ens")
    assert info["threshold_source"] == "mean of the members' thresholds"
    assert info["threshold"] == pytest.approx(np.mean([r.threshold for r in results]), abs=1e-4)


def test_folds_refuses_one_member_and_single_run_dirs(tmp_path, tiny_run):
    cfg = load_config("canet_tiny")
    with pytest.raises(ConfigError, match="at least 2"):
        train_folds(cfg, tmp_path / "x", 1)
    with pytest.raises(ConfigError, match="single training run"):
        train_folds(cfg, tiny_run.run_dir, 2)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two unet_tiny runs trained apart (different seeds and noise levels)."""
    from keras_skel.training import train

    root = tmp_path_factory.mktemp("apart")
    for name, sets in (("a", ["seed=0"]), ("b", ["seed=5", "data.noise=2.0"])):
        train(load_config("unet_tiny", ["train.epochs=1", "train.steps_per_epoch=2", *sets]), root / name,
              verbose=0, command="pytest")
    return root / "a", root / "b"


def test_combined_runs_average_and_choose_their_threshold_on_a_folder(tmp_path, two_runs):
    import keras

    write_shapes_dataset(tmp_path / "sel", 6, (64, 64), seed=9, noise=1.0, progress=False)
    out = tmp_path / "deep" / "ens"
    record = combine_runs(two_runs, out, choose_on=tmp_path / "sel", thresholds=(0.3, 0.5, 0.7), command="pytest")
    # Members are named relative to the ensemble folder: run folders and ensemble move together.
    assert all(not m.startswith("/") for m in record["members"])
    assert json.loads((out / "ensemble.json").read_text()) == record
    info = ensemble_info(out)
    assert info["threshold_source"].startswith("chosen on") and record["threshold_samples"] == 6
    assert info["command"] == "pytest; pytest; pytest"  # each member's training command, then the combining one
    model = load(out)
    assert model.threshold == record["threshold"] == max(
        record["threshold_table"], key=lambda row: (row["f1"], -row["threshold"]))["threshold"]
    x = np.random.default_rng(1).random((40, 48)) > 0.5
    members = [KerasSkeletonizer(keras.saving.load_model(run / "best.keras", compile=False))
               for run in two_runs]
    np.testing.assert_allclose(model.probability(x), np.mean([m.probability(x) for m in members], axis=0),
                               atol=1e-6)
    # The chosen row's F1, re-measured with the loaded ensemble on the folder.
    acc = SkeletonF1Accumulator(0.0)
    for k in range(6):
        shape, skeleton = make_shape_sample(9, k, (64, 64), noise=1.0)
        acc.update(model.skeletonize(shape), skeleton)
    row = next(r for r in record["threshold_table"] if r["threshold"] == record["threshold"])
    assert acc.result()["f1"] == pytest.approx(row["f1"], abs=1e-9)


def test_combined_runs_without_a_folder_take_the_mean_threshold(tmp_path, two_runs):
    record = combine_runs(two_runs, tmp_path / "ens")
    info = ensemble_info(tmp_path / "ens")
    assert info["threshold_source"] == "mean of the members' thresholds" and "threshold_table" not in record
    assert info["threshold"] == pytest.approx(np.mean(record["thresholds"]), abs=1e-4)


def test_combine_runs_refusals_leave_nothing_behind(tmp_path, two_runs):
    a, b = two_runs
    with pytest.raises(ConfigError, match="at least 2"):
        combine_runs([a], tmp_path / "x")
    with pytest.raises(ConfigError, match="named twice"):
        combine_runs([a, a], tmp_path / "x")
    with pytest.raises(ModelNotFoundError, match="not a finished training run"):
        combine_runs([a, tmp_path / "nothing"], tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an empty folder"):
        combine_runs([a, b], tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]
    # Members that post-process differently cannot share one averaged probability.
    import shutil

    other = tmp_path / "pruned"
    shutil.copytree(b, other)
    info = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**info, "prune_length": 10}))
    with pytest.raises(ConfigError, match="disagree on their post-processing"):
        combine_runs([a, other], tmp_path / "y")
    assert not (tmp_path / "y").exists()  # the folder it made is removed again


def test_cli_ensemble(tmp_path, two_runs):
    out = tmp_path / "ens"
    r = CliRunner().invoke(cli, ["ensemble", *map(str, two_runs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "ensemble of 2" in r.output and "mean of the members" in r.output and is_ensemble_dir(out)
    r = CliRunner().invoke(cli, ["ensemble", *map(str, two_runs), "--out", str(tmp_path / "e2"), "--tta"])
    assert r.exit_code == 2 and "--choose-on" in r.output
    r = CliRunner().invoke(cli, ["ensemble", *map(str, two_runs), "--out", str(out)])
    assert r.exit_code == 2 and "not an empty folder" in r.output
