"""Tests of the synthetic shape source (keras_skel.data.synthetic)."""

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize

from keras_skel.data.synthetic import (
    FAMILIES,
    add_boundary_noise,
    family_of,
    make_shape,
    make_shape_sample,
    write_shapes_dataset,
)
from keras_skel.data.targets import skeleton_target
from keras_skel.errors import DataError
from tests.harness import run_python

REPO = Path(__file__).resolve().parents[2]


def _n_parts(mask: np.ndarray) -> int:
    return cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1


def _n_holes(mask: np.ndarray) -> int:
    bg = (mask == 0).astype(np.uint8)
    return cv2.connectedComponents(bg, connectivity=4)[0] - 2  # minus label 0 and the outside


def test_determinism():
    a = make_shape_sample(7, 123, (96, 96), noise=2.0)
    b = make_shape_sample(7, 123, (96, 96), noise=2.0)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == np.uint8 and x.shape == (96, 96)
        np.testing.assert_array_equal(x, y)
    other_index = make_shape_sample(7, 124, (96, 96), noise=2.0)
    other_seed = make_shape_sample(8, 123, (96, 96), noise=2.0)
    assert not np.array_equal(a[0], other_index[0])
    assert not np.array_equal(a[0], other_seed[0])


def test_target_is_skeleton_of_clean_shape_whatever_the_noise():
    for index in range(4):
        clean, target0 = make_shape_sample(1, index, (128, 128), noise=0.0)
        noisy, target2 = make_shape_sample(1, index, (128, 128), noise=2.0)
        np.testing.assert_array_equal(target0, target2)
        np.testing.assert_array_equal(target0, skeleton_target(clean))
        assert not np.array_equal(noisy, clean), "noise > 0 changes the input"
        assert set(np.unique(noisy)) <= {0, 1} and set(np.unique(target0)) <= {0, 1}


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_every_family_appears_in_any_50_consecutive_indices(seed):
    for start in (0, 3, 1000):
        seen = {family_of(seed, i) for i in range(start, start + 50)}
        assert seen == set(FAMILIES)
    # ... and in fact in every run of 2 * len(FAMILIES) - 1.
    run = 2 * len(FAMILIES) - 1
    assert {family_of(seed, i) for i in range(5, 5 + run)} == set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_gives_a_valid_sample(family):
    size = (128, 160)
    for index in range(6):
        clean, target = make_shape_sample(3, index, size, noise=0.0, family=family)
        noisy, _ = make_shape_sample(3, index, size, noise=2.0, family=family)
        area = int(clean.sum())
        assert area >= 0.01 * size[0] * size[1], f"{family}: shape too small"
        # A margin of background all around; bumps never reach the outermost pixels.
        for img, margin in ((clean, 3), (noisy, 1)):
            assert not img[:margin].any() and not img[-margin:].any()
            assert not img[:, :margin].any() and not img[:, -margin:].any()
        # A meaningful, 1-px skeleton inside the shape, one piece per part of the shape.
        assert target.sum() >= 5, f"{family}: skeleton nearly empty"
        np.testing.assert_array_equal(skeletonize(target > 0), target > 0)
        assert not (target.astype(bool) & ~clean.astype(bool)).any()
        assert _n_parts(target) == _n_parts(clean), f"{family}: skeleton split"
        assert _n_parts(clean) <= 4, f"{family}: more than a few parts"


def test_holes_family_has_holes():
    with_holes = [
        _n_holes(make_shape_sample(0, i, (128, 128), 0.0, family="holes")[0]) for i in range(12)
    ]
    assert sum(h > 0 for h in with_holes) >= 10, with_holes


