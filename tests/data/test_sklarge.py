"""SK-LARGE / SK506 / SYM-PASCAL / WH-SYMMAX / SYMMAX300 readers on fixtures in the published format.

Fixtures are written with ``scipy.io.savemat`` under the folder names the public loaders use
(``images/<split>/<id>.jpg``, ``groundTruth/<split>/<id>.mat``) and the variable names
DeepFlux's ``evaluation.m`` reads (``symmetry`` [+ ``edge``], ``sym``, ``gt``).
"""

import cv2
import numpy as np
import pytest
import scipy.io

from keras_skel.data.sklarge import (LAYOUTS, augment_paper, benchmark_ids, convert_benchmark,
                                     read_ground_truth, read_skeleton_benchmark)
from keras_skel.errors import DataError

H, W = 40, 56
# (name, archive folder, skeleton variable, with edge?)
CASES = [("sk-large", "SK-LARGE", "symmetry", True), ("sk506", "SK506", "symmetry", True),
         ("sym-pascal", "SymPASCAL-by-KZ", "symmetry", False), ("wh-symmax", "wh-symmax", "sym", False),
         ("symmax300", "SYMMAX300", "gt", False)]


def _shape_and_skeleton():
    edge = np.zeros((H, W), bool)
    edge[10, 8:48] = edge[30, 8:48] = True
    edge[10:31, 8] = edge[10:31, 47] = True
    skeleton = np.zeros((H, W), bool)
    skeleton[20, 18:38] = True
    return edge, skeleton


def _write(root, split, sample_id, key, with_edge, image=None):
    edge, skeleton = _shape_and_skeleton()
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "groundTruth" / split).mkdir(parents=True, exist_ok=True)
    if image is None:
        image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "images" / split / f"{sample_id}.jpg"), image)
    # logical matrices, as MATLAB saves them (scipy writes bool as a logical uint8 matrix)
    content = {key: skeleton}
    if with_edge:
        content["edge"] = edge
    scipy.io.savemat(str(root / "groundTruth" / split / f"{sample_id}.mat"), content)
    return skeleton


@pytest.mark.parametrize("name,folder,key,with_edge", CASES)
def test_reader_round_trips_each_layout(tmp_path, name, folder, key, with_edge):
    root = tmp_path / folder
    skeleton = _write(root, "test", "0a1b2c", key, with_edge)
    _write(root, "test", "0a1b2d", key, with_edge)
    samples = list(read_skeleton_benchmark(root, name, "test"))
    assert [s.id for s in samples] == ["0a1b2c", "0a1b2d"] == benchmark_ids(root, name, "test")
    sample_id, image, got, radius = samples[0]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert got.dtype == bool
    np.testing.assert_array_equal(got, skeleton)
    if with_edge:
        # distance from the skeleton row 20 to the nearest edge (rows 10 / 30) is 10
        assert radius.dtype == np.float32 and radius[20, 18:38].tolist() == [10.0] * 20
        assert radius[~skeleton].max() == 0
    else:
        assert radius is None


def test_double_matrices_and_name_aliases(tmp_path):
    root = tmp_path / "SK-LARGE"
    (root / "images" / "train").mkdir(parents=True)
    (root / "groundTruth" / "train").mkdir(parents=True)
    _, skeleton = _shape_and_skeleton()
    cv2.imwrite(str(root / "images" / "train" / "x.jpg"), np.zeros((H, W, 3), np.uint8))
    scipy.io.savemat(str(root / "groundTruth" / "train" / "x.mat"),
                     {"symmetry": skeleton.astype(np.float64), "edge": np.zeros((H, W))})
    (sample,) = read_skeleton_benchmark(root, "SKLARGE", "train")
    np.testing.assert_array_equal(sample.skeleton, skeleton)


