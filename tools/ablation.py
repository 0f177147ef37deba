"""CANet ablation on held-out synthetic shapes: one change per row, a fixed training budget each.

Every trained row starts from the `canet_ablation` recipe (the paper's CANet recipe at 128²
with gradient clipping, 400 steps of 8) and changes one thing; rows are scored on synthetic shapes whose variants
never appear in training (`data synth --split heldout`: birds and Computer Modern glyphs),
clean and with mixed boundary noise, by exact and 2-px-tolerant dataset-level F1 (DESIGN.md §3),
beside the classical baseline (skeletonize + prune) on the same images.

Resumable: each row trains into `OUT/<row>/` (an interrupted row resumes from its backup, a
finished one is kept) and caches its scores in `OUT/<row>/heldout.json`, so running the
command again finishes the table. The table is printed and written to `OUT/ablation.md`
(and `OUT/ablation.json`).

Usage:
    python tools/ablation.py --out runs/ablation             # the whole table
    python tools/ablation.py --out runs/ablation --rows ca35,resunet
    python tools/ablation.py --out runs/ablation --list       # the rows and their changes
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

# Rows: name → (description, overrides of canet_ablation). None = no training (post-processing
# only); "ensemble:<row>" = the 3-member ensemble of a row (member 1 is that row's run);
# "tta:<row>" = that row's model with D4 TTA; "model:<name>" = a shipped model as it is.
ROWS: dict[str, tuple[str, object]] = {
    "identity_thin": ("network = identity, threshold + thin", None),
    "identity_gt_rule": ("network = identity, thin + prune 10 px + thin (= classical)", None),
    "unet": ("U-Net (plain double-conv blocks, no attention)",
             ["model.params.residual=false", "model.params.attention_stages=[]"]),
    "resunet": ("U-Net + ResBlocks", ["model.params.attention_stages=[]"]),
    "ca35": ("+ context attention at stages 3-5 (CANet, base row)", []),
    "ca15": ("+ context attention at stages 1-5 (batch 2: memory)",
             ["model.params.attention_stages=[1,2,3,4,5]", "data.batch_size=2"]),
    "input_shape": ("CANet, input: shape", ["model.params.input_kind=shape"]),
    "input_distance": ("CANet, input: distance", ["model.params.input_kind=distance"]),
    "input_shape_distance": ("CANet, input: shape + distance", ["model.params.input_kind=shape_distance"]),
    "loss_focal": ("CANet, loss: weighted focal only", ["loss.params.dice_weight=0.0"]),
    "loss_dice": ("CANet, loss: Dice only", ["loss.params.focal_weight=0.0"]),
    "w_swapped": ("CANet, focal weights w_pos 0.01 / w_neg 0.99 (Table 5 as printed)",
                  ["loss.params.w_pos=0.01", "loss.params.w_neg=0.99"]),
    "sgd_paper": ("CANet, SGD 0.02 / momentum 0.9 without gradient clipping (500 steps)",
                  ["train.clipnorm=null", "train.epochs=10"]),
    "ensemble3": ("CANet, ensemble of 3 (seeds 0-2, probabilities averaged)", "ensemble:ca35"),
    "tta": ("CANet + D4 test-time augmentation (ca35's threshold, not re-chosen)", "tta:ca35"),
    "shipped_canet": ("the shipped canet_shapes (256² recipe, gated), for reference", "model:canet_shapes"),
    "shipped_unet": ("the shipped unet_shapes v2 (gated), for reference", "model:unet_shapes"),
    "shape_target": ("CANet predicting the clean shape + ground-truth rule (clean-shape route)",
                     ["data.target=shape", "model.params.input_kind=shape_distance",
                      "model.params.input_skip=true", "loss.params.w_pos=0.5", "loss.params.w_neg=0.5",
                      "train.optimizer=adam", "train.learning_rate=0.001", "train.clipnorm=null",
                      "data.clean_fraction=0.3", "eval.prune_length=10",
                      "eval.thresholds=[0.3,0.4,0.5,0.6,0.7]"]),
}

HELDOUT = {"clean": dict(noise=0.0), "noisy": dict(noise=2.0)}


def _heldout_sets(out: Path, count: int, size: int) -> dict[str, Path]:
    from keras_skel.data.synthetic import write_shapes_dataset

    sets = {}
    for name, kwargs in HELDOUT.items():
        folder = out / "heldout" / name
        if not (folder / "dataset.json").is_file():
            write_shapes_dataset(folder, count, (size, size), seed=2024, split="heldout", noise_style="mixed",
                                 progress=False, overwrite=True, **kwargs)
        sets[name] = folder
    return sets


def _score(skeletonizer, folder: Path) -> dict:
    from keras_skel.data.folders import load_folder
    from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator

    exact, tolerant = SkeletonF1Accumulator(0.0), SkeletonF1Accumulator(2.0)
    for _, shape, gt in load_folder(folder):
        skeleton = skeletonizer.skeletonize(shape)
        exact.update(skeleton, gt)
        tolerant.update(skeleton, gt)
    return {"exact": round(exact.result()["f1"], 4), "2px": round(tolerant.result()["f1"], 4)}


class _Identity:
    """The post-processing alone: the input shape is the 'probability'."""

    def __init__(self, prune_length: int):
        self.prune_length = prune_length

    def skeletonize(self, shape):
        import numpy as np

        from keras_skel.inference import skeleton_from_probability

        return skeleton_from_probability(np.asarray(shape, np.float32), 0.5, self.prune_length)


EXTRA: list[str] = []  # --set overrides applied to every trained row (e.g. a smaller budget)


def _train_row(name: str, overrides: list[str], out: Path) -> float:
    from keras_skel.config import load_config
    from keras_skel.training import train

    run_dir = out / name
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text()).get("train_seconds", float("nan"))
    overrides = [*overrides, *EXTRA]
    cfg = load_config("canet_ablation", overrides)
    command = "keras-skel train canet_ablation " + " ".join(f"--set {o}" for o in overrides) + f" --out {run_dir}"
    result = train(cfg, run_dir, verbose=2, command=command)
    return result.train_seconds


def _ensemble_row(base: str, out: Path) -> tuple[Path, float]:
    from keras_skel.config import load_config
    from keras_skel.ensemble import train_folds

    folds_dir = out / "ensemble3"
    member1 = folds_dir / "fold_1"
    if not (member1 / "metrics.json").is_file():
        # Member 1 is the base row's run (same recipe, same seed): copied, not retrained.
        if member1.exists():
            shutil.rmtree(member1)
        shutil.copytree(out / base, member1, ignore=shutil.ignore_patterns("backup", "logs"))
    overrides = [*ROWS[base][1], *EXTRA]
    results = train_folds(load_config("canet_ablation", overrides), folds_dir, 3, verbose=2,
                          command=f"keras-skel train canet_ablation --folds 3 --out {folds_dir}")
    return folds_dir, sum(r.train_seconds for r in results)


def run_row(name: str, out: Path, sets: dict[str, Path]) -> dict:
    from keras_skel.inference import load

    cache = out / name / "heldout.json"
    if cache.is_file():
        return {**json.loads(cache.read_text()), "description": ROWS[name][0]}
    description, spec = ROWS[name]
    start = time.monotonic()
    seconds = 0.0
    if spec is None:
        model = _Identity(10 if name == "identity_gt_rule" else 0)
    elif isinstance(spec, str) and spec.startswith("ensemble:"):
        base = spec.split(":", 1)[1]
        run_row(base, out, sets)
        folds_dir, seconds = _ensemble_row(base, out)
        model = load(folds_dir)
    elif isinstance(spec, str) and spec.startswith("model:"):
        model = load(spec.split(":", 1)[1])  # a shipped model, evaluated as it is
    elif isinstance(spec, str) and spec.startswith("tta:"):
        base = spec.split(":", 1)[1]
        run_row(base, out, sets)
        seconds = json.loads((out / base / "heldout.json").read_text())["train_seconds"]
        model = load(out / base, tta=True)
    else:
        seconds = _train_row(name, list(spec), out)
        model = load(out / name)
    row = {"row": name, "description": description, "train_seconds": round(seconds, 1)}
    for set_name, folder in sets.items():
        row[set_name] = _score(model, folder)
    row["wall_seconds"] = round(time.monotonic() - start, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row, indent=2))
    return row


def table(rows: list[dict], classical: dict, count: int) -> str:
    lines = ["| row | change | clean exact | clean 2 px | noisy exact | noisy 2 px | training |",
             "|---|---|---|---|---|---|---|"]
    lines.append(f"| classical | skeletonize + prune (baseline) | {classical['clean']['exact']:.3f} | "
                 f"{classical['clean']['2px']:.3f} | {classical['noisy']['exact']:.3f} | "
                 f"{classical['noisy']['2px']:.3f} | - |")
    for r in rows:
        minutes = f"{r['train_seconds'] / 60:.1f} min" if r["train_seconds"] else "-"
        lines.append(f"| {r['row']} | {r['description']} | {r['clean']['exact']:.3f} | {r['clean']['2px']:.3f} | "
                     f"{r['noisy']['exact']:.3f} | {r['noisy']['2px']:.3f} | {minutes} |")
    lines.append("")
    lines.append(f"Held-out: {count} + {count} synthetic 128² shapes (`--split heldout`: birds, Computer Modern "
                 "glyphs), clean and with mixed boundary noise up to 2 px, seed 2024; dataset-level F1.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="folder of the row runs and the table")
    parser.add_argument("--rows", default=None, help="comma-separated rows (default: all, in order)")
    parser.add_argument("--count", type=int, default=64, help="held-out images per set (clean, noisy)")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every trained row (repeatable), e.g. a smaller budget")
    args = parser.parse_args(argv)
    if args.list:
        for name, (description, spec) in ROWS.items():
            print(f"{name:22s} {description}   {spec if spec is not None else ''}")
        return 0
    names = list(ROWS) if not args.rows else [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}; see --list")
    EXTRA[:] = args.overrides
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = _heldout_sets(out, args.count, 128)

    from keras_skel.inference import load

    classical_cache = out / "classical.json"
    if classical_cache.is_file():
        classical = json.loads(classical_cache.read_text())
    else:
        classical = {name: _score(load("classical"), folder) for name, folder in sets.items()}
        classical_cache.write_text(json.dumps(classical, indent=2))
    rows = []
    for name in names:
        print(f"== {name}: {ROWS[name][0]}", flush=True)
        rows.append(run_row(name, out, sets))
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows, classical, args.count)
    (out / "ablation.md").write_text(text + "\n")
    (out / "ablation.json").write_text(json.dumps({"classical": classical, "rows": rows}, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
