"""The comparison tools (compare_flux, compare_skeletonnet) and bench_flux on tiny settings
(compare_refinement runs in tests/test_skeletonnet_refinement.py, whose stage tests read its runs)."""

import json
import subprocess
import sys

import pytest

from tests.harness import TOOLS, load_tool


@pytest.mark.slow
def test_compare_flux_table_and_resume(tmp_path, capsys):
    compare = load_tool("compare_flux")
    args = ["--out", str(tmp_path), "--train-count", "8", "--heldout-count", "2", "--size", "64",
            "--rows", "flux_aspp", "binary_no_aspp", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=1",
            "--set", "data.val_fraction=0.25", "--set", "model.params.width=4"]
    assert compare.main(args) == 0
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [r["key"] for r in rows] == ["flux_aspp", "binary_no_aspp", "classical"]
    assert all(0 <= r["f1"] <= 1 and r["count"] == 2 for r in rows)
    assert json.loads((tmp_path / "flux_aspp" / "model.json").read_text())["output"] == "flux"
    binary = json.loads((tmp_path / "binary_no_aspp" / "model.json").read_text())
    assert binary["output"] == "binary"
    table = (tmp_path / "comparison.md").read_text()
    assert "context flux + ASPP (DeepFlux)" in table and "classical" in table
    # A second call reuses the cached rows (no training: the runs' files are not touched).
    stamp = (tmp_path / "flux_aspp" / "best.keras").stat().st_mtime
    assert compare.main(args) == 0
    assert (tmp_path / "flux_aspp" / "best.keras").stat().st_mtime == stamp


def test_bench_flux_last_line(tmp_path):
    done = subprocess.run([sys.executable, str(TOOLS / "bench_flux.py"), "--repeats", "5", "--height", "64",
                           "--width", "96", "--model", ""], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("postprocess_ms=") and float(last.split("=")[1]) > 0
    assert "Algorithm 1 + thinning" in done.stdout


@pytest.mark.slow
def test_compare_skeletonnet_table(tmp_path):
    compare = load_tool("compare_skeletonnet")
    args = ["--out", str(tmp_path), "--train-count", "6", "--heldout-count", "2", "--size", "32", "--resolution",
            "16", "--views", "2", "--rows", "pointwise", "both", "--set", "train.epochs=1", "--set",
            "train.steps_per_epoch=1", "--set", "data.batch_size=4", "--set", "model.params.width=4", "--set",
            "model.params.latent=16", "--set", "model.params.mlp_units=[16, 3]", "--set", "data.val_fraction=0.34"]
    assert compare.main(args) == 0
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [r["key"] for r in rows] == ["pointwise", "both"]
    assert rows[0]["count"] == rows[1]["count"] == 4 and all(r["cd"] > 0 for r in rows)
    assert "cd_curve" in rows[1] and "cd_curve" not in rows[0]
    assert "SkeletonNet (curve + sheet decoders" in (tmp_path / "comparison.md").read_text()
