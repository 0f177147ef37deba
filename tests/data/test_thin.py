"""Tests of the synthetic thin-structure source (keras_skel.data.thin)."""

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi

from keras_skel.data import thin
from keras_skel.data.thin import (
    MAX_CLASSES,
    THIN_KINDS,
    class_contrasts,
    load_thin_folder,
    make_thin_sample,
    thin_kind_of,
    write_thin_dataset,
)
from keras_skel.errors import DataError
from tests.harness import run_python

REPO = Path(__file__).resolve().parents[2]
SIZES = [(64, 80), (24, 32, 40)]


def _best_threshold_dice(image: np.ndarray, labels: np.ndarray) -> float:
    """The best Dice any global threshold (either polarity) gets against labels > 0."""
    mask = labels > 0
    best = 0.0
    for t in np.linspace(0.01, 0.99, 99):
        for pred in (image < t, image > t):
            inter = np.count_nonzero(pred & mask)
            best = max(best, 2 * inter / (np.count_nonzero(pred) + np.count_nonzero(mask) + 1e-9))
    return best


def _inside_distance(labels: np.ndarray) -> np.ndarray:
    """Distance of each label pixel to the background (the image border counts as background)."""
    dist = ndi.distance_transform_edt(np.pad(labels > 0, 1))
    return dist[dist > 0]


