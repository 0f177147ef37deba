"""SkeletonNet part 2 on a tiny folder: volume targets and scores, the three training stages,
`predict` outputs (parsed as PLY / OBJ), SavedModel export in a fresh process and saved_model_cli."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from keras_skel.cli import cli
from keras_skel.config import load_config
from keras_skel.data.volumes import ground_truth_volume, load_volumes_folder, skeletal_volume, write_volumes_dataset
from keras_skel.data.volumes_pipeline import volume_dataset
from keras_skel.errors import ConfigError, DataError
from keras_skel.metrics.volumes import quantize_dilate, volume_iou
from keras_skel.skeletal_points import mesh_of, model_outputs, volume_losses
from tests.harness import load_tool, run_python, unknown_ops

pytestmark = pytest.mark.xdist_group("skeletonnet_refinement")  # module fixtures built once (setup.cfg)


@pytest.fixture(scope="module")
def volumes_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes32")
    write_volumes_dataset(root, 6, seed=3, resolution=32, image_size=32, views=2, progress=False)
    return root


@pytest.fixture(scope="module")
def table(volumes_dir, tmp_path_factory):
    """`tools/compare_refinement.py` on tiny settings: a points run, a subvolume and a guided
    refinement on its frozen points (stage refine), a joint fine-tuning of the guided one, and
    their held-out rows. The stage tests below read these runs (no second training)."""
    compare = load_tool("compare_refinement")
    root = tmp_path_factory.mktemp("table")
    small = ["model.params.width=4", "model.params.latent=16", "model.params.mlp_units=[16, 3]",
             "model.params.lines=3", "model.params.squares=3", "model.params.line_samples=5",
             "model.params.square_side=3", "data.points=32", "data.batch_size=2", "data.val_fraction=0.34",
             "train.steps_per_epoch=1"]
    args = ["--out", str(root / "out"), "--data", str(volumes_dir), "--heldout", str(root / "heldout"),
            "--train-count", "6", "--heldout-count", "2", "--size", "32", "--data-resolution", "32", "--views", "2",
            "--resolution", "32", "--points-epochs", "1", "--joint-epochs", "1",
            *[a for s in small for a in ("--set-points", s)],
            *[a for s in [*small, "train.epochs=1", "model.params.refine_width=2"] for a in ("--set", s)]]
    assert compare.main(args) == 0
    return root / "out"


@pytest.fixture(scope="module")
def runs(table):
    """The table's points run, guided refinement (stage refine) and joint fine-tuning."""
    return {key: table / row for key, row in (("points", "points"), ("refine", "guided"), ("joint", "joint"))}


def _val(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())["val"]


def test_comparison_table(table):
    rows = json.loads((table / "comparison.json").read_text())
    assert [r["key"] for r in rows] == ["quantize", "subvolume", "guided", "joint"]
    assert all(r["count"] == 4 and 0 <= r["iou"] <= 1 for r in rows)
    assert rows[0]["iou"] == rows[0]["iou_quantize"] == rows[1]["iou_quantize"]  # same frozen points
    assert "globally guided subvolume synthesis" in (table / "comparison.md").read_text()
    info = json.loads((table / "subvolume" / "model.json").read_text())
    assert info["refinement"] == "subvolume" and info["stage"] == "refine"


def test_iou_and_the_quantize_baseline_by_hand():
    a = np.zeros((8, 8, 8), bool)
    a[2, 2, 1:5] = True
    b = np.zeros_like(a)
    b[2, 2, 3:7] = True
    assert volume_iou(a, b) == pytest.approx(2 / 6)
    assert volume_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    with pytest.raises(ValueError, match="one shape"):
        volume_iou(a, a[:4])
    # One point in voxel (1, 2, 3) of a 4³ grid, dilated by one voxel: the voxel and its 6 neighbours.
    point = (np.array([[1, 2, 3]]) + 0.5) / 4 - 0.5
    volume = quantize_dilate(point, 4)
    assert volume.sum() == 6 and volume[1, 2, 3] == 1 and volume[1, 2, 2] == 1 and volume[1, 3, 3] == 1
    assert volume[3, 2, 3] == 0