def test_noise_never_changes_topology():
    changed = 0
    for index in range(40):
        clean, _ = make_shape_sample(5, index, (128, 128), noise=0.0)
        noisy, _ = make_shape_sample(5, index, (128, 128), noise=3.0)
        assert _n_parts(noisy) == _n_parts(clean), f"index {index}: parts changed"
        assert _n_holes(noisy) == _n_holes(clean), f"index {index}: holes changed"
        diff = noisy != clean
        changed += bool(diff.any())
        # Bumps and dents stay within the amplitude: no pixel moves more than 3 px.
        dist_out = cv2.distanceTransform(1 - clean, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        dist_in = cv2.distanceTransform(clean, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        assert dist_out[diff & (clean == 0)].max(initial=0) <= 3.5
        assert dist_in[diff & (clean == 1)].max(initial=0) <= 3.5
    assert changed == 40


def test_noise_keeps_thin_strokes_whole():
    shape = np.zeros((64, 96), np.uint8)
    shape[20:23, 10:86] = 1  # a 3-px bar: no room to dent
    shape[30:50, 10:86] = 1  # a thick bar beside it
    rng = np.random.default_rng(0)
    for _ in range(10):
        noisy = add_boundary_noise(rng, shape, 4.0)
        assert noisy[20:23, 10:86].sum(axis=0).min() >= 2, "stroke thinned below 2 px"
        assert _n_parts(noisy) == 2


def test_add_boundary_noise_edge_cases():
    rng = np.random.default_rng(0)
    shape = np.zeros((40, 40), np.uint8)
    np.testing.assert_array_equal(add_boundary_noise(rng, shape, 2.0), shape)
    shape[10:30, 10:30] = 1
    np.testing.assert_array_equal(add_boundary_noise(rng, shape, 0.0), shape)
    with pytest.raises(ValueError, match="2-D"):
        add_boundary_noise(rng, shape[None], 2.0)
    # A precomputed skeleton gives the same result.
    a = add_boundary_noise(np.random.default_rng(3), shape, 2.0)
    b = add_boundary_noise(np.random.default_rng(3), shape, 2.0, skeleton=skeletonize(shape > 0))
    np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="family"):
        make_shape(np.random.default_rng(0), (64, 64), "teapot")
    with pytest.raises(ValueError, match="size"):
        make_shape_sample(0, 0, (16, 64))


def test_generation_speed():
    make_shape_sample(0, 0, (256, 256))  # first call compiles skan's numba code
    start = time.perf_counter()
    for index in range(16):
        make_shape_sample(0, index, (256, 256))
    per_sample = (time.perf_counter() - start) / 16
    assert per_sample < 0.1, f"{per_sample * 1000:.0f} ms per 256x256 sample (target < 30 ms)"


def _read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def test_write_shapes_dataset_layout_and_values(tmp_path):
    out = tmp_path / "ds"
    assert write_shapes_dataset(out, 5, (64, 80), seed=2, noise=1.0, progress=False) == 5
    names = [f"{i:06d}.png" for i in range(5)]
    assert sorted(p.name for p in (out / "shapes").iterdir()) == names
    assert sorted(p.name for p in (out / "skeletons").iterdir()) == names
    for i, name in enumerate(names):
        shape, skeleton = _read_png(out / "shapes" / name), _read_png(out / "skeletons" / name)
        for image in (shape, skeleton):
            assert image.dtype == np.uint8 and image.shape == (64, 80)  # 8-bit grey
            assert set(np.unique(image)) == {0, 255}
        expected = make_shape_sample(2, i, (64, 80), 1.0)
        np.testing.assert_array_equal(shape // 255, expected[0])
        np.testing.assert_array_equal(skeleton // 255, expected[1])


def test_write_shapes_dataset_refuses_to_overwrite(tmp_path):
    write_shapes_dataset(tmp_path, 3, (48, 48), progress=False)
    before = (tmp_path / "shapes" / "000000.png").read_bytes()
    with pytest.raises(DataError, match="overwrite"):
        write_shapes_dataset(tmp_path, 2, (48, 48), seed=9, progress=False)
    assert (tmp_path / "shapes" / "000000.png").read_bytes() == before
    assert len(list((tmp_path / "shapes").iterdir())) == 3

    (tmp_path / "shapes" / "notes.txt").write_text("mine")
    assert write_shapes_dataset(tmp_path, 2, (48, 48), seed=9, progress=False, overwrite=True) == 2
    assert sorted(p.name for p in (tmp_path / "shapes").iterdir()) == [
        "000000.png",
        "000001.png",
        "notes.txt",
    ]
    assert sorted(p.name for p in (tmp_path / "skeletons").iterdir()) == [
        "000000.png",
        "000001.png",
    ]


def test_write_shapes_dataset_reports_write_failures(tmp_path):
    (tmp_path / "shapes" / "000000.png").mkdir(parents=True)  # a folder where a file goes
    with pytest.raises(DataError, match="000000.png"):
        write_shapes_dataset(tmp_path, 1, (48, 48), progress=False, overwrite=True)
    file_instead = tmp_path / "file"
    file_instead.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        write_shapes_dataset(file_instead, 1, (48, 48), progress=False)


def test_write_shapes_dataset_progress_and_workers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert write_shapes_dataset(a, 4, (48, 48), seed=1, progress=True) == 4
    assert write_shapes_dataset(b, 4, (48, 48), seed=1, progress=False, workers=2) == 4
    for sub in ("shapes", "skeletons"):
        for p in (a / sub).iterdir():
            assert p.read_bytes() == (b / sub / p.name).read_bytes()


def test_module_imports_without_tensorflow():
    result = run_python(
        """
        import sys
        import keras_skel.data.synthetic
        assert "tensorflow" not in sys.modules, "synthetic must import TensorFlow lazily"
        print("OK")
        """,
        timeout=60,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_shapes_source_batches_and_clean_exit():
    # A script that used tf.numpy_function in tf.data once hung at interpreter exit
    # (TF_NOTES.md): run one in a subprocess and require it to finish.
    code = """
        import numpy as np
        from keras_skel.data.synthetic import make_shape_sample, shapes_source

        ds = shapes_source((64, 48), seed=4, noise=1.0)
        assert ds.element_spec[0].shape == (64, 48, 1), ds.element_spec
        assert ds.element_spec[1].shape == (64, 48, 1), ds.element_spec
        batches = list(ds.batch(3).prefetch(2).take(3))
        for image, skeleton in batches:
            assert image.shape == (3, 64, 48, 1) and image.dtype.name == "float32"
            assert skeleton.shape == (3, 64, 48, 1) and skeleton.dtype.name == "float32"
            assert set(np.unique(image.numpy())) <= {0.0, 1.0}
            assert skeleton.numpy().sum() > 0
        expected = make_shape_sample(4, 4, (64, 48), 1.0)
        np.testing.assert_array_equal(batches[1][0][1, ..., 0].numpy(), expected[0])
        np.testing.assert_array_equal(batches[1][1][1, ..., 0].numpy(), expected[1])
        print("OK", flush=True)
        """
    try:
        result = run_python(code, timeout=180)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"script using shapes_source did not exit within 180 s: {err.stdout!r}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


def test_heldout_split_uses_only_fonts_and_kinds_training_never_sees(monkeypatch):
    from keras_skel.data import synthetic

    used = []
    real_font = synthetic._font

    def recording_font(name, size):
        used.append(name)
        return real_font(name, size)

    monkeypatch.setattr(synthetic, "_font", recording_font)
    for index in range(12):
        assert family_of(3, index, "heldout") in ("animal", "glyph")
        make_shape_sample(3, index, (96, 96), 0.0, split="heldout", family="glyph")
    assert used and set(used) <= set(synthetic._HELDOUT_FONTS)
    used.clear()
    for index in range(24):
        make_shape_sample(3, index, (96, 96), 0.0, split="train", family="glyph")
        make_shape_sample(3, index, (96, 96), 0.0, split="train", family="holes")
    assert used and not set(used) & set(synthetic._HELDOUT_FONTS)
    # Birds are the held-out animals: the training split draws every other kind, never them.
    assert set(synthetic._TRAIN_VARIANTS["animal"]) == set(synthetic._VARIANTS["animal"]) - {"bird"}
    assert set(synthetic._HELDOUT_VARIANTS["animal"]) == {"bird"}
    with pytest.raises(ValueError, match="split"):
        make_shape_sample(3, 0, (64, 64), split="test")
    with pytest.raises(ValueError, match="blob"):
        make_shape_sample(3, 0, (64, 64), split="heldout", family="blob")


def test_bump_noise_is_local_and_keeps_topology():
    field_changed, bump_changed = 0, 0
    for index in range(24):
        noisy, target, clean = make_shape_sample(9, index, (128, 128), 3.0, noise_style="bumps", with_clean=True)
        np.testing.assert_array_equal(clean, make_shape_sample(9, index, (128, 128), 0.0)[0])
        np.testing.assert_array_equal(target, skeleton_target(clean))
        assert _n_parts(noisy) == _n_parts(clean) and _n_holes(noisy) == _n_holes(clean)
        bump_changed += int((noisy != clean).sum())
        field = make_shape_sample(9, index, (128, 128), 3.0, noise_style="field")[0]
        field_changed += int((field != clean).sum())
        dist_out = cv2.distanceTransform(1 - clean, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        assert dist_out[(noisy != clean) & (clean == 0)].max(initial=0) <= 3.5
    # Separate bumps move far fewer boundary pixels than the everywhere-wavering field.
    assert 0 < bump_changed < 0.6 * field_changed
    with pytest.raises(ValueError, match="noise style"):
        make_shape_sample(9, 0, (64, 64), 2.0, noise_style="waves")


def test_write_shapes_dataset_writes_clean_shapes_and_records_options(tmp_path):
    import json

    out = tmp_path / "ds"
    write_shapes_dataset(out, 3, (64, 64), seed=4, noise=2.0, progress=False, split="heldout",
                         noise_style="bumps", with_clean=True)
    info = json.loads((out / "dataset.json").read_text())
    assert info["split"] == "heldout" and info["noise_style"] == "bumps"
    assert "--split heldout" in info["command"] and "--clean" in info["command"]
    for i in range(3):
        shape, _, clean = make_shape_sample(4, i, (64, 64), 2.0, split="heldout", noise_style="bumps", with_clean=True)
        np.testing.assert_array_equal(_read_png(out / "clean" / f"{i:06d}.png") // 255, clean)
        np.testing.assert_array_equal(_read_png(out / "shapes" / f"{i:06d}.png") // 255, shape)