# ------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("size", SIZES)
def test_determinism(size):
    a = make_thin_sample(7, 3, size, classes=3)
    b = make_thin_sample(7, 3, size, classes=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other_index = make_thin_sample(7, 4, size, classes=3, kind=thin_kind_of(7, 3))
    other_seed = make_thin_sample(8, 3, size, classes=3, kind=thin_kind_of(7, 3))
    for other in (other_index, other_seed):
        assert not np.array_equal(a[0], other[0]) and not np.array_equal(a[1], other[1])


@pytest.mark.parametrize("size", SIZES + [(16, 16), (16, 16, 16), (20, 96)])
@pytest.mark.parametrize("kind", THIN_KINDS)
def test_shapes_dtypes_and_ranges(size, kind):
    for index in range(2):
        image, labels = make_thin_sample(1, index, size, classes=MAX_CLASSES, kind=kind)
        assert image.shape == size and labels.shape == size
        assert image.dtype == np.float32 and labels.dtype == np.uint8
        assert np.isfinite(image).all() and 0.0 <= image.min() and image.max() <= 1.0
        assert labels.max() <= MAX_CLASSES
        assert image.std() > 0.02  # a textured background, not a flat one


def test_geometry_does_not_depend_on_the_number_of_classes():
    for kind in THIN_KINDS:
        _, binary = make_thin_sample(2, 5, (64, 64), classes=1, kind=kind)
        _, multi = make_thin_sample(2, 5, (64, 64), classes=5, kind=kind)
        assert set(np.unique(binary)) == {0, 1}
        np.testing.assert_array_equal(binary > 0, multi > 0)


@pytest.mark.parametrize("size", [(96, 96), (32, 40, 40)])
@pytest.mark.parametrize("kind", THIN_KINDS)
def test_every_class_shows_in_most_samples(size, kind):
    n = 6 if len(size) == 2 else 3
    present = np.zeros(4, int)
    for index in range(n):
        _, labels = make_thin_sample(3, index, size, classes=3, kind=kind)
        values = np.unique(labels)
        assert values.max() <= 3
        present[values] += 1
    assert (present[1:] >= n - 1).all(), f"samples holding class 1, 2, 3: {present[1:]} of {n}"


def test_classes_are_told_apart_by_local_contrast():
    """Learnable: each class is darker (odd) or brighter (even) than its surroundings, by
    the amount `class_contrasts` says, whatever the background does."""
    table = class_contrasts(4)
    assert table[0] == 0 and (table[1::2] < 0).all() and (table[2::2] > 0).all()
    assert abs(table[3]) > abs(table[1]) and abs(table[4]) > abs(table[2])
    for kind in THIN_KINDS:
        measured = {k: [] for k in range(1, 5)}
        for index in range(3):
            image, labels = make_thin_sample(4, index, (96, 96), classes=4, kind=kind)
            background = ndi.grey_dilation(labels, size=(7, 7)) > 0
            ring = background & (labels == 0) & ~ndi.binary_dilation(labels > 0, iterations=1)
            local = ndi.uniform_filter(np.where(ring, image, 0), 9) / np.maximum(
                ndi.uniform_filter(ring.astype(float), 9), 1e-6
            )
            for k in range(1, 5):
                sel = (labels == k) & (ndi.uniform_filter(ring.astype(float), 9) > 0.05)
                if sel.sum() > 20:
                    measured[k].append(float(np.median(image[sel] - local[sel])))
        for k in range(1, 5):
            got = np.median(measured[k])
            assert np.sign(got) == np.sign(table[k]), (kind, k, got)
            assert 0.4 * abs(table[k]) < abs(got) < 1.6 * abs(table[k]), (kind, k, got, table[k])


@pytest.mark.parametrize("kind", THIN_KINDS)
def test_structures_are_thin(kind):
    for index in range(4):
        _, labels = make_thin_sample(5, index, (96, 96), kind=kind)
        dist = _inside_distance(labels)
        # Widest structures: 7-px roads; crossings and branch points a little more.
        assert dist.max() <= 8.0 and np.percentile(dist, 99) <= 6.5, (index, dist.max())
        if kind != "roads":  # vessels taper from 7 px, cracks are at most 4 px wide
            assert np.percentile(dist, 99) <= 4.5 and np.median(dist) <= 2.0
        _, volume = make_thin_sample(5, index, (24, 32, 32), kind=kind)
        assert _inside_distance(volume).max() <= 3.6


def test_vessels_are_trees():
    for index in range(8):
        _, labels = make_thin_sample(6, index, (96, 96), kind="vessels")
        count, parts = cv2.connectedComponents(labels, connectivity=8)
        sizes = np.bincount(parts.ravel())[1:]
        assert 1 <= len(sizes) <= 4, f"at most 3 trees (4 trunks from one point count as one): {sizes}"
        assert sizes.min() >= 30, f"no specks: {sizes}"
        # No loops: the background is one 4-connected piece (with the border around it).
        background = np.pad((labels == 0).astype(np.uint8), 1, constant_values=1)
        assert cv2.connectedComponents(background, connectivity=4)[0] - 1 == 1


@pytest.mark.parametrize("size", [(96, 96), (24, 32, 32)])
def test_no_one_pixel_gaps_between_structures(size):
    for kind in THIN_KINDS:
        for index in range(3):
            _, labels = make_thin_sample(8, index, size, kind=kind)
            mask = labels > 0
            closed = ndi.binary_closing(np.pad(mask, 2), np.ones((3,) * len(size), bool))
            closed = closed[tuple(slice(2, -2) for _ in size)]
            assert not (closed & ~mask).any(), (kind, index)


@pytest.mark.parametrize("size", [(96, 96), (24, 32, 32)])
def test_no_global_threshold_gives_the_labels(size):
    scores = []
    for kind in THIN_KINDS:
        for index in range(3):
            image, labels = make_thin_sample(9, index, size, kind=kind)
            scores.append(_best_threshold_dice(image, labels))
    # Measured on this generator: at most about 0.8 (0.6 on average) over many samples.
    assert max(scores) < 0.88, scores
    # The measure itself is sound: labels drawn onto a flat noisy image are found at once.
    rng = np.random.default_rng(0)
    flat = np.clip(0.5 + 0.25 * (labels > 0) + rng.normal(0, 0.03, labels.shape), 0, 1)
    assert _best_threshold_dice(flat, labels) > 0.95


def test_kinds_mix_in_balanced_blocks():
    for seed in (0, 1):
        kinds = [thin_kind_of(seed, i) for i in range(12)]
        for block in range(4):
            assert sorted(kinds[3 * block : 3 * block + 3]) == sorted(THIN_KINDS)
    image, labels = make_thin_sample(1, 4, (48, 48))
    forced = make_thin_sample(1, 4, (48, 48), kind=thin_kind_of(1, 4))
    np.testing.assert_array_equal(image, forced[0])
    np.testing.assert_array_equal(labels, forced[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(size=(64,)), "2 entries"),
        (dict(size=(8, 8, 8, 8)), "2 entries"),
        (dict(size=(15, 64)), "≥ 16"),
        (dict(size=(32, 32, 8)), "≥ 16"),
        (dict(size="big"), "size"),
        (dict(classes=0), "classes"),
        (dict(classes=MAX_CLASSES + 1), "1 .binary. to 8"),
        (dict(classes=2.5), "classes"),
        (dict(kind="rivers"), "unknown thin-structure kind 'rivers'"),
        (dict(seed=-1), "seed"),
        (dict(index=-2), "index"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(seed=0, index=0, size=(32, 32), classes=1, kind=None) | kwargs
    with pytest.raises(ValueError, match=match):
        make_thin_sample(**args)


# ------------------------------------------------------------------------------ folders


@pytest.mark.parametrize("size, classes, kind", [((40, 48), 3, None), ((16, 24, 20), 2, "vessels")])
def test_write_and_load_round_trip(tmp_path, size, classes, kind):
    root = write_thin_dataset(tmp_path / "set", 4, size, seed=5, classes=classes, kind=kind,
                              progress=False)
    assert root == tmp_path / "set"
    suffix = ".png" if len(size) == 2 else ".npy"
    for sub in ("images", "labels"):
        assert sorted(p.name for p in (root / sub).iterdir()) == [f"00000{i}{suffix}" for i in range(4)]
    info = json.loads((root / "dataset.json").read_text())
    assert {k: info[k] for k in ("task", "classes", "ndim", "size", "seed", "count", "kind")} == dict(
        task="thin", classes=classes, ndim=len(size), size=list(size), seed=5, count=4,
        kind=kind or "mixed",
    )
    loaded_info, samples = load_thin_folder(root)
    assert loaded_info == info
    assert [s[0] for s in samples] == ["000000", "000001", "000002", "000003"]
    for index, (_, image, labels) in enumerate(samples):
        expected_image, expected_labels = make_thin_sample(5, index, size, classes, kind)
        assert image.dtype == np.float32 and labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected_labels)
        tolerance = 0.5 / 255 + 1e-6 if len(size) == 2 else 0.0
        np.testing.assert_allclose(image, expected_image, atol=tolerance, rtol=0)
    if len(size) == 2:
        png = cv2.imread(str(root / "images" / "000000.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and png.ndim == 2


def test_write_refuses_a_non_empty_folder(tmp_path):
    write_thin_dataset(tmp_path, 3, (32, 32), progress=False)
    before = (tmp_path / "images" / "000000.png").read_bytes()
    with pytest.raises(DataError, match="overwrite"):
        write_thin_dataset(tmp_path, 2, (32, 32), seed=9, progress=False)
    assert (tmp_path / "images" / "000000.png").read_bytes() == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        write_thin_dataset(other, 1, (32, 32), progress=False)

    (tmp_path / "images" / "notes.txt").write_text("mine")
    write_thin_dataset(tmp_path, 2, (32, 32), seed=9, progress=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["000000.png", "000001.png", "notes.txt"]
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["000000.png", "000001.png"]
    assert json.loads((tmp_path / "dataset.json").read_text())["count"] == 2
    assert len(load_thin_folder(tmp_path)[1]) == 2

    file_instead = tmp_path / "file"
    file_instead.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        write_thin_dataset(file_instead, 1, (32, 32), progress=False)


def test_interrupted_write_leaves_no_finished_looking_files(tmp_path, monkeypatch):
    real = thin.make_thin_sample

    def failing(seed, index, *args, **kwargs):
        if index == 2:
            raise KeyboardInterrupt
        return real(seed, index, *args, **kwargs)

    monkeypatch.setattr(thin, "make_thin_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        write_thin_dataset(tmp_path, 4, (32, 32), progress=False)
    names = sorted(p.name for d in ("images", "labels") for p in (tmp_path / d).iterdir())
    assert names == ["000000.png", "000000.png", "000001.png", "000001.png"]
    assert not (tmp_path / "dataset.json").exists()
    with pytest.raises(DataError, match="dataset.json"):
        load_thin_folder(tmp_path)

    # A failure inside a file write leaves neither the file nor its temporary behind.
    def broken_save(handle, array):
        handle.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(thin, "make_thin_sample", real)
    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(DataError, match="000000.npy.*disk full"):
        write_thin_dataset(tmp_path / "vol", 1, (16, 16, 16), progress=False)
    assert list((tmp_path / "vol" / "images").iterdir()) == []


def test_write_shows_progress(tmp_path, capsys):
    write_thin_dataset(tmp_path, 2, (24, 24), progress=True)
    assert len(load_thin_folder(tmp_path)[1]) == 2


@pytest.fixture
def folder_2d(tmp_path):
    return write_thin_dataset(tmp_path / "d2", 2, (24, 32), classes=2, progress=False)


@pytest.fixture
def folder_3d(tmp_path):
    return write_thin_dataset(tmp_path / "d3", 2, (16, 16, 20), classes=2, progress=False)


def _png(path: Path, array: np.ndarray) -> None:
    assert cv2.imwrite(str(path), array)


def _edit_info(root: Path, **changes) -> None:
    info = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps(info | changes))


LOAD_ERRORS_2D = {
    "missing dataset.json": (lambda r: (r / "dataset.json").unlink(), "dataset.json: missing"),
    "broken dataset.json": (lambda r: (r / "dataset.json").write_text("{"), "dataset.json: cannot be read"),
    "wrong task": (lambda r: _edit_info(r, task="shapes"), "dataset.json: expected a thin"),
    "bad classes": (lambda r: _edit_info(r, classes=0), "dataset.json: 'classes'"),
    "bad ndim": (lambda r: _edit_info(r, ndim=4), "dataset.json: 'ndim'"),
    "missing images": (lambda r: shutil.rmtree(r / "images"), "images: missing"),
    "missing labels": (lambda r: shutil.rmtree(r / "labels"), "labels: missing"),
    "image without labels": (lambda r: (r / "labels" / "000001.png").unlink(),
                             r"images/000001.png: has no matching .*labels/000001.png"),
    "labels without image": (lambda r: (r / "images" / "000001.png").unlink(),
                             r"labels/000001.png: has no matching .*images/000001.png"),
    "image size differs from labels": (lambda r: _png(r / "images" / "000001.png", np.zeros((24, 30), np.uint8)),
                                       r"images/000001.png: shape \(24, 30\) differs from .*labels/000001.png"),
    "size differs from dataset.json": (lambda r: _edit_info(r, size=[24, 30]),
                                       r"images/000000.png: shape \(24, 32\) differs from size \[24, 30\]"),
    "label above classes": (lambda r: _png(r / "labels" / "000000.png", np.full((24, 32), 3, np.uint8)),
                            r"labels/000000.png: holds label value 3 .* classes=2"),
    "npy in a 2-D set": (lambda r: np.save(r / "images" / "000002.npy", np.zeros((24, 32), np.float32)),
                         r"images/000002.npy: a .npy file in a 2-D dataset"),
    "colour image": (lambda r: _png(r / "images" / "000000.png", np.zeros((24, 32, 3), np.uint8)),
                     r"images/000000.png: .* expected an 8-bit grey image"),
    "not a png": (lambda r: (r / "labels" / "000000.png").write_bytes(b"nope"),
                  r"labels/000000.png: not a readable PNG"),
    "count differs": (lambda r: _edit_info(r, count=3), r"dataset.json: says count=3"),
}


@pytest.mark.parametrize("case", sorted(LOAD_ERRORS_2D))
def test_load_errors_name_the_file_2d(folder_2d, case):
    damage, match = LOAD_ERRORS_2D[case]
    damage(folder_2d)
    with pytest.raises(DataError, match=match):
        load_thin_folder(folder_2d)


LOAD_ERRORS_3D = {
    "png in a 3-D set": (lambda r: _png(r / "labels" / "000000.png", np.zeros((16, 16), np.uint8)),
                         r"labels/000000.png: a .png file in a 3-D dataset"),
    "2-D array in a 3-D set": (lambda r: np.save(r / "images" / "000001.npy", np.zeros((16, 16), np.float32)),
                               r"images/000001.npy: found a 2-D array .* the dataset is 3-D"),
    "integer image": (lambda r: np.save(r / "images" / "000001.npy", np.zeros((16, 16, 20), np.uint8)),
                      r"images/000001.npy: found a uint8 array; expected float32"),
    "float labels": (lambda r: np.save(r / "labels" / "000001.npy", np.zeros((16, 16, 20), np.float32)),
                     r"labels/000001.npy: found a float32 array; expected uint8"),
    "image out of range": (lambda r: np.save(r / "images" / "000000.npy", np.full((16, 16, 20), 2, np.float32)),
                           r"images/000000.npy: image values must be finite and in \[0, 1\]"),
    "label above classes": (lambda r: np.save(r / "labels" / "000001.npy", np.full((16, 16, 20), 9, np.uint8)),
                            r"labels/000001.npy: holds label value 9"),
    "size differs": (lambda r: np.save(r / "labels" / "000001.npy", np.zeros((16, 16, 21), np.uint8)),
                     r"images/000001.npy: shape \(16, 16, 20\) differs from .*labels/000001.npy"),
    "not an npy": (lambda r: (r / "images" / "000000.npy").write_bytes(b"nope"),
                   r"images/000000.npy: cannot be read as a .npy"),
}


@pytest.mark.parametrize("case", sorted(LOAD_ERRORS_3D))
def test_load_errors_name_the_file_3d(folder_3d, case):
    damage, match = LOAD_ERRORS_3D[case]
    damage(folder_3d)
    with pytest.raises(DataError, match=match):
        load_thin_folder(folder_3d)


def test_load_ignores_hidden_and_unrelated_files(folder_2d):
    (folder_2d / "images" / ".000009.png.tmp").write_bytes(b"partial")
    (folder_2d / "labels" / "README.txt").write_text("about")
    info, samples = load_thin_folder(folder_2d)
    assert [s[0] for s in samples] == ["000000", "000001"]
    with pytest.raises(DataError, match="nowhere: dataset folder not found"):
        load_thin_folder(folder_2d / "nowhere")


# --------------------------------------------------------------------------- TensorFlow


def test_module_imports_without_tensorflow():
    result = run_python(
        """
        import sys
        import keras_skel.data.thin
        assert "tensorflow" not in sys.modules, "thin must import TensorFlow lazily"
        print("OK")
        """,
        timeout=60,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_thin_source_yields_fresh_samples_and_exits():
    # In a subprocess, as for shapes_source: a tf.numpy_function pipeline once hung at exit.
    code = """
        import numpy as np
        from keras_skel.data.thin import make_thin_sample, thin_source

        ds = thin_source((40, 48), seed=4, classes=3)
        assert ds.element_spec[0].shape == (40, 48, 1) and ds.element_spec[0].dtype.name == "float32"
        assert ds.element_spec[1].shape == (40, 48, 1) and ds.element_spec[1].dtype.name == "uint8"
        batches = list(ds.batch(2).prefetch(2).take(2))
        for image, labels in batches:
            assert image.shape == (2, 40, 48, 1) and labels.shape == (2, 40, 48, 1)
            assert 0 <= image.numpy().min() and image.numpy().max() <= 1 and labels.numpy().max() <= 3
        expected = make_thin_sample(4, 3, (40, 48), 3)
        np.testing.assert_array_equal(batches[1][0][1, ..., 0].numpy(), expected[0])
        np.testing.assert_array_equal(batches[1][1][1, ..., 0].numpy(), expected[1])

        volume = thin_source((16, 20, 24), seed=1, kind="roads")
        image, labels = next(iter(volume))
        assert image.shape == (16, 20, 24, 1) and labels.dtype.name == "uint8"
        print("OK", flush=True)
        """
    try:
        result = run_python(code, timeout=180)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"script using thin_source did not exit within 180 s: {err.stdout!r}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
