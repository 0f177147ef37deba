import json

import pytest

from keras_skel.demo import run_demo
from keras_skel.errors import ConfigError


def test_demo_with_an_exported_model(exported_tiny, tmp_path):
    out = tmp_path / "demo"
    text = run_demo(out, model=str(exported_tiny.saved_model), count=3, size=64)
    assert "model classical" in text and "comparison.png" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classical"]["exact"]["f1"] < 1.0  # noisy inputs: the GT rule is not reproduced
    assert (out / "comparison.png").stat().st_size > 0
    assert (out / "eval_model" / "report.json").is_file()
    run_demo(out, model=str(exported_tiny.saved_model), count=3, size=64)  # a rerun reuses the folder


def test_demo_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a keras-skel demo folder"):
        run_demo(tmp_path, model="classical", count=2, size=64)


@pytest.mark.slow
def test_demo_training_path(tmp_path):
    text = run_demo(tmp_path / "d", count=2, size=64, train_minutes=0.1)
    assert "trained" in text and (tmp_path / "d" / "run" / "best.keras").is_file()
