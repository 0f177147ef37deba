"""tools/bench_losses.py: the child's JSON record, the overhead line, OOM / error cells."""

import pytest

from tests.harness import load_tool

pytestmark = pytest.mark.xdist_group("bench_losses")  # module fixtures built once (setup.cfg)


@pytest.fixture(scope="module")
def bench():
    return load_tool("bench_losses")


def _tiny(kind="step", **extra):
    cfg = {"kind": kind, "dims": 2, "size": [32, 32], "batch": 2, "seed": 0, "tube_radius": 2,
           "memory_limit_gb": None, "classes": 3}
    if kind in ("step", "timing"):
        cfg.update(base=4, depth=2, decoder_convs=1, loss="skeleton_recall", steps=2, warmup=1, iterations=3)
    else:
        cfg.update(min_batches=2, min_seconds=0.1)
    cfg.update(extra)
    return cfg


@pytest.mark.slow
def test_step_child_reports_positive_fields(bench):
    result = bench.spawn(_tiny(), timeout=300)
    assert result["status"] == "ok", result
    for key in ("step_s", "step_ms", "samples_per_s", "peak_rss_mb", "tube_s_per_batch", "tube_ms_per_batch",
                "params", "wall_s"):
        assert result[key] > 0, key
    assert (result["loss"], result["dims"], result["classes"]) == ("skeleton_recall", 2, 3)


@pytest.mark.slow
def test_timing_child_interleaves_losses(bench):
    job = _tiny(kind="timing", losses=["dice_ce", "skeleton_recall", "cldice"])
    timing = bench.spawn(job, timeout=300)
    assert timing["status"] == "ok", timing
    assert set(timing["step_s"]) == {"dice_ce", "skeleton_recall", "cldice"}
    assert all(v > 0 for v in timing["step_s"].values())


def test_merge_timing(bench):
    rows = [{"status": "ok", "loss": "dice_ce", "batch": 4, "step_s": 0.3, "step_ms": 300.0},
            {"status": "oom", "loss": "cldice"}]
    bench.merge_timing(rows, {"status": "ok", "steps": 9, "step_s": {"dice_ce": 0.2}})
    assert rows[0]["step_s"] == 0.2 and rows[0]["alone_step_s"] == 0.3 and rows[0]["samples_per_s"] == 20.0
    assert rows[0]["timing"] == "interleaved" and "timing" not in rows[1]
    rows = [{"status": "ok", "loss": "dice_ce", "batch": 4, "step_s": 0.3, "step_ms": 300.0}]
    bench.merge_timing(rows, {"status": "oom"})
    assert rows[0]["step_s"] == 0.3 and rows[0]["timing"] == "alone (interleaved run: oom)"
    assert "300 † |" in "\n".join(bench.loss_table([{**rows[0], "kind": "step", "dims": 2, "classes": 3,
                                                       "peak_rss_mb": 1.0}]))


@pytest.mark.slow
def test_pipeline_child_reports_rates(bench):
    result = bench.spawn(_tiny("pipeline"), timeout=300)
    assert result["status"] == "ok", result
    assert result["plain_samples_per_s"] > 0 and result["tube_samples_per_s"] > 0 and result["peak_rss_mb"] > 0


def test_overhead_line_format(bench):
    line = bench.format_overhead_line(0.100, 0.105, 0.001, 0.148)
    assert line == "recall_overhead=6.0% cldice_overhead=48.0%"
    assert bench.format_overhead_line(0.2, 0.19, None, 0.2) == "recall_overhead=-5.0% cldice_overhead=0.0%"
    assert bench.format_overhead_line(None, 0.1, 0.0, 0.1) == "recall_overhead=n/a cldice_overhead=n/a"


def test_classify_failures(bench):
    assert bench.classify(-9, "", "")["status"] == "oom"
    assert bench.classify(-6, "", "terminate called after throwing an instance of 'std::bad_alloc'")["status"] == "oom"
    assert bench.classify(bench.OOM_EXIT, '{"status": "oom", "rss_mb": 50.0}', "")["status"] == "oom"
    error = bench.classify(1, "", "Traceback (most recent call last):\n  ...\nValueError: bad size\n")
    assert error == {"status": "error", "detail": "ValueError: bad size"}
    assert bench.classify(0, '{"status": "ok", "step_s": 1.0}\n', "")["step_s"] == 1.0


def test_memory_limit_gives_oom_cell_not_a_crash(bench, capsys):
    code = bench.main(["--dims", "2", "--classes", "3", "--losses", "dice_ce", "cldice", "--size2d", "32",
                       "--steps", "1", "--warmup", "0", "--no-pipeline", "--memory-limit-gb", "0.01"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| 2-D")]
    assert len(rows) == 2 and all("| OOM |" in row for row in rows), out
    assert out.rstrip().splitlines()[-1] == "recall_overhead=n/a cldice_overhead=n/a"


def test_tables_render_results(bench):
    ok = {"status": "ok", "kind": "step", "dims": 2, "classes": 3, "size": [128, 128], "batch": 4}
    results = [
        {**ok, "loss": "dice_ce", "step_s": 0.1, "step_ms": 100.0, "samples_per_s": 40.0, "peak_rss_mb": 900.0,
         "tube_ms_per_batch": None},
        {**ok, "loss": "skeleton_recall", "step_s": 0.102, "step_ms": 102.0, "samples_per_s": 39.2,
         "peak_rss_mb": 910.0, "tube_s_per_batch": 0.002, "tube_ms_per_batch": 2.0},
        {"status": "error", "kind": "step", "dims": 2, "classes": 3, "loss": "cldice", "detail": "boom"},
        {"status": "ok", "kind": "pipeline", "dims": 2, "classes": 3, "plain_samples_per_s": 160.0,
         "tube_samples_per_s": 140.0},
    ]
    table = "\n".join(bench.loss_table(results))
    assert "| +2.0% | +4.0% | 910 | +10 | 2.0 |" in table
    assert "| cldice | error |" in table and "boom" in table
    assert "| 160.0 | 140.0 | 40.0 | 39.2 | 3.6× |" in "\n".join(bench.pipeline_table(results))
    assert bench.overhead_from(results) == "recall_overhead=4.0% cldice_overhead=n/a"