def test_targets_are_v_star_and_its_max_pool(volumes_dir):
    _, samples = load_volumes_folder(volumes_dir)
    np.testing.assert_array_equal(ground_truth_volume(samples[0], 32), samples[0]["skeletal_volume"])
    at64 = ground_truth_volume(samples[0], 64)  # another size: made from the points
    np.testing.assert_array_equal(at64, skeletal_volume(samples[0]["skeleton_points"], 64))
    ds = volume_dataset(samples[:2], ["curve", "sheet", "volume", "coarse"], 16, 4, 0, False, 32)
    images, targets = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and targets["curve"].shape == (4, 16, 3)
    volume, coarse = targets["volume"].numpy(), targets["coarse"].numpy()
    np.testing.assert_array_equal(volume[0, ..., 0], samples[0]["skeletal_volume"])  # views in order
    np.testing.assert_array_equal(volume[2, ..., 0], samples[1]["skeletal_volume"])
    pooled = volume[..., 0].reshape(4, 8, 4, 8, 4, 8, 4).max(axis=(2, 4, 6))
    np.testing.assert_array_equal(coarse[..., 0], pooled)


def test_stage_losses():
    refine = load_config("skeletonnet_refine_tiny", ["model.params.stage=refine"])
    losses, weights = volume_losses(refine)
    assert sorted(losses) == ["coarse", "volume"]  # the frozen point generator has no loss
    joint = load_config("skeletonnet_refine_tiny", ["loss.params.beta=0.5"])
    losses, weights = volume_losses(joint)
    assert sorted(losses) == ["coarse", "curve", "sheet", "volume"]
    assert weights == {"curve": 1.0, "sheet": 1.0, "volume": 0.5, "coarse": 0.5}
    assert model_outputs(load_config("skeletonnet_refine_tiny", ["model.params.refinement=subvolume"])) == \
        ["curve", "sheet", "volume"]
    with pytest.raises(ConfigError, match="alpha and beta"):
        volume_losses(load_config("skeletonnet_refine_tiny", ["loss.params.gamma=1"]))


def test_stages_train_what_they_should(runs):
    import keras

    import keras_skel.layers  # noqa: F401
    import keras_skel.models.skeletonnet  # noqa: F401

    points = keras.saving.load_model(runs["points"] / "best.keras", compile=False)
    refine = keras.saving.load_model(runs["refine"] / "best.keras", compile=False)
    joint = keras.saving.load_model(runs["joint"] / "best.keras", compile=False)
    for name in ("latent", "curve_mlp", "sheet_mlp"):  # frozen in stage refine, trained jointly
        for a, b in zip(points.get_layer(name).get_weights(), refine.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(refine.get_layer("curve_mlp").get_weights(),
                                                         joint.get_layer("curve_mlp").get_weights()))
    info = json.loads((runs["refine"] / "model.json").read_text())
    assert info["refinement"] == "guided" and info["stage"] == "refine" and info["resolution"] == 32
    assert info["point_labels"] == [[0, 15], [1, 27]] and 0.1 <= info["threshold"] <= 0.9
    val = _val(runs["refine"])
    assert 0 <= val["iou"] <= 1 and 0 <= val["iou_quantize"] <= 1 and val["count"] == 4
    assert val["iou"] == max(val["iou_by_threshold"].values())
    assert val["cd"] == pytest.approx(_val(runs["points"])["cd"], rel=1e-5)  # same frozen points


def _parse_ply(path):
    lines = path.read_text().splitlines()
    assert lines[:2] == ["ply", "format ascii 1.0"]
    end = lines.index("end_header")
    count = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    properties = [line.split()[-1] for line in lines[:end] if line.startswith("property")]
    assert properties[:4] == ["x", "y", "z", "label"]
    rows = [line.split() for line in lines[end + 1:]]
    assert len(rows) == count and all(len(r) == len(properties) for r in rows)
    return np.array([[float(v) for v in r[:3]] for r in rows]), np.array([int(r[3]) for r in rows])


def _parse_obj(path):
    vertices, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            vertices.append([float(v) for v in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(v) for v in line.split()[1:]])
        else:
            assert line.startswith("#") or not line.strip(), line
    return np.array(vertices).reshape(-1, 3), np.array(faces, int).reshape(-1, 3)


def test_marching_cubes_mesh_is_closed():
    volume = np.zeros((8, 8, 8), np.float32)
    volume[2:5, 3, 3:6] = 1.0
    vertices, faces = mesh_of(volume, 0.5)
    assert len(faces) and np.abs(vertices).max() <= 0.5
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # every edge between two triangles: a closed surface
    assert mesh_of(np.zeros((4, 4, 4)), 0.5)[1].shape == (0, 3)


