"""`run_demo`: the README's main job on built-in defaults, end to end on a CPU.

1. synthesize a held-out noisy test set (seed 1001: never drawn by training, which uses
   seeds 0 and 1);
2. train the `unet_shapes` recipe for `minutes` minutes on fresh synthetic shapes;
3. evaluate the trained model and the classical baseline on the test set (exact and 2-px F1);
4. write `comparison.png`: for a few test shapes, classical vs learned beside the GT.
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_skel.errors import ConfigError

__all__ = ["run_demo"]

TEST_SEED = 1001
IMAGE_SIZE = 128


def run_demo(out_dir: str | Path = "demo", minutes: float = 2.0, count: int = 48) -> str:
    """Runs the demo into `out_dir` and returns a printable summary.

    Args:
        out_dir: folder for `test_noisy/`, `run/`, `eval_classical/`, `eval_unet/`,
            `comparison.png` and `summary.json`. Must be new or a previous demo folder.
        minutes: training budget.
        count: number of held-out test images.

    Returns:
        The comparison table as text.
    """
    from keras_skel.config import load_config
    from keras_skel.data.folders import find_pairs, load_pair
    from keras_skel.data.synthetic import write_shapes_dataset
    from keras_skel.evaluation import evaluate, format_report
    from keras_skel.inference import load
    from keras_skel.training import train
    from keras_skel.visualize import LEGEND, overlay, save_grid

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "summary.json").exists() and not (out / "run").exists():
        raise ConfigError(f"{out} exists and is not a keras-skel demo folder; choose another --out")
    test_dir = out / "test_noisy"
    if not (test_dir / "shapes").exists():
        write_shapes_dataset(test_dir, count, (IMAGE_SIZE, IMAGE_SIZE), seed=TEST_SEED, noise=2.0, progress=True)

    cfg = load_config("unet_shapes", [f"train.max_minutes={minutes}", "train.epochs=1000",
                                      "train.early_stopping_patience=null"])
    result = train(cfg, out / "run", overwrite=True, verbose=2,
                   command=f"keras-skel demo --out {out} --minutes {minutes} --count {count}")

    reports = {}
    for name, spec in (("classical", "classical"), ("unet", out / "run")):
        reports[name] = evaluate(spec, test_dir, tolerance=2.0, report_dir=out / f"eval_{name}")

    models = {"classical": load("classical"), "unet": load(out / "run")}
    pictures, titles = [], []
    for pair in list(find_pairs(test_dir))[:6]:
        shape, gt = load_pair(pair)
        for name, model in models.items():
            pictures.append(overlay(shape, model.skeletonize(shape), gt))
            row = next(r for r in reports[name]["per_image"] if r["id"] == pair.id)
            titles.append(f"{pair.id} {name}: F1 {row['exact_f1']:.2f} / {row['tolerant_f1']:.2f}")
    save_grid(pictures, out / "comparison.png", titles, columns=4,
              suptitle=f"held-out noisy shapes, exact / 2-px F1 — {LEGEND}")

    lines = [f"trained {result.epochs} epochs in {result.train_seconds:.0f} s "
             f"(threshold {result.threshold:.2f} chosen on validation)", ""]
    lines += [format_report(reports["classical"]), "", format_report(reports["unet"]), ""]
    lines.append(f"picture: {out / 'comparison.png'}")
    summary = "\n".join(lines)
    (out / "summary.json").write_text(json.dumps(dict(
        train_seconds=result.train_seconds, epochs=result.epochs, threshold=result.threshold,
        classical={k: reports["classical"][k] for k in ("exact", "tolerant")},
        unet={k: reports["unet"][k] for k in ("exact", "tolerant")},
    ), indent=2))
    return summary
