"""Tests for keras_skel.data.folders: dataset-folder discovery, validation and skip mode."""

import warnings

import cv2
import numpy as np
import pytest

from keras_skel.data.folders import (
    Pair,
    SkipList,
    find_pairs,
    list_images,
    load_folder,
    load_pair,
)
from keras_skel.errors import DataError


def _shape(h=12, w=10):
    shape = np.zeros((h, w), np.uint8)
    shape[2:-2, 3:-3] = 255
    return shape


def _skeleton(h=12, w=10):
    skeleton = np.zeros((h, w), np.uint8)
    skeleton[3:-3, w // 2] = 255
    return skeleton


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _make_dataset(root, ids=("a", "b", "c"), shape_ext=".png", skeleton_ext=".png"):
    for sample_id in ids:
        _write(root / "shapes" / f"{sample_id}{shape_ext}", _shape())
        _write(root / "skeletons" / f"{sample_id}{skeleton_ext}", _skeleton())
    return root


def test_good_folder(tmp_path):
    root = _make_dataset(tmp_path / "ds", skeleton_ext=".bmp")
    (root / "shapes" / "README.txt").write_text("ignored")
    (root / "skeletons" / ".DS_Store").write_bytes(b"\0")
    pairs = find_pairs(root)
    assert isinstance(pairs, list) and isinstance(pairs, SkipList)
    assert [p.id for p in pairs] == ["a", "b", "c"]
    assert pairs.skipped == []
    assert pairs[0] == Pair("a", root / "shapes" / "a.png", root / "skeletons" / "a.bmp")
    with pytest.raises(Exception):
        pairs[0].id = "x"  # frozen

    samples = load_folder(root)
    assert [s[0] for s in samples] == ["a", "b", "c"]
    sample_id, shape, skeleton = samples[0]
    assert shape.dtype == bool and skeleton.dtype == bool
    np.testing.assert_array_equal(shape, _shape() > 0)
    np.testing.assert_array_equal(skeleton, _skeleton() > 0)


def test_load_folder_progress(tmp_path, capsys):
    root = _make_dataset(tmp_path / "ds")
    assert len(load_folder(root, progress=True)) == 3
    assert capsys.readouterr().out == ""  # the bar goes to stderr


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not found"):
        find_pairs(tmp_path / "nowhere")


def test_root_is_a_file(tmp_path):
    path = tmp_path / "file.png"
    path.write_text("x")
    with pytest.raises(DataError, match="file.png.*not a folder"):
        find_pairs(path)


@pytest.mark.parametrize("missing", ["shapes", "skeletons"])
def test_missing_subfolder(tmp_path, missing):
    root = _make_dataset(tmp_path / "ds")
    for path in (root / missing).iterdir():
        path.unlink()
    (root / missing).rmdir()
    with pytest.raises(DataError) as info:
        find_pairs(root)
    message = str(info.value)
    assert f"no '{missing}/' subfolder" in message and str(root) in message
    assert "expected" in message


def test_empty_subfolder(tmp_path):
    root = tmp_path / "ds"
    (root / "shapes").mkdir(parents=True)
    (root / "skeletons").mkdir()
    (root / "shapes" / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        find_pairs(root)
    message = str(info.value)
    assert "shapes" in message and "no images" in message and "notes.txt" in message
    # Skipping cannot help an empty folder.
    with pytest.raises(DataError, match="no images"):
        find_pairs(root, on_error="skip")


def test_shape_without_skeleton(tmp_path):
    root = _make_dataset(tmp_path / "ds")
    _write(root / "shapes" / "lonely.png", _shape())
    with pytest.raises(DataError) as info:
        find_pairs(root)
    message = str(info.value)
    assert "lonely.png" in message and "shape has no skeleton" in message
    assert str(root / "skeletons" / "lonely") in message  # what is expected


def test_skeleton_without_shape(tmp_path):
    root = _make_dataset(tmp_path / "ds")
    _write(root / "skeletons" / "orphan.png", _skeleton())
    with pytest.raises(DataError) as info:
        find_pairs(root)
    message = str(info.value)
    assert "orphan.png" in message and "skeleton has no shape" in message
    assert str(root / "shapes" / "orphan") in message


def test_two_files_one_id(tmp_path):
    root = _make_dataset(tmp_path / "ds")
    _write(root / "shapes" / "a.bmp", _shape())
    with pytest.raises(DataError, match="'a' has 2 files"):
        find_pairs(root)
    with pytest.warns(UserWarning, match="skipped 1"):
        pairs = find_pairs(root, on_error="skip")
    assert [p.id for p in pairs] == ["b", "c"]


def test_size_mismatch(tmp_path):
    root = _make_dataset(tmp_path / "ds", ids=("a",))
    _write(root / "skeletons" / "a.png", _skeleton(h=14, w=9))
    pair = find_pairs(root)[0]
    with pytest.raises(DataError) as info:
        load_pair(pair)
    message = str(info.value)
    assert str(pair.shape_path) in message and str(pair.skeleton_path) in message
    assert "10x12" in message and "9x14" in message
    with pytest.raises(DataError, match="size mismatch"):
        load_folder(root)


def test_empty_skeleton(tmp_path):
    root = _make_dataset(tmp_path / "ds", ids=("a",))
    _write(root / "skeletons" / "a.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataError) as info:
        load_pair(find_pairs(root)[0])
    message = str(info.value)
    assert "a.png" in message and "skeleton is empty" in message


def test_unreadable_image_in_pair(tmp_path):
    root = _make_dataset(tmp_path / "ds", ids=("a",))
    (root / "shapes" / "a.png").write_text("not an image")
    with pytest.raises(DataError, match="a.png"):
        load_folder(root)


def test_skip_mode_counts(tmp_path):
    root = _make_dataset(tmp_path / "ds", ids=("a", "b", "c", "d"))
    _write(root / "shapes" / "no_skel.png", _shape())  # missing pair
    _write(root / "skeletons" / "no_shape.png", _skeleton())  # missing pair
    _write(root / "skeletons" / "b.png", _skeleton(h=20))  # size mismatch
    _write(root / "skeletons" / "c.png", np.zeros((12, 10), np.uint8))  # empty skeleton

    with pytest.warns(UserWarning, match="skipped 2 sample"):
        pairs = find_pairs(root, on_error="skip")
    assert [p.id for p in pairs] == ["a", "b", "c", "d"]
    assert sorted(s.id for s in pairs.skipped) == ["no_shape", "no_skel"]

    with pytest.warns(UserWarning) as record:
        samples = load_folder(root, on_error="skip")
    assert len(record) == 1  # one summary, not one warning per step
    assert "skipped 4 sample(s), kept 2" in str(record[0].message)
    assert [s[0] for s in samples] == ["a", "d"]
    reasons = {s.id: s.reason for s in samples.skipped}
    assert set(reasons) == {"no_skel", "no_shape", "b", "c"}
    assert "size mismatch" in reasons["b"] and "skeleton is empty" in reasons["c"]


def test_skip_mode_no_warning_when_clean(tmp_path):
    root = _make_dataset(tmp_path / "ds")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_folder(root, on_error="skip")) == 3


def test_skip_mode_nothing_left(tmp_path):
    root = _make_dataset(tmp_path / "ds", ids=("a",))
    _write(root / "skeletons" / "a.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataError, match="no usable sample"):
        load_folder(root, on_error="skip")


def test_bad_on_error(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        find_pairs(tmp_path, on_error="ignore")


def test_list_images_file_and_folder(tmp_path):
    a = _write(tmp_path / "in" / "b.png", _shape())
    b = _write(tmp_path / "in" / "a.JPG", _shape())
    (tmp_path / "in" / "notes.txt").write_text("x")
    (tmp_path / "in" / "sub").mkdir()
    _write(tmp_path / "in" / "sub" / "c.png", _shape())
    assert list_images(tmp_path / "in") == [b, a]
    assert list_images(a) == [a]
    assert list_images(str(a)) == [a]


def test_list_images_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty.*no image file"):
        list_images(tmp_path / "empty")
    with pytest.raises(DataError, match="missing.*not found"):
        list_images(tmp_path / "missing")