def test_wrong_variable_names_list_what_was_found(tmp_path):
    path = tmp_path / "a.mat"
    scipy.io.savemat(str(path), {"skeleton": np.zeros((4, 4), bool), "edges": np.zeros((4, 4))})
    with pytest.raises(DataError, match=r"a\.mat.*symmetry, sym, gt.*found edges, skeleton"):
        read_ground_truth(path, "sk-large")
    scipy.io.savemat(str(path), {"symmetry": np.zeros((4, 4)), "edge": np.zeros((5, 4))})
    with pytest.raises(DataError, match=r"a\.mat.*'edge' is \(5, 4\)"):
        read_ground_truth(path, "sk506")
    scipy.io.savemat(str(path), {"gt": {"field": np.zeros((4, 4))}})  # a struct, not a matrix
    with pytest.raises(DataError, match=r"a\.mat.*'gt' must be an H×W"):
        read_ground_truth(path, "symmax300")
    with pytest.raises(DataError, match="missing ground-truth file"):
        read_ground_truth(tmp_path / "none.mat")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"bad\.mat"):
        read_ground_truth(tmp_path / "bad.mat")
    with pytest.raises(DataError, match="unknown skeleton benchmark"):
        read_ground_truth(path, "bsds")


def test_missing_files_and_size_mismatch_name_the_file(tmp_path):
    root = tmp_path / "SK506"
    with pytest.raises(DataError, match=r"SK506/images/test: missing folder"):
        list(read_skeleton_benchmark(root, "sk506", "test"))
    _write(root, "test", "a", "symmetry", True)
    (root / "images" / "test" / "a.jpg").unlink()
    with pytest.raises(DataError, match=r"images/test/a\.jpg: missing image"):
        list(read_skeleton_benchmark(root, "sk506", "test"))
    _write(root, "test", "a", "symmetry", True, image=np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(DataError, match=rf"a\.mat: skeleton is {H}×{W} but .*a\.jpg is {H + 2}×{W}"):
        list(read_skeleton_benchmark(root, "sk506", "test"))
    (root / "groundTruth" / "test" / "a.mat").unlink()
    with pytest.raises(DataError, match=r"groundTruth/test: no \.mat"):
        list(read_skeleton_benchmark(root, "sk506", "test"))


def test_convert_writes_the_toolkit_layout(tmp_path, capsys):
    root = tmp_path / "SK-LARGE"
    skeleton = _write(root, "test", "img1", "symmetry", True)
    out = tmp_path / "out"
    from click.testing import CliRunner

    from keras_skel.cli import cli

    result = CliRunner().invoke(cli, ["data", "convert", "--from", "sk-large", str(root), "--split", "test",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "converted 1 samples" in result.output
    written = cv2.imread(str(out / "skeletons" / "img1.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(written > 0, skeleton)
    assert cv2.imread(str(out / "images" / "img1.png")).shape == (H, W, 3)
    assert np.load(out / "radii" / "img1.npy").max() == 10.0
    with pytest.raises(DataError, match="already holds files"):
        convert_benchmark(root, "sk-large", "test", out)
    assert convert_benchmark(root, "sk-large", "test", out, overwrite=True) == 1


def _is_thin(mask):
    # no 2×2 block fully set: a 1-px skeleton
    return not (mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]).any()


def test_augment_paper_variants():
    image = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    skeleton = np.zeros((H, W), bool)
    skeleton[20, 10:46] = True
    skeleton[8:33, 28] = True  # a cross: a junction must survive rescaling
    variants = list(augment_paper(image, skeleton))
    assert len(variants) == 36 and len({tag for tag, _, _ in variants}) == 36  # 3 × 4 × 3 flips
    variants = list(augment_paper(image, skeleton, flips=("none", "lr")))
    assert len(variants) == 24
    from skimage.measure import label
    for tag, im, sk in variants:
        scale = float(tag.split("_")[0][1:])
        h, w = round(H * scale), round(W * scale)
        expected = (h, w) if "_o0_" in tag or "_o180_" in tag else (w, h)
        assert im.shape == expected + (3,) and sk.shape == expected, tag
        assert sk.dtype == bool and _is_thin(sk), tag
        assert label(sk, connectivity=2).max() == 1, tag  # still one connected skeleton
        assert abs(sk.sum() - skeleton.sum() * scale) < 0.25 * skeleton.sum() * scale, tag
    by_tag = dict((t, (i, s)) for t, i, s in variants)
    np.testing.assert_array_equal(by_tag["s1_o90_fnone"][1], np.rot90(skeleton))
    np.testing.assert_array_equal(by_tag["s1_o0_flr"][0], image[:, ::-1])
    with pytest.raises(ValueError, match="unsupported"):
        list(augment_paper(image, skeleton, rotations=(45,)))


def test_every_layout_is_documented():
    assert set(LAYOUTS) == {"sk-large", "sk506", "sym-pascal", "wh-symmax", "symmax300"}
    assert all(layout.verified for layout in LAYOUTS.values())
