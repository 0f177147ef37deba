"""Tests for keras_skel.data.io: every accepted pixel format, thresholds, and refusals."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from keras_skel.data.io import IMAGE_SUFFIXES, is_image_path, read_binary_image, write_mask_png
from keras_skel.errors import DataError


def _shape_mask(h=6, w=7):
    mask = np.zeros((h, w), bool)
    mask[1:4, 2:5] = True
    mask[5, 0] = True
    return mask


def _save_pil(path, array, mode=None):
    image = Image.fromarray(array)
    if mode is not None and image.mode != mode:
        image = Image.fromarray(array, mode=mode)
    image.save(path)
    return path


def test_8bit_grey_png(tmp_path):
    mask = _shape_mask()
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), mask.astype(np.uint8) * 200)
    out = read_binary_image(path)
    assert out.dtype == bool and out.shape == mask.shape
    np.testing.assert_array_equal(out, mask)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".jpg"])
def test_other_formats(tmp_path, suffix):
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    path = tmp_path / f"grey{suffix}"
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_8bit_threshold_edges(tmp_path):
    values = np.array([[0, 126, 127, 128, 129, 255]], np.uint8)
    path = tmp_path / "edges.png"
    cv2.imwrite(str(path), values)
    np.testing.assert_array_equal(
        read_binary_image(path), [[False, False, False, True, True, True]]
    )


def test_16bit_grey(tmp_path):
    values = np.array([[0, 30000, 32767, 32768, 40000, 65535]], np.uint16)
    path = tmp_path / "grey16.png"
    cv2.imwrite(str(path), values)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really 16-bit
    np.testing.assert_array_equal(
        read_binary_image(path), [[False, False, False, True, True, True]]
    )


def test_16bit_tiff(tmp_path):
    path = tmp_path / "grey16.tif"
    cv2.imwrite(str(path), np.array([[30000, 40000]], np.uint16))
    np.testing.assert_array_equal(read_binary_image(path), [[False, True]])


def test_rgb_uses_luminance(tmp_path):
    # PIL writes RGB in RGB order: pure green (luma 150) is on, pure blue (luma 29) is off,
    # pure red (luma 76) is off, white on, black off.
    rgb = np.array(
        [[[0, 255, 0], [0, 0, 255], [255, 0, 0], [255, 255, 255], [0, 0, 0]]], np.uint8
    )
    path = _save_pil(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(read_binary_image(path), [[True, False, False, True, False]])


def test_rgba_alpha_is_the_shape(tmp_path):
    mask = _shape_mask()
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., :3] = 255  # constant white colour: only alpha carries the shape
    rgba[..., 3] = np.where(mask, 255, 0)
    path = _save_pil(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_rgba_constant_alpha_uses_colour(tmp_path):
    mask = _shape_mask()
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., :3] = np.where(mask, 255, 0)[..., None]
    rgba[..., 3] = 255
    path = _save_pil(tmp_path / "rgba_opaque.png", rgba)
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_grey_alpha(tmp_path):
    mask = _shape_mask()
    grey_alpha = np.zeros(mask.shape + (2,), np.uint8)
    grey_alpha[..., 0] = 128  # constant grey
    grey_alpha[..., 1] = np.where(mask, 255, 0)
    path = _save_pil(tmp_path / "la.png", grey_alpha, mode="LA")
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_grey_alpha_constant_alpha_uses_grey(tmp_path):
    mask = _shape_mask()
    grey_alpha = np.full(mask.shape + (2,), 255, np.uint8)
    grey_alpha[..., 0] = np.where(mask, 255, 0)
    path = _save_pil(tmp_path / "la_opaque.png", grey_alpha, mode="LA")
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_one_bit_and_palette(tmp_path):
    mask = _shape_mask()
    grey = Image.fromarray(mask.astype(np.uint8) * 255)
    grey.convert("1").save(tmp_path / "one.png")
    grey.convert("P").save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_binary_image(tmp_path / "one.png"), mask)
    np.testing.assert_array_equal(read_binary_image(tmp_path / "palette.png"), mask)


def test_accepts_str_path(tmp_path):
    path = tmp_path / "s.png"
    cv2.imwrite(str(path), np.full((2, 3), 255, np.uint8))
    assert read_binary_image(str(path)).all()


def _assert_data_error(path, *fragments):
    with pytest.raises(DataError) as info:
        read_binary_image(path)
    message = str(info.value)
    assert Path(path).name in message
    for fragment in fragments:
        assert fragment in message, message
    assert "expected" in message
    return message


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture")
    _assert_data_error(path, "not a readable image")


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "cut.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (64, 64), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_data_error(path, "truncated")


def test_float32_tiff(tmp_path):
    path = tmp_path / "float.tiff"
    cv2.imwrite(str(path), np.ones((4, 4), np.float32))
    _assert_data_error(path, "floating-point")


def test_32bit_integer_image(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.zeros((4, 4), np.int32), mode="I").save(path)
    _assert_data_error(path, "32-bit")


def test_nonexistent(tmp_path):
    _assert_data_error(tmp_path / "missing.png", "not found")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _assert_data_error(path, "empty")


def test_directory(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(DataError, match="folder.png"):
        read_binary_image(folder)


def test_data_error_is_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_binary_image(tmp_path / "missing.png")


def test_write_mask_png_roundtrip(tmp_path):
    mask = _shape_mask()
    path = write_mask_png(tmp_path / "a" / "b" / "mask.png", mask)
    assert path.exists()
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and raw.ndim == 2
    assert set(np.unique(raw)) == {0, 255}
    np.testing.assert_array_equal(read_binary_image(path), mask)


def test_write_mask_png_accepts_channel_axis_and_integers(tmp_path):
    mask = _shape_mask().astype(np.uint8)[..., None]  # 0/1 [H, W, 1]
    path = write_mask_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_binary_image(path), mask[..., 0].astype(bool))


def test_write_mask_png_refuses_bad_shape(tmp_path):
    with pytest.raises(DataError, match="m.png"):
        write_mask_png(tmp_path / "m.png", np.zeros((2, 3, 3)))


def test_write_mask_png_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="mask.png"):
        write_mask_png(blocker / "mask.png", np.ones((2, 2)))


def test_image_suffixes():
    assert ".png" in IMAGE_SUFFIXES and ".tiff" in IMAGE_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)
    assert is_image_path("A.PNG") and not is_image_path("notes.txt")
