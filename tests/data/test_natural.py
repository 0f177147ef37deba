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

    def spy(rng, split, shape, source=None, photo_dir=None):
        texture, name = original(rng, split, shape, source, photo_dir)
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


# ----------------------------------------------------------------------------- --photos folders


def _photo_folder(root, names, size=(80, 120)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(root / name), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def test_photo_folder_splits_by_file_name(tmp_path):
    names = [f"p{i:02d}.{'jpg' if i % 2 else 'png'}" for i in range(12)]
    root = _photo_folder(tmp_path / "photos" / "sub", names).parent
    (root / "notes.txt").write_text("not a photo")
    train = [p for p in natural._photos("train", str(root)) if p.startswith("/")]
    held = [p for p in natural._photos("heldout", str(root)) if p.startswith("/")]
    assert not set(train) & set(held) and len(train) + len(held) == len(names) and held and train
    assert all(natural.photo_split(p) == "train" for p in train)
    # The split is the file name's: the same name in another folder falls in the same split.
    other = _photo_folder(tmp_path / "elsewhere", names[:4])
    assert [natural.photo_split(p) for p in sorted(other.iterdir())] == [natural.photo_split(n) for n in names[:4]]
    # The scikit-image samples of each split stay in it.
    assert set(TRAIN_PHOTOS) >= {p for p in natural._photos("train", str(root)) if not p.startswith("/")}


def test_samples_draw_folder_photos_of_their_split_only(tmp_path, monkeypatch):
    names = [f"p{i:02d}.png" for i in range(12)]
    root = _photo_folder(tmp_path / "photos", names)
    used = []
    crop = natural._photo_crop

    def recording(rng, name, shape):
        used.append(name)
        return crop(rng, name, shape)

    monkeypatch.setattr(natural, "_photo_crop", recording)
    for split in ("train", "heldout"):
        used.clear()
        for index in range(12):
            make_natural_sample(0, index, (64, 64), split, photos=root)
        folder = [p for p in used if p.startswith(str(root.resolve()))]
        assert folder, f"no photo of the folder drawn in 12 {split} samples"
        assert {natural.photo_split(p) for p in folder} == {split}
    a = make_natural_sample(0, 1, (64, 64), "train", photos=root)
    np.testing.assert_array_equal(a[0], make_natural_sample(0, 1, (64, 64), "train", photos=root)[0])


def test_large_photos_are_reduced(tmp_path):
    root = _photo_folder(tmp_path / "big", ["wide.jpg"], size=(600, 2100))
    natural._photo.cache_clear()
    array = natural._photo(str((root / "wide.jpg").resolve()))
    assert array.shape == (round(600 * natural.PHOTO_MAX_SIDE / 2100), natural.PHOTO_MAX_SIDE, 3)
    assert array.dtype == np.float32 and 0 <= array.min() and array.max() <= 1


def test_photo_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        write_natural_dataset(tmp_path / "out", 1, (64, 64), progress=False, photos=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no photographs"):
        write_natural_dataset(tmp_path / "out", 1, (64, 64), progress=False, photos=tmp_path / "empty")
    root = _photo_folder(tmp_path / "photos", [f"p{i:02d}.png" for i in range(8)])
    bad = next(p for p in sorted(root.iterdir()) if natural.photo_split(p) == "train")
    bad.write_bytes(b"not an image")
    natural._photo.cache_clear()
    with pytest.raises(DataError, match=f"photo {bad.resolve()} cannot be read"):
        write_natural_dataset(tmp_path / "out", 1, (64, 64), split="train", progress=False, photos=root)
    assert not (tmp_path / "out" / "images").exists() or not any((tmp_path / "out" / "images").iterdir())


def test_dataset_json_records_the_photos(tmp_path):
    root = _photo_folder(tmp_path / "photos", [f"p{i:02d}.png" for i in range(8)])
    out = tmp_path / "nat"
    assert write_natural_dataset(out, 2, (64, 64), split="heldout", progress=False, photos=root) == 2
    info = json.loads((out / "dataset.json").read_text())
    assert info["photos"] == str(root.resolve()) and info["command"].endswith(f"--photos {root.resolve()}")
    assert info["photo_files"] == sorted(p.name for p in root.iterdir() if natural.photo_split(p) == "heldout")
    image = load_natural_folder(out)[1][1]
    np.testing.assert_allclose(image, make_natural_sample(0, 1, (64, 64), "heldout", photos=root)[0] / 255.0,
                               atol=1e-6)


def test_cli_photos_option(tmp_path):
    from click.testing import CliRunner

    from keras_skel.cli import cli

    root = _photo_folder(tmp_path / "photos", [f"p{i:02d}.png" for i in range(6)])
    r = CliRunner().invoke(cli, ["data", "synth", "--task", "natural", "--count", "2", "--size", "64", "--split",
                                 "train", "--photos", str(root), "--out", str(tmp_path / "nat")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "nat" / "dataset.json").read_text())["photos"] == str(root.resolve())
    r = CliRunner().invoke(cli, ["data", "synth", "--task", "shapes", "--count", "2", "--size", "64",
                                 "--photos", str(root), "--out", str(tmp_path / "shapes")])
    assert r.exit_code == 2 and "--photos is an option of --task natural" in r.output


def test_collect_photos_keeps_one_file_per_picture(tmp_path):
    from tests.harness import load_tool

    tool = load_tool("collect_photos")
    rng = np.random.default_rng(1)
    picture = cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (1600, 900), interpolation=cv2.INTER_CUBIC)
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    cv2.imwrite(str(src / "a" / "Sea.png"), picture)
    cv2.imwrite(str(src / "a" / "Sea_800x450.jpg"), cv2.resize(picture, (800, 450), interpolation=cv2.INTER_AREA))
    kde = src / "Hills" / "contents" / "images"
    kde.mkdir(parents=True)
    other = rng.integers(0, 256, (500, 700, 3), dtype=np.uint8)
    cv2.imwrite(str(kde / "700x500.png"), other)
    cv2.imwrite(str(kde / "500x700.png"), np.ascontiguousarray(other.transpose(1, 0, 2)))
    cv2.imwrite(str(src / "a" / "icon.png"), other[:64, :64])
    out = tmp_path / "photos"
    assert tool.collect([src], out, 1024, 400, False) == 2
    files = sorted(p.name for p in out.iterdir())
    assert files == ["Hills.jpg", "Sea.jpg"]
    assert cv2.imread(str(out / "Sea.jpg")).shape == (576, 1024, 3)  # the largest copy, reduced to 1024
    with pytest.raises(SystemExit, match="pass --overwrite"):
        tool.collect([src], out, 1024, 400, False)
