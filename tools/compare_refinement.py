"""SkeletonNet's Table 2 and end-to-end ablation on synthetic objects: the skeletal volume from
the same predicted points by quantizing and dilating them, by subvolume synthesis alone (the
local 3-D U-Net), and by globally guided subvolume synthesis (global + local streams) — both
trained on the frozen points of one point generator (stage `refine`) — and the guided module
fine-tuned end to end through Point2Voxel (stage `joint`, eq. 7).

Rows (each a run under OUT/<row>/, recipe `skeletonnet_synth` unless said):
  points    stage 1: recipe `skeletonnet_points` (the decoders alone); its points give the
            quantize + dilate row
  subvolume stage refine, `model.params.refinement=subvolume`, from `points`
  guided    stage refine (globally guided), from `points`: "separately trained"
  joint     stage joint from `guided`: "end to end"

Scores on held-out objects (another seed, every view): volume IoU with V* at the refinement's
resolution (thresholded at the run's validation threshold), the quantize + dilate IoU of the
row's own points, and the Chamfer distance of its points (`skeletal_points.evaluate_points`).

Resumable: runs (`OUT/<row>/`, finished when their `metrics.json` exists) and scores
(`OUT/<row>/heldout.json`) are kept; the table goes to stdout, `OUT/comparison.md` and
`OUT/comparison.json`. Data: folders of `keras-skel data synth --task volumes` (`--data`,
`--heldout`; made with the recipe's commands when missing).

Usage:
    python tools/compare_refinement.py --out runs/skeletonnet_table2_r64      # r = 64, the shipped model
    python tools/compare_refinement.py --out runs/skeletonnet_table2 --resolution 32 --joint-epochs 10 \
        --set train.epochs=30 --set model.params.volume_prior=null           # r = 32
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROWS = ("points", "subvolume", "guided", "joint")
LABELS = {
    "quantize": "quantization and morphological dilation (of the stage-1 points)",
    "subvolume": "subvolume synthesis alone (separately trained)",
    "guided": "globally guided subvolume synthesis (separately trained)",
    "joint": "globally guided, end to end (joint fine-tuning through Point2Voxel)",
}


def _recipe_args(key: str, data: Path, out: Path, args) -> tuple[str, list[str]]:
    common = [f"data.train_dir={data}", f"data.image_size=[{args.size}, {args.size}]"]
    if key == "points":
        return "skeletonnet_points", [*common, f"train.epochs={args.points_epochs}", "train.steps_per_epoch=50",
                                      *args.points_overrides]
    refine = [*common, f"model.params.resolution={args.resolution}", *args.overrides]
    if key == "subvolume":
        return "skeletonnet_synth", [*refine, "model.params.refinement=subvolume", "model.params.stage=refine",
                                     f"train.init_from={out / 'points'}"]
    if key == "guided":
        return "skeletonnet_synth", [*refine, "model.params.stage=refine", f"train.init_from={out / 'points'}"]
    return "skeletonnet_synth", [*refine, "model.params.stage=joint", f"train.learning_rate={args.joint_lr}",
                                 f"train.epochs={args.joint_epochs}", f"train.init_from={out / 'guided'}",
                                 *args.joint_overrides]


def _row(key: str, data: Path, heldout_samples: list, out: Path, args) -> list[dict]:
    import keras

    import keras_skel.layers  # noqa: F401
    import keras_skel.losses  # noqa: F401
    import keras_skel.models.skeletonnet  # noqa: F401
    from keras_skel.config import load_config
    from keras_skel.inference import read_model_info
    from keras_skel.skeletal_points import evaluate_points
    from keras_skel.training import train

    run_dir = out / key
    cache = run_dir / "heldout.json"
    if cache.exists():
        return json.loads(cache.read_text())
    recipe, overrides = _recipe_args(key, data, out, args)
    if not (run_dir / "metrics.json").exists():  # written last: the run and its scoring finished
        train(load_config(recipe, overrides), run_dir, verbose=2,
              command=" ".join(["keras-skel", "train", recipe, *[f"--set {o}" for o in overrides], "--out",
                                str(run_dir)]))
    model = keras.saving.load_model(run_dir / "best.keras", compile=False)
    info = read_model_info(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scores = evaluate_points(model, heldout_samples, threshold=info.get("threshold"), resolution=args.resolution)
    common = dict(train_seconds=metrics["train_seconds"], step_seconds=metrics.get("step_seconds"),
                  params=int(model.count_params()), count=scores["count"], cd=scores["cd"],
                  iou_quantize=scores["iou_quantize"], threshold=info.get("threshold"))
    if key == "points":
        rows = [dict(key="quantize", label=LABELS["quantize"], iou=scores["iou_quantize"], **common)]
    else:
        rows = [dict(key=key, label=LABELS[key], iou=scores["iou"], **common)]
    cache.write_text(json.dumps(rows, indent=2))
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| variant | volume IoU ×100 | quantize + dilate IoU ×100 of its points | CD ×1e-3 of its points "
             "| threshold | training s |", "|---|---|---|---|---|---|"]
    for r in rows:
        threshold = "" if r["threshold"] is None or r["key"] == "quantize" else f"{r['threshold']:.2f}"
        lines.append(f"| {r['label']} | {100 * r['iou']:.2f} | {100 * r['iou_quantize']:.2f} | {1e3 * r['cd']:.3f} "
                     f"| {threshold} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def _folder(path: Path, count: int, seed: int, args) -> Path:
    from keras_skel.data.volumes import write_volumes_dataset

    if not (path / "dataset.json").exists():
        write_volumes_dataset(path, count, seed=seed, resolution=args.data_resolution, image_size=args.size,
                              views=args.views, overwrite=True, workers=2, progress=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--data", type=Path, default=Path("data/volumes64"), help="training folder (made if missing)")
    parser.add_argument("--heldout", type=Path, default=Path("data/volumes64_heldout"),
                        help="held-out folder (made if missing, another seed)")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--train-count", type=int, default=900, help="objects of a missing --data folder")
    parser.add_argument("--heldout-count", type=int, default=90, help="objects of a missing --heldout folder")
    parser.add_argument("--size", type=int, default=64, help="rendering size")
    parser.add_argument("--data-resolution", type=int, default=64, help="V* size of missing folders")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64, help="refined volume side (a multiple of 32)")
    parser.add_argument("--points-epochs", type=int, default=40)
    parser.add_argument("--joint-epochs", type=int, default=6)
    parser.add_argument("--joint-lr", type=float, default=1e-4)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra override (key=value) of the refinement rows")
    parser.add_argument("--set-points", dest="points_overrides", action="append", default=[],
                        help="extra override of the points row")
    parser.add_argument("--set-joint", dest="joint_overrides", action="append", default=[],
                        help="extra override of the joint row (after --set)")
    args = parser.parse_args(argv)
    from keras_skel.data.volumes import load_volumes_folder

    args.out.mkdir(parents=True, exist_ok=True)
    data = _folder(args.data, args.train_count, 0, args)
    heldout = load_volumes_folder(_folder(args.heldout, args.heldout_count, 1, args))[1]
    rows = [row for key in args.rows for row in _row(key, data, heldout, args.out, args)]
    table = format_table(rows)
    print(table)
    (args.out / "comparison.md").write_text(table + "\n")
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