def test_predict_writes_points_volume_mesh_and_picture(runs, volumes_dir, tmp_path):
    image = tmp_path / "chair.png"
    shutil.copy(volumes_dir / "images" / "000000_0.png", image)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["predict", "--model", str(runs["joint"]), str(image), "--out", str(out)])
    assert result.exit_code == 0, result.output
    points, labels = _parse_ply(out / "chair_points.ply")
    assert points.shape == (42, 3) and np.abs(points).max() <= 0.5 and set(labels) == {0, 1}
    volume = np.load(out / "chair_volume.npy")
    assert volume.shape == (32, 32, 32) and volume.dtype == np.float32
    vertices, faces = _parse_obj(out / "chair_mesh.obj")
    if len(faces):
        assert faces.min() >= 1 and faces.max() <= len(vertices)
    assert (out / "chair_points.png").stat().st_size > 1000
    again = CliRunner().invoke(cli, ["predict", "--model", str(runs["joint"]), str(image), "--out", str(out)])
    assert again.exit_code != 0 and "exists already" in again.output
    flags = CliRunner().invoke(cli, ["predict", "--model", str(runs["joint"]), str(image), "--out",
                                     str(tmp_path / "o2"), "--tta"])
    assert flags.exit_code != 0 and "--tta" in flags.output
    # A points-only model writes the quantize-and-dilate volume at its data's resolution.
    result = CliRunner().invoke(cli, ["predict", "--model", str(runs["points"]), str(image), "--out",
                                      str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    quantized = np.load(tmp_path / "p" / "chair_volume.npy")
    assert quantized.shape == (32, 32, 32) and set(np.unique(quantized)) <= {0.0, 1.0}


def test_export_fresh_process_and_saved_model_cli(runs, volumes_dir, tmp_path):
    from keras_skel.export.saved_model import export_run
    from keras_skel.skeletal_points import load_points_predictor

    result = export_run(runs["joint"], "sk_tiny", root=tmp_path / "models", eval_dirs=[volumes_dir])
    card = result.card
    assert card["task"] == "volumes" and card["refinement"] == "guided" and card["threshold"] is not None
    assert 0 <= card["scores"][volumes_dir.name]["iou"] <= 1
    assert not unknown_ops(result.saved_model)[0]
    image = load_volumes_folder(volumes_dir)[1][0]["images"][0]
    np.save(tmp_path / "image.npy", image[None])
    keras_out = load_points_predictor(runs["joint"]).predict(image)
    code = f"""
        import sys, json, numpy as np
        sys.modules["keras"] = None; sys.modules["keras_skel"] = None  # plain TensorFlow only
        import tensorflow as tf
        fn = tf.saved_model.load({str(result.saved_model)!r}).signatures["serving_default"]
        out = fn(images=tf.constant(np.load({str(tmp_path / "image.npy")!r})))
        np.savez({str(tmp_path / "fresh.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
    """
    done = run_python(code, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = np.load(tmp_path / "fresh.npz")
    np.testing.assert_allclose(fresh["points"][0], keras_out["points"], atol=1e-5)
    np.testing.assert_allclose(fresh["volume"][0], keras_out["volume"], atol=1e-5)
    assert fresh["point_labels"].dtype == np.int32 and fresh["volume_mask"].dtype == np.uint8
    cli_bin = shutil.which("saved_model_cli") or str(__import__("pathlib").Path(sys.executable).parent /
                                                     "saved_model_cli")
    run = subprocess.run([cli_bin, "run", "--dir", str(result.saved_model), "--tag_set", "serve", "--signature_def",
                          "serving_default", "--inputs", f"images={tmp_path / 'image.npy'}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "volume_mask" in run.stdout and "point_labels" in run.stdout
    with pytest.raises(ConfigError, match="SavedModels only"):
        export_run(runs["joint"], "sk_tiny", root=tmp_path / "models", tflite=True)
    scored = CliRunner().invoke(cli, ["evaluate", "--model", str(result.saved_model), "--data", str(volumes_dir)])
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.output.strip().splitlines()[-1])
    assert scores == pytest.approx(card["scores"][volumes_dir.name])  # the card's scores, recomputed


def test_predictor_refuses_other_models_and_bad_images(runs):
    from keras_skel.skeletal_points import load_points_predictor

    predictor = load_points_predictor(runs["joint"])
    with pytest.raises(DataError, match="RGB images"):
        predictor.predict(np.zeros((32, 32), np.float32))
    wide = predictor.predict(np.ones((32, 48, 3), np.uint8) * 255)  # padded to a square, not refused
    assert wide["points"].shape == (42, 3)
