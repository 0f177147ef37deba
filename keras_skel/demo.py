"""`run_demo`: the README's main job, end to end on a CPU.

By default it uses the default shipped model (`DEFAULT_MODEL` in `saved_models/`), so it takes seconds:

1. synthesize held-out noisy test shapes (seed 1001; training never draws that seed);
2. skeletonize them with that model and with the classical baseline;
3. score both (exact and 2-px F1, reports with overlays) and write `comparison.png`.

With `train_minutes`, it first trains the `unet_shapes` recipe for that long on fresh synthetic
shapes and uses that model instead (the whole training path in a few minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_skel.errors import ConfigError

__all__ = ["run_demo", "DEFAULT_MODEL"]

TEST_SEED = 1001
# The shipped model `predict` and `demo` use when none is named.
DEFAULT_MODEL = "denoiser_shapes"


def run_demo(out_dir: str | Path = "demo", model: str = DEFAULT_MODEL, count: int = 16, size: int = 256,
             train_minutes: float | None = None) -> str:
    """Runs the demo into `out_dir` and returns a printable summary.

    Args:
        out_dir: folder for `test_noisy_<size>/`, `eval_classical/`, `eval_model/`, `comparison.png`,
            `summary.json` (and `run/` when training). Must be new or a previous demo folder.
        model: the model to compare with classical (anything `keras_skel.load` accepts).
        count: number of held-out test images.
        size: their side length.
        train_minutes: train a model for this long first and use it instead of `model`.

    Returns:
        The comparison table as text.
    """
    from keras_skel.data.folders import find_pairs, load_pair
    from keras_skel.data.synthetic import DATASET_INFO, write_shapes_dataset
    from keras_skel.evaluation import evaluate, format_report
    from keras_skel.inference import load
    from keras_skel.visualize import LEGEND, overlay, save_grid

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not any(out.glob("test_noisy_*")):
        raise ConfigError(f"{out} exists and is not a keras-skel demo folder; choose another --out")
    if not train_minutes:
        learned = load(model)  # fail before making anything when the model is missing
    test_dir = out / f"test_noisy_{size}"
    info = test_dir / DATASET_INFO
    wanted = dict(count=count, size=[size, size], seed=TEST_SEED, noise=2.0)
    made = json.loads(info.read_text()) if info.is_file() else {}
    if any(made.get(k) != v for k, v in wanted.items()):  # new, interrupted, or other settings
        write_shapes_dataset(test_dir, count, (size, size), seed=TEST_SEED, noise=2.0, progress=True,
                             overwrite=True)

    lines = []
    if train_minutes:
        from keras_skel.config import load_config
        from keras_skel.training import train

        cfg = load_config("unet_shapes", [f"train.max_minutes={train_minutes}", "train.epochs=1000",
                                          "train.early_stopping_patience=null"])
        result = train(cfg, out / "run", overwrite=True, verbose=2,
                       command=f"keras-skel demo --out {out} --train-minutes {train_minutes}")
        learned = load(out / "run")
        lines += [f"trained {result.epochs} epochs in {result.train_seconds:.0f} s "
                  f"(threshold {result.threshold:.2f} chosen on validation)", ""]

    models = {"classical": load("classical"), "model": learned}
    reports = {name: evaluate(m, test_dir, tolerance=2.0, report_dir=out / f"eval_{name}", overwrite=True)
               for name, m in models.items()}

    pictures, titles = [], []
    for pair in list(find_pairs(test_dir))[:6]:
        shape, gt = load_pair(pair)
        for name, m in models.items():
            pictures.append(overlay(shape, m.skeletonize(shape), gt))
            row = next(r for r in reports[name]["per_image"] if r["id"] == pair.id)
            label = "classical" if name == "classical" else "learned"
            titles.append(f"{pair.id} {label}: F1 {row['exact_f1']:.2f} / {row['tolerant_f1']:.2f}")
    save_grid(pictures, out / "comparison.png", titles, columns=4,
              suptitle=f"held-out noisy shapes, exact / 2-px F1 — {LEGEND}")

    lines += [format_report(reports["classical"]), "", format_report(reports["model"]), ""]
    lines.append(f"picture: {out / 'comparison.png'}  (reports: {out / 'eval_classical'}, {out / 'eval_model'})")
    (out / "summary.json").write_text(json.dumps(
        {name: {"model": r["model"], "exact": r["exact"], "tolerant": r["tolerant"]} for name, r in reports.items()},
        indent=2))
    return "\n".join(lines)
