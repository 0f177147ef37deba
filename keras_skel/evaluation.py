"""`evaluate(model, data_dir)`: skeleton F1 of a model on a dataset folder, with a report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from keras_skel.data import folders
from keras_skel.errors import DataError
from keras_skel.inference import load
from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator
from keras_skel.visualize import LEGEND, overlay, save_grid

__all__ = ["evaluate", "format_report"]


def evaluate(
    model: Any,
    data_dir: str | Path,
    tolerance: float = 2.0,
    report_dir: str | Path | None = None,
    threshold: float | None = None,
    on_error: str = "raise",
    progress: bool = False,
    max_pictures: int = 16,
    overwrite: bool = False,
    tta: bool = False,
) -> dict:
    """Scores a model on a dataset folder (`shapes/`, `skeletons/`).

    Exact F1 (pixel equality) and F1 within `tolerance` px (one-to-one matching), each at
    dataset level (counts summed over images, the judged number) with the per-image mean
    beside it.

    Args:
        model: anything `keras_skel.load` accepts.
        data_dir: the dataset folder.
        tolerance: matching distance of the tolerant F1, px.
        report_dir: when given, writes `report.json` and `overlays.png` there.
        threshold: overrides the model's stored threshold.
        on_error: `raise` or `skip` bad pairs.
        progress: show a progress bar.
        max_pictures: images in the overlay grid.
        overwrite: replace an existing report in `report_dir` (refused otherwise).
        tta: D4 test-time augmentation (Keras models).

    Returns:
        The report dict: `model`, `data`, `count`, `threshold`, `exact`, `tolerant`
        (each precision / recall / f1 / mean_image_f1), `per_image`.

    Example:
        >>> report = evaluate("classical", "data/shapes_val")  # doctest: +SKIP
        >>> report["exact"]["f1"]  # doctest: +SKIP
    """
    if report_dir is not None and not overwrite:
        existing = [Path(report_dir) / n for n in ("report.json", "overlays.png") if (Path(report_dir) / n).exists()]
        if existing:
            raise DataError(f"{existing[0]} exists already; pass --overwrite to replace the report or choose "
                            "another --report folder")
    skeletonizer = load(model, threshold, tta=tta)
    pairs = folders.find_pairs(data_dir, on_error=on_error)
    exact = SkeletonF1Accumulator(0.0)
    tolerant = SkeletonF1Accumulator(tolerance)
    pictures = []

    skipped = []

    def run(pair):
        try:
            shape, gt = folders.load_pair(pair)
        except DataError as err:
            if on_error != "skip":
                raise
            skipped.append(f"{pair.id}: {err}")
            return
        pred = skeletonizer.skeletonize(shape)
        exact.update(pred, gt, image_id=pair.id)
        tolerant.update(pred, gt, image_id=pair.id)
        if len(pictures) < max_pictures:
            pictures.append(overlay(shape, pred, gt))

    if progress:
        import click

        with click.progressbar(pairs, label=f"evaluating {skeletonizer.name}", file=None) as bar:
            for pair in bar:
                run(pair)
    else:
        for pair in pairs:
            run(pair)

    if skipped:
        warnings.warn(f"{data_dir}: skipped {len(skipped)} bad sample(s), e.g. {skipped[0]}", stacklevel=2)
    if not len(exact):
        raise DataError(f"{data_dir}: no sample could be read ({len(skipped)} skipped)")
    exact_result, tolerant_result = exact.result(), tolerant.result()
    per_image = []
    for e, t in zip(exact_result["per_image"], tolerant_result["per_image"]):
        per_image.append(dict(id=e["id"], n_pred=e["n_pred"], n_gt=e["n_gt"], exact_f1=e["f1"],
                              tolerant_f1=t["f1"]))
    summary = lambda r: {k: r[k] for k in ("precision", "recall", "f1", "mean_image_f1")}  # noqa: E731
    report = dict(
        model=skeletonizer.name,
        data=str(data_dir),
        dataset=_dataset_info(data_dir),
        count=len(per_image),
        threshold=skeletonizer.threshold,
        tolerance_px=tolerance,
        exact=summary(exact_result),
        tolerant=summary(tolerant_result),
        skipped=skipped,
        per_image=per_image,
    )
    if report_dir is not None:
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "report.json").write_text(json.dumps(report, indent=2))
        titles = [f"{row['id']}  F1 {row['exact_f1']:.2f} / {row['tolerant_f1']:.2f}"
                  for row in per_image[: len(pictures)]]
        save_grid(pictures, report_dir / "overlays.png", titles,
                  suptitle=f"{skeletonizer.name}: exact / {tolerance:g}-px F1 — {LEGEND}")
    return report


def _dataset_info(data_dir: str | Path) -> dict | None:
    """The `dataset.json` a synthesized folder carries (how it was made), if any."""
    from keras_skel.data.synthetic import DATASET_INFO

    path = Path(data_dir) / DATASET_INFO
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def format_report(report: dict) -> str:
    """A short table of a report for the terminal."""
    lines = [f"model {report['model']} on {report['data']} ({report['count']} images)"]
    if report.get("threshold") is not None:
        lines[0] += f", threshold {report['threshold']:.2f}"
    lines.append(f"{'':14}{'precision':>10}{'recall':>10}{'F1':>10}{'mean img F1':>13}")
    for key, label in (("exact", "exact"), ("tolerant", f"{report['tolerance_px']:g}-px")):
        r = report[key]
        lines.append(f"{label:14}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}"
                     f"{r['mean_image_f1']:>13.4f}")
    return "\n".join(lines)

