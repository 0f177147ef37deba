"""SkeletonNet's Table 1 on synthetic objects: skeletal point generation by point-wise fitting,
line-only, square-only, a shared line-and-square decoder, and both decoders (SkeletonNet), with
and without the Laplacian regularizer; same encoder, data, budget and seed (recipe
`skeletonnet_points`).

Scores on held-out objects (another seed, every view): Chamfer distance between predicted and
ground-truth meso-skeleton points (means of squared nearest-neighbour distances in the unit
cube [-0.5, 0.5]³; `skeletal_points.evaluate_points`); for the two-decoder rows also the
curve and sheet decoders against their own subsets.

Resumable: data folders, runs (`OUT/<row>/`) and scores (`OUT/<row>/heldout.json`) are kept;
the table goes to stdout, `OUT/comparison.md` and `OUT/comparison.json`.

Usage:
    python tools/compare_skeletonnet.py --out runs/skeletonnet_table1 [--set train.epochs=2 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROWS = {
    "pointwise": ("point-wise fitting", ["model.params.decoders=pointwise"]),
    "lines": ("line-wise fitting (+ Laplacian)", ["model.params.decoders=lines"]),
    "squares": ("square-wise fitting (+ Laplacian)", ["model.params.decoders=squares"]),
    "shared": ("shared line-and-square fitting (+ Laplacian)", ["model.params.decoders=shared"]),
    "both_no_laplacian": ("SkeletonNet without Laplacian", ["model.params.decoders=both", "loss.params.alpha=0.0"]),
    "both": ("SkeletonNet (curve + sheet decoders, Laplacian 0.2)", ["model.params.decoders=both"]),
}


def _data(out: Path, name: str, count: int, seed: int, size: int, resolution: int, views: int) -> Path:
    from keras_skel.data.volumes import write_volumes_dataset

    folder = out / f"{name}_s{seed}_n{count}_{size}px_r{resolution}"
    if not (folder / "dataset.json").exists():
        write_volumes_dataset(folder, count, seed=seed, resolution=resolution, image_size=size, views=views,
                              overwrite=True, workers=2, progress=False)
    return folder


def _row(key: str, train_dir: Path, heldout: Path, out: Path, extra: list[str]) -> dict:
    from keras_skel.config import load_config
    from keras_skel.data.volumes import load_volumes_folder
    from keras_skel.skeletal_points import evaluate_points
    from keras_skel.training import train

    label, overrides = ROWS[key]
    overrides = [f"data.train_dir={train_dir}", *overrides, *extra]
    run_dir = out / key
    cache = run_dir / "heldout.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cfg = load_config("skeletonnet_points", overrides)
    if not (run_dir / "metrics.json").exists():  # written last: the run and its scoring finished
        train(cfg, run_dir, verbose=2, command=" ".join(["keras-skel", "train", "skeletonnet_points", *overrides]))
    import keras

    import keras_skel.layers  # noqa: F401
    import keras_skel.losses  # noqa: F401

    model = keras.saving.load_model(run_dir / "best.keras", compile=False)
    scores = evaluate_points(model, load_volumes_folder(heldout)[1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row = dict(key=key, label=label, **scores, train_seconds=metrics["train_seconds"],
               step_seconds=metrics.get("step_seconds"), params=int(model.count_params()))
    cache.write_text(json.dumps(row, indent=2))
    return row


def format_table(rows: list[dict]) -> str:
    lines = ["| variant | CD ×1e-3 (all points) | CD curve ×1e-3 | CD sheet ×1e-3 | parameters | training s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        curve = f"{1e3 * r['cd_curve']:.3f}" if "cd_curve" in r else ""
        sheet = f"{1e3 * r['cd_sheet']:.3f}" if "cd_sheet" in r else ""
        lines.append(f"| {r['label']} | {1e3 * r['cd']:.3f} | {curve} | {sheet} | {r['params'] / 1e6:.2f} M "
                     f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--train-count", type=int, default=240, help="training + validation objects")
    parser.add_argument("--heldout-count", type=int, default=30)
    parser.add_argument("--size", type=int, default=64, help="rendering size")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra recipe override for every row (key=value), applied last")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_dir = _data(args.out, "train", args.train_count, 0, args.size, args.resolution, args.views)
    heldout = _data(args.out, "heldout", args.heldout_count, 1, args.size, args.resolution, args.views)
    extra = [f"data.image_size=[{args.size}, {args.size}]", *args.overrides]
    rows = [_row(key, train_dir, heldout, args.out, extra) for key in args.rows]
    table = format_table(rows)
    print(table)
    (args.out / "comparison.md").write_text(table + "\n")
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
