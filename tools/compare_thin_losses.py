"""Loss comparison for thin-structure segmentation: Dice + CE vs + Skeleton Recall vs + clDice.

Trains the same model on the same data with the same budget once per loss (the recipes
`thin_dice_ce`, `thin_recall`, `thin_cldice`, or the ones given) and scores each on a held-out
synthetic folder (`data synth --task thin`, a seed no training or validation sample uses) by
Dice, clDice and Betti-number errors β0 / β1 per class, averaged over images and classes
(`keras_skel.metrics.topology`). Training time and the median step time come from each run.

Resumable: each loss trains into `OUT/<recipe>/` (an interrupted run resumes from its backup, a
finished one is kept) and its held-out scores are cached in `OUT/<recipe>/heldout.json`; the
table is printed and written to `OUT/comparison.md` and `OUT/comparison.json`.

Usage:
    python tools/compare_thin_losses.py --out runs/thin_losses      # the three 2-D recipes
    python tools/compare_thin_losses.py --out runs/thin3d --recipe thin3d_recall \\
        --losses dice_ce skeleton_recall cldice   # one recipe, one row per loss (default params)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_RECIPES = ("thin_dice_ce", "thin_recall", "thin_cldice")


def _heldout_folder(out: Path, cfg, count: int, seed: int) -> Path:
    from keras_skel.data.thin import write_thin_dataset

    dims = "x".join(str(s) for s in cfg.data.image_size)
    folder = out / f"heldout_{dims}_k{cfg.data.classes}_{cfg.data.structure}_s{seed}_n{count}"
    if not (folder / "dataset.json").exists():
        kind = None if cfg.data.structure == "mixed" else cfg.data.structure
        write_thin_dataset(folder, count, tuple(cfg.data.image_size), seed=seed, classes=cfg.data.classes,
                           kind=kind, progress=False, overwrite=True)
    return folder


def _row(recipe: str, overrides: list[str], out: Path, count: int, seed: int, name: str | None = None) -> dict:
    from keras_skel.config import load_config
    from keras_skel.segmentation import evaluate_folder
    from keras_skel.training import train

    cfg = load_config(recipe, overrides)
    run_dir = out / (name or recipe)
    cache = run_dir / "heldout.json"
    if cache.exists():
        return json.loads(cache.read_text())
    if not (run_dir / "model.json").exists():
        train(cfg, run_dir, verbose=2, command=" ".join(["keras-skel", "train", recipe, *overrides]))
    folder = _heldout_folder(out, cfg, count, seed)
    report = evaluate_folder(run_dir, folder)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row = dict(recipe=recipe, loss=cfg.loss.name, loss_params=dict(cfg.loss.params), heldout=str(folder),
               count=report["count"], dice=report["dice"], cldice=report["cldice"], betti0=report["betti0"],
               betti1=report["betti1"], precision=report["precision"], recall=report["recall"],
               per_class=report["per_class"], train_seconds=metrics["train_seconds"],
               step_seconds=metrics.get("step_seconds"), val=metrics["val"])
    cache.write_text(json.dumps(row, indent=2))
    return row


def format_table(rows: list[dict]) -> str:
    lines = ["| loss (recipe) | Dice | clDice | β0 error | β1 error | pixel precision | pixel recall | step ms | "
             "train min |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        step = f"{1000 * r['step_seconds']:.0f}" if r.get("step_seconds") else "–"
        pr = (f"{r['precision']:.3f} | {r['recall']:.3f}" if "precision" in r else "– | –")
        lines.append(f"| {r['loss']} ({r['recipe']}) | {r['dice']:.4f} | {r['cldice']:.4f} | {r['betti0']:.2f} | "
                     f"{r['betti1']:.2f} | {pr} | {step} | {r['train_seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs and the table")
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES), help="one row per recipe")
    parser.add_argument("--recipe", help="with --losses: one recipe, one row per loss")
    parser.add_argument("--losses", nargs="+", help="loss names (their default parameters) for --recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override for every recipe")
    parser.add_argument("--count", type=int, default=100, help="held-out samples")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the held-out folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if bool(args.recipe) != bool(args.losses):
        parser.error("--recipe and --losses go together")
    if args.recipe:
        # The --set overrides come last, so they can tune a loss (e.g. loss.params.recall_weight=0.3).
        plan = [(args.recipe, [f"loss.name={loss}", "loss.params={}", *args.overrides], f"{args.recipe}_{loss}")
                for loss in args.losses]
    else:
        plan = [(recipe, args.overrides, recipe) for recipe in args.recipes]
    rows = []
    for recipe, overrides, name in plan:
        print(f"== {name}", flush=True)
        rows.append(_row(recipe, overrides, args.out, args.count, args.seed, name))
        rows[-1]["recipe"] = name
        print(format_table(rows[-1:]), flush=True)
    table = format_table(rows)
    first = rows[0]
    note = f"\n\n{first['count']} held-out samples: {first['heldout']}; means over images and classes."
    (args.out / "comparison.md").write_text(table + note + "\n")
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    print(table + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
