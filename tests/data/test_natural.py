"""Synthetic natural images (data synth --task natural) and the natural-image folder reader."""

import json

import cv2
import numpy as np
import pytest
from scipy import ndimage

from keras_skel.data import natural
from keras_skel.data.natural import (HELDOUT_PHOTOS, HELDOUT_TEXTURES, TRAIN_PHOTOS, TRAIN_TEXTURES,
                                     load_natural_folder, make_natural_sample, write_natural_dataset)
from keras_skel.data.targets import skeleton_target
from keras_skel.errors import ConfigError, DataError


def test_sample_is_deterministic_and_typed():
    a = make_natural_sample(3, 4, (96, 80), "train", with_mask=True)
    b = make_natural_sample(3, 4, (96, 80), "train", with_mask=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    image, skeleton, mask = a
    assert image.shape == (96, 80, 3) and image.dtype == np.uint8
    assert skeleton.shape == mask.shape == (96, 80) and skeleton.dtype == np.uint8
    assert not np.array_equal(image, make_natural_sample(3, 5, (96, 80), "train")[0])


@pytest.mark.parametrize("index", range(6))
def test_skeleton_is_the_ground_truth_rule_of_each_object(index):
    image, skeleton, mask = make_natural_sample(11, index, (128, 128), "all", with_mask=True)
    assert skeleton.any() and set(np.unique(skeleton)) <= {0, 1}
    assert not (skeleton & (1 - mask)).any(), "skeleton pixels outside the objects"
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    expected = np.zeros_like(skeleton)
    for k in range(1, count + 1):
        expected |= skeleton_target((labels == k).astype(np.uint8))
    # Objects are drawn apart (separate halves), so the per-object rule equals the union's.
    np.testing.assert_array_equal(skeleton, expected)


def test_objects_differ_from_their_surroundings_on_average():
    """The image must carry the object: its mean colour differs from the ring around it in
    most samples (in some, by design, the object wears the background's texture)."""
    differences = []
    for index in range(12):
        image, _, mask = make_natural_sample(2, index, (128, 128), "train", with_mask=True)
        ring = cv2.dilate(mask, np.ones((9, 9), np.uint8)) - mask
        inside, outside = image[mask > 0].mean(axis=0), image[ring > 0].mean(axis=0)
        differences.append(np.abs(inside - outside).max())
    assert np.median(differences) > 10


def test_splits_keep_held_out_material_apart(monkeypatch):
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    assert not set(TRAIN_TEXTURES) & set(HELDOUT_TEXTURES)
    used = []
    original = natural._texture

    def spy(rng, split, shape, source=None):
        texture, name = original(rng, split, shape, source)
        used.append((split, name))
        return texture, name

    monkeypatch.setattr(natural, "_texture", spy)
    for index in range(8):
        make_natural_sample(0, index, (64, 64), "train")
        make_natural_sample(0, index, (64, 64), "heldout")
    train = {name for split, name in used if split == "train"}
    heldout = {name for split, name in used if split == "heldout"}
    assert train <= set(TRAIN_PHOTOS) | set(TRAIN_TEXTURES)
    assert heldout <= set(HELDOUT_PHOTOS) | set(HELDOUT_TEXTURES)
    assert train and heldout


def test_photographs_are_installed_with_scikit_image():
    # The textures read skimage's bundled sample images; none may need a download.
    assert natural._photos("train") == TRAIN_PHOTOS
    assert natural._photos("heldout") == HELDOUT_PHOTOS


def test_bad_arguments():
    with pytest.raises(ConfigError, match="at least 64"):
        make_natural_sample(0, 0, (48, 64))
    with pytest.raises(ConfigError, match="unknown split"):
        make_natural_sample(0, 0, (64, 64), "test")


def test_write_and_load_folder(tmp_path):
    root = tmp_path / "nat"
    assert write_natural_dataset(root, 3, (64, 72), seed=4, split="heldout", progress=False) == 3
    info = json.loads((root / "dataset.json").read_text())
    assert info["task"] == "natural" and info["split"] == "heldout" and info["size"] == [64, 72]
    samples = load_natural_folder(root)
    assert [s[0] for s in samples] == ["000000", "000001", "000002"]
    for (sample_id, image, skeleton), index in zip(samples, range(3)):
        ref_image, ref_skeleton = make_natural_sample(4, index, (64, 72), "heldout")
        np.testing.assert_allclose(image, ref_image / 255.0, atol=1e-6)
        np.testing.assert_array_equal(skeleton, ref_skeleton)
    with pytest.raises(DataError, match="refusing to overwrite"):
        write_natural_dataset(root, 1, (64, 64), progress=False)
    assert write_natural_dataset(root, 1, (64, 64), overwrite=True, progress=False) == 1
    assert len(list((root / "images").iterdir())) == 1


def test_folder_errors_name_the_file(tmp_path):
    root = tmp_path / "bad"
    write_natural_dataset(root, 2, (64, 64), progress=False)
    (root / "skeletons" / "000001.png").unlink()
    with pytest.raises(DataError, match="000001 has no file in skeletons/"):
        load_natural_folder(root)
    cv2.imwrite(str(root / "skeletons" / "000001.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match="000001.png is 32x32 but its image 000001.png is 64x64"):
        load_natural_folder(root)
    with pytest.raises(DataError, match="no images/ folder"):
        load_natural_folder(tmp_path)
    (root / "images" / "000000.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="000000.png is not a readable image"):
        load_natural_folder(root)
