"""DeepFlux's ablation (Table 3) on synthetic natural images: context flux vs binary
classification of the dilated skeleton, each with and without ASPP; same backbone, data,
budget and seed (recipe `deepflux_compare`), plus the classical pipeline (Otsu threshold +
skeletonize + prune).

The binary rows learn the skeleton dilated by the same radius r the flux uses (7), with a
class-balanced cross-entropy (`focal` with γ = 0; weights 0.85 / 0.15, about the share of
background / dilated skeleton), and recover the skeleton by thresholding (threshold chosen on
validation) and thinning — the paper's "binary cross-entropy on the same dilated ground truth".

Scores on a held-out folder (split `heldout`: shapes, photographs and textures no training
sample uses): skeleton F1 of each model's 1-px `skeleton` output within `eval.tolerance` px
(dataset-level), and the benchmarks' protocol on its score map (ODS, 0.01 × diagonal).

Resumable: data folders, runs (`OUT/<row>/`) and held-out scores (`OUT/<row>/heldout.json`)
are kept; the table goes to stdout, `OUT/comparison.md` and `OUT/comparison.json`.

Usage:
    python tools/compare_flux.py --out runs/flux_compare [--set train.epochs=2 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROWS = {
    "flux_aspp": ("context flux + ASPP (DeepFlux)", ["data.target=flux", "loss.name=flux", "model.params.aspp=true"]),
    "flux_no_aspp": ("context flux, no ASPP", ["data.target=flux", "loss.name=flux", "model.params.aspp=false"]),
    "binary_aspp": ("binary (dilated skeleton) + ASPP",
                    ["data.target=binary", "loss.name=focal", "loss.params={w_pos: 0.85, w_neg: 0.15, gamma: 0.0}",
                     "model.params.aspp=true", "eval.thresholds=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]"]),
    "binary_no_aspp": ("binary (dilated skeleton), no ASPP",
                       ["data.target=binary", "loss.name=focal",
                        "loss.params={w_pos: 0.85, w_neg: 0.15, gamma: 0.0}", "model.params.aspp=false",
                        "eval.thresholds=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]"]),
}


def _data(out: Path, name: str, count: int, size: int, seed: int, split: str) -> Path:
    from keras_skel.data.natural import write_natural_dataset

    folder = out / f"{name}_{size}_s{seed}_n{count}"
    if not (folder / "dataset.json").exists():
        write_natural_dataset(folder, count, (size, size), seed=seed, split=split, overwrite=True, workers=2,
                              progress=False)
    return folder


def _row(key: str, train_dir: Path, heldout: Path, out: Path, extra: list[str]) -> dict:
    from keras_skel.config import load_config
    from keras_skel.detection import evaluate_natural_folder
    from keras_skel.training import train

    label, overrides = ROWS[key]
    overrides = [f"data.train_dir={train_dir}", *overrides, *extra]
    run_dir = out / key
    cache = run_dir / "heldout.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cfg = load_config("deepflux_compare", overrides)
    if not (run_dir / "metrics.json").exists():  # written last: the run and its scoring finished
        train(cfg, run_dir, verbose=2, command=" ".join(["keras-skel", "train", "deepflux_compare", *overrides]))
    report = evaluate_natural_folder(run_dir, heldout, tolerance=cfg.eval.tolerance)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row = dict(key=key, label=label, count=report["count"], tolerance_px=report["tolerance_px"],
               f1=report["skeleton"]["f1"], precision=report["skeleton"]["precision"],
               recall=report["skeleton"]["recall"], ods=report["benchmark"]["ods_f"],
               threshold=json.loads((run_dir / "model.json").read_text())["threshold"],
               train_seconds=metrics["train_seconds"], step_seconds=metrics.get("step_seconds"))
    cache.write_text(json.dumps(row, indent=2))
    return row


def _classical(heldout: Path, out: Path, tolerance: float) -> dict:
    from keras_skel.detection import evaluate_natural_folder

    cache = out / "classical.json"
    if cache.exists():
        return json.loads(cache.read_text())
    report = evaluate_natural_folder("classical", heldout, tolerance=tolerance)
    row = dict(key="classical", label="classical: Otsu + skeletonize + prune", count=report["count"],
               tolerance_px=tolerance, f1=report["skeleton"]["f1"], precision=report["skeleton"]["precision"],
               recall=report["skeleton"]["recall"], ods=report["benchmark"]["ods_f"], threshold=None,
               train_seconds=None, step_seconds=None)
    cache.write_text(json.dumps(row, indent=2))
    return row


def format_table(rows: list[dict]) -> str:
    lines = [f"| row | F1 within {rows[0]['tolerance_px']:g} px | precision | recall | ODS (0.01 diag) | "
             "threshold | training s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        threshold = "" if r["threshold"] is None else f"{r['threshold']:g}"
        seconds = "" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        lines.append(f"| {r['label']} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['ods']:.3f} "
                     f"| {threshold} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--train-count", type=int, default=2000)
    parser.add_argument("--heldout-count", type=int, default=100)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra recipe override for every row (key=value), applied last")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_dir = _data(args.out, "train", args.train_count, args.size, 10, "train")
    heldout = _data(args.out, "heldout", args.heldout_count, args.size, 11, "heldout")
    size = [f"data.image_size=[{args.size}, {args.size}]"]
    rows = [_row(key, train_dir, heldout, args.out, size + args.overrides) for key in args.rows]
    rows.append(_classical(heldout, args.out, rows[0]["tolerance_px"]))
    table = format_table(rows)
    print(table)
    (args.out / "comparison.md").write_text(table + "\n")
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
