"""The Pixel SkelNetOn layout (label images, point files, submissions) on fixtures written in it."""

import cv2
import numpy as np
import pytest

from keras_skel.data.folders import load_folder
from keras_skel.data.skelneton import convert_skelneton, read_label_image, read_point_files, write_submission
from keras_skel.errors import DataError


def _label_image(path, shape, skeleton):
    rgb = np.zeros(shape.shape + (3,), np.uint8)
    rgb[shape] = (255, 255, 255)
    rgb[skeleton] = (0, 0, 255)  # RGB blue, as the challenge's evaluation script reads it
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _fixture(tmp_path):
    shape = np.zeros((256, 256), bool)
    shape[80:180, 40:220] = True
    skeleton = np.zeros_like(shape)
    skeleton[130, 90:170] = True
    _label_image(tmp_path / "bat-11.png", shape, skeleton)
    # A sample given only as point files, edges numbered from 1.
    (tmp_path / "coords_cup-2.txt").write_text("40 40\n200 40\n200 90\n40 90\n")
    (tmp_path / "skelpoints_cup-2.txt").write_text("65 65\n175 65\n120 65\n")
    (tmp_path / "skeledges_cup-2.txt").write_text("1 3\n3 2\n")
    return shape, skeleton


def test_label_image_round_trip(tmp_path):
    shape, skeleton = _fixture(tmp_path)
    got_shape, got_skeleton = read_label_image(tmp_path / "bat-11.png")
    np.testing.assert_array_equal(got_shape, shape)
    np.testing.assert_array_equal(got_skeleton, skeleton)


def test_point_files_are_rasterized_in_xy_order(tmp_path):
    _fixture(tmp_path)
    shape, skeleton = read_point_files(tmp_path, "cup-2")
    assert shape[40:91, 40:201].all() and shape.sum() == 51 * 161
    assert skeleton[65, 65:176].all() and skeleton.sum() == 111  # one row: x along columns
    (tmp_path / "skeledges_bad-1.txt").write_text("0 7\n")
    (tmp_path / "coords_bad-1.txt").write_text("1 1\n5 1\n5 5\n")
    (tmp_path / "skelpoints_bad-1.txt").write_text("2 2\n3 3\n")
    with pytest.raises(DataError, match="edge indices"):
        read_point_files(tmp_path, "bad-1")
    with pytest.raises(DataError, match="missing point files"):
        read_point_files(tmp_path, "nothing-1")


def test_convert_gives_the_toolkit_layout(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shape, skeleton = _fixture(src)
    assert convert_skelneton(src, tmp_path / "out") == 2
    samples = {sample_id: (s, k) for sample_id, s, k in load_folder(tmp_path / "out")}
    assert set(samples) == {"bat-11", "cup-2"}
    np.testing.assert_array_equal(samples["bat-11"][0], shape)
    np.testing.assert_array_equal(samples["bat-11"][1], skeleton)
    with pytest.raises(DataError, match="already holds"):
        convert_skelneton(src, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no SkelNetOn samples"):
        convert_skelneton(tmp_path / "empty", tmp_path / "elsewhere")
    with pytest.raises(DataError, match="8-bit RGB"):  # our own grey layout is not SkelNetOn's
        convert_skelneton(tmp_path / "out" / "shapes", tmp_path / "elsewhere")


def test_non_label_images_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((8, 8), 255, np.uint8))
    with pytest.raises(DataError, match="8-bit RGB"):
        read_label_image(tmp_path / "grey.png")
    cv2.imwrite(str(tmp_path / "white.png"), np.full((8, 8, 3), 255, np.uint8))
    with pytest.raises(DataError, match="no skeleton pixels"):
        read_label_image(tmp_path / "white.png")


def test_submission_is_blue_on_black(tmp_path):
    skeleton = np.zeros((16, 16), np.uint8)
    skeleton[4, 2:12] = 1
    path = write_submission(tmp_path / "sub" / "bat-11.png", skeleton)
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(np.all(rgb == (0, 0, 255), axis=-1), skeleton.astype(bool))
    assert not rgb[skeleton == 0].any()
