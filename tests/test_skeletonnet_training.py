"""Task `volumes` (SkeletonNet part 1) end to end on a tiny folder: data, targets, training, record."""

import json

import numpy as np
import pytest

from keras_skel.config import load_config
from keras_skel.data.volumes import CURVE, SHEET, load_volumes_folder, write_volumes_dataset
from keras_skel.data.volumes_pipeline import target_points, volume_pairs
from keras_skel.errors import ConfigError, DataError
from keras_skel.losses.functional import chamfer_distance
from keras_skel.metrics.points import chamfer
from keras_skel.training import train

pytestmark = pytest.mark.xdist_group("skeletonnet_training")  # module fixtures built once (setup.cfg)


@pytest.fixture(scope="module")
def volumes_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    write_volumes_dataset(root, 6, seed=2, resolution=16, image_size=32, views=2, progress=False)
    return root


def test_folder_round_trip(volumes_dir):
    info, samples = load_volumes_folder(volumes_dir)
    assert info["task"] == "volumes" and info["views"] == 2 and len(samples) == 6
    first = samples[0]
    assert first["images"].shape == (2, 32, 32, 3) and first["occupancy"].shape == (16, 16, 16)
    assert set(np.unique(first["skeleton_labels"])) <= {CURVE, SHEET}
    with pytest.raises(DataError, match="refusing to overwrite"):
        write_volumes_dataset(volumes_dir, 1, progress=False)


def test_overwrite_removes_only_its_own_files(tmp_path):
    write_volumes_dataset(tmp_path, 2, resolution=8, image_size=16, views=1, progress=False)
    (tmp_path / "images" / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(ConfigError):  # bad arguments are refused before anything is deleted
        write_volumes_dataset(tmp_path, 1, resolution=4, overwrite=True, progress=False)
    assert len(list((tmp_path / "objects").iterdir())) == 2
    write_volumes_dataset(tmp_path, 1, resolution=8, image_size=16, views=1, overwrite=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["000000_0.png", "holiday.jpg"]


def test_missing_view_is_named(tmp_path):
    write_volumes_dataset(tmp_path, 1, resolution=8, image_size=16, views=2, progress=False)
    (tmp_path / "images" / "000000_1.png").unlink()
    with pytest.raises(DataError, match="000000_1.png is missing"):
        load_volumes_folder(tmp_path)


def test_targets_follow_the_labels(volumes_dir):
    _, samples = load_volumes_folder(volumes_dir)
    sample = samples[0]
    rng = np.random.default_rng(0)
    curve = target_points(sample, "curve", 50, rng)
    assert curve.shape == (50, 3)
    gt_curve = sample["skeleton_points"][sample["skeleton_labels"] == CURVE]
    assert chamfer(curve, gt_curve) < chamfer(curve, sample["skeleton_points"][sample["skeleton_labels"] == SHEET])
    images, targets, owner = volume_pairs(samples[:2], ["points"], 30, seed=1)
    assert images.shape == (4, 32, 32, 3) and targets["points"].shape == (4, 30, 3)
    assert owner.tolist() == [0, 0, 1, 1]


def test_metric_matches_the_loss_math():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-0.5, 0.5, (40, 3)), rng.uniform(-0.5, 0.5, (25, 3))
    assert chamfer(a, b) == pytest.approx(float(chamfer_distance(a[None], b[None], "mean")[0]), rel=1e-6)
    assert chamfer(a, a[::-1]) == 0.0 and chamfer(a, np.zeros((0, 3))) == float("inf")


@pytest.mark.parametrize("decoders", ["both", "pointwise"])
def test_training_run_record(volumes_dir, tmp_path, decoders):
    cfg = load_config("skeletonnet_tiny", [f"data.train_dir={volumes_dir}", f"model.params.decoders={decoders}",
                                           "train.steps_per_epoch=3"])
    result = train(cfg, tmp_path / decoders, verbose=0, command="pytest")
    info = json.loads((result.run_dir / "model.json").read_text())
    assert info["task"] == "volumes" and info["decoders"] == decoders
    val = result.val_scores
    assert val["count"] == 4 and 0 < val["cd"] < 1  # 2 val objects x 2 views
    assert ("cd_curve" in val) == (decoders == "both")
    history = json.loads((result.run_dir / "metrics.json").read_text())["history"]
    assert all(np.isfinite(history["loss"]))


def test_recipe_checks():
    with pytest.raises(ConfigError, match="task volumes goes with data.source volumes_folder"):
        load_config("skeletonnet_tiny", ["data.source=folder"])
    with pytest.raises(ConfigError, match="task volumes goes with"):
        load_config("unet_tiny", ["data.source=volumes_folder"])
