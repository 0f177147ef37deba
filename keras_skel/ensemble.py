"""Ensembles: K models trained on K splits (`keras-skel train --folds K`), averaged in one graph.

Panichev & Voloshyna (Pixel SkelNetOn 2019) averaged the probabilities of 8 models trained on
different train/validation splits and gained about 0.04 F1. Here a *folds directory* holds
one ordinary training run per member (`fold_1/`, `fold_2/`, …, each resumable on its own)
and `ensemble.json`, written when every member has finished. Member k trains with seed
`seed + k - 1`: a different validation split of a folder dataset (or different synthetic
samples) and a different initialization.

`load_ensemble(dir)` returns one `keras.Model` whose output is the mean of the members'
probabilities, so everything that takes a Keras model — prediction with TTA, `export` to a
SavedModel or TFLite — takes an ensemble unchanged, inside one graph. The ensemble's
threshold is the mean of the members' validation thresholds (each member's validation split
is training data for the others, so no split is held out from the whole ensemble) — except
with a synthetic source, whose validation samples come from seeds no member trains on: there
`train_folds` chooses the ensemble's own threshold on the members' validation samples pooled,
with the averaged model (and TTA when `eval.tta`), and records it. Its post-processing
(`prune_length`) must be the members' common one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Sequence

from keras_skel.errors import ConfigError, ModelNotFoundError

__all__ = ["ENSEMBLE_FILE", "train_folds", "combine_runs", "is_ensemble_dir", "ensemble_info", "build_ensemble",
           "load_ensemble"]

ENSEMBLE_FILE = "ensemble.json"


def _member_dirs(folds_dir: Path, folds: int) -> list[Path]:
    return [folds_dir / f"fold_{k}" for k in range(1, folds + 1)]


def train_folds(cfg, folds_dir: str | Path, folds: int = 3, overwrite: bool = False, verbose: int | str = "auto",
                command: str | None = None) -> list:
    """Trains `folds` members into `folds_dir/fold_k/` and writes `folds_dir/ensemble.json`.

    Finished members are kept (so an interrupted folds run resumes where it stopped: the
    unfinished member from its backup, the next ones from scratch) unless `overwrite`.

    Args:
        cfg: the recipe (`keras_skel.config.Config`); member k uses `seed + k - 1`.
        folds_dir: output folder.
        folds: number of members (≥ 2).
        overwrite: retrain every member from scratch.
        verbose: Keras verbosity.
        command: the command line, recorded.

    Returns:
        The members' `TrainResult`s (a finished, kept member is loaded as one).

    Raises:
        ConfigError: `folds` < 2, or the folder holds something else.
    """
    from keras_skel.training import TrainResult, train

    if int(folds) < 2:
        raise ConfigError(f"--folds needs at least 2 members, got {folds}")
    folds_dir = Path(folds_dir)
    if folds_dir.is_dir() and (folds_dir / "config.yaml").exists():
        raise ConfigError(f"{folds_dir} holds a single training run; choose another --out for a folds run")
    results = []
    for k, member in enumerate(_member_dirs(folds_dir, int(folds)), start=1):
        member_cfg = dataclasses.replace(cfg, seed=cfg.seed + k - 1)
        if (member / "metrics.json").exists() and not overwrite:
            metrics = json.loads((member / "metrics.json").read_text())
            val = metrics.get("val", {})
            results.append(TrainResult(member, metrics["threshold"], val.get("exact", {}).get("f1", float("nan")),
                                       val.get("tolerant", {}).get("f1", float("nan")),
                                       metrics.get("train_seconds", 0.0), 0))
            continue
        if verbose:
            print(f"fold {k}/{folds}: training {member} (seed {member_cfg.seed})")
        results.append(train(member_cfg, member, overwrite=overwrite, verbose=verbose, command=command))
    record = dict(members=[m.name for m in _member_dirs(folds_dir, int(folds))], folds=int(folds),
                  seeds=[cfg.seed + k for k in range(int(folds))], command=command,
                  thresholds=[r.threshold for r in results])
    (folds_dir / ENSEMBLE_FILE).write_text(json.dumps(record, indent=2))
    pooled = _pooled_threshold(cfg, folds_dir, record["seeds"])
    if pooled is not None:
        record.update(pooled)
        (folds_dir / ENSEMBLE_FILE).write_text(json.dumps(record, indent=2))
        if verbose:
            print(f"ensemble threshold {record['threshold']:g} chosen on {record['threshold_samples']} pooled "
                  "validation samples (held out from every member)")
    return results


def _pooled_threshold(cfg, folds_dir: Path, seeds: Sequence[int]) -> dict | None:
    """`{threshold, threshold_table, threshold_samples}` of the averaged model on the members'
    validation samples pooled, or None where those are not held out from every member (folder
    datasets: one member's validation split is the others' training data).

    A synthetic source draws training samples from even seeds and validation samples from odd
    ones (`data.datasets._train_seed` / `_val_seed`), so no member ever trained on a pooled
    sample."""
    if cfg.task != "shapes" or not cfg.data.source.startswith("synthetic"):
        return None
    from keras_skel.training import build_splits

    model, info = load_ensemble(folds_dir)
    samples = []
    for seed in seeds:
        samples += build_splits(cfg, seed).val
    threshold, table = _threshold_on(model, info, str(folds_dir), samples, bool(cfg.eval.tta), cfg.eval.thresholds,
                                     cfg.eval.threshold_tolerance)
    return dict(threshold=threshold, threshold_table=table, threshold_samples=len(samples), tta=bool(cfg.eval.tta))


def _threshold_on(model, info: dict, name: str, samples, tta: bool, thresholds: Sequence[float], tolerance: float):
    """`(threshold, table)` of the averaged `model` (post-processing of `info`) on `(id, shape, skeleton)`
    samples: `KerasSkeletonizer.choose_threshold`."""
    from keras_skel.inference import KerasSkeletonizer

    skeletonizer = KerasSkeletonizer(model, stride=info["stride"], name=name, tta=tta,
                                     prune_length=info["prune_length"], max_size=info["max_size"],
                                     gate_radius=info["gate_radius"])
    shapes = [shape for _, shape, _ in samples]
    return skeletonizer.choose_threshold([skeletonizer.probability(shape) for shape in shapes], shapes,
                                         [skeleton for _, _, skeleton in samples], list(thresholds), tolerance)


def combine_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, choose_on: str | Path | None = None,
                 tta: bool = False, thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7), tolerance: float = 0.0,
                 command: str | None = None) -> dict:
    """Makes `out_dir` an ensemble of finished binary-shape runs trained apart (e.g. on different
    noise levels): `ensemble.json` naming the members by their paths relative to `out_dir`, which
    then loads, predicts, evaluates and exports like a `train --folds` directory.

    The members' validation sets differ, so none is held out from the whole ensemble: without
    `choose_on` the threshold is the mean of the members' own; with `choose_on` (a dataset folder
    of shapes/ and skeletons/ that no member trained on) it is the candidate of `thresholds`
    whose skeletons score the best dataset-level F1 within `tolerance` px there, chosen with the
    averaged model (and D4 TTA with `tta`, which the ensemble then always runs).

    Returns:
        The record written.

    Raises:
        ConfigError: fewer than 2 runs, a run twice, `out_dir` not empty, members whose
            post-processing or task differ.
        ModelNotFoundError: a run that is missing or unfinished.
        DataError: an unreadable `choose_on` folder.
    """
    import os

    runs = [Path(r) for r in run_dirs]
    if len(runs) < 2:
        raise ConfigError(f"an ensemble needs at least 2 runs, got {len(runs)}")
    if len({r.resolve() for r in runs}) != len(runs):
        raise ConfigError("the same run is named twice: " + ", ".join(str(r) for r in runs))
    for run in runs:
        if is_ensemble_dir(run):
            raise ConfigError(f"{run} is an ensemble; name its members' runs instead")
        if not (run / "best.keras").is_file() or not (run / "model.json").is_file():
            raise ModelNotFoundError(f"{run} is not a finished training run (it needs best.keras and model.json)")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir} exists and is not an empty folder; choose another --out")
    from keras_skel.inference import read_model_info

    tasks = {read_model_info(r).get("task", "shapes") for r in runs}
    if tasks != {"shapes"}:
        raise ConfigError(f"ensembles average binary-shape runs; these runs are of task(s) {sorted(tasks)}")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)  # members are named relative to it, so it must exist
    record = dict(members=[os.path.relpath(r.resolve(), out_dir.resolve()) for r in runs], combined=True,
                  command=command, thresholds=[float(read_model_info(r)["threshold"]) for r in runs])
    try:
        checked = _with_members(out_dir, dict(record))
        info = _describe(out_dir, checked)  # the members must agree on their post-processing
        if choose_on is not None:
            from keras_skel.data.folders import load_folder

            samples = load_folder(choose_on)
            if not samples:
                raise ConfigError(f"{choose_on}: no shape/skeleton pairs to choose the threshold on")
            threshold, table = _threshold_on(build_ensemble(_load_members(checked["member_dirs"])), info,
                                             str(out_dir), samples, bool(tta), thresholds, tolerance)
            record.update(threshold=threshold, threshold_table=table, threshold_samples=len(samples),
                          threshold_data=str(Path(choose_on).resolve()), threshold_tolerance=float(tolerance),
                          tta=bool(tta))
    except Exception:
        if created:
            out_dir.rmdir()
        raise
    tmp = out_dir / f".{ENSEMBLE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(out_dir / ENSEMBLE_FILE)
    return record


def is_ensemble_dir(path: str | Path) -> bool:
    """True for a finished folds directory (it has `ensemble.json`)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def _read_record(folds_dir: Path) -> dict:
    try:
        record = json.loads((folds_dir / ENSEMBLE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelNotFoundError(f"{folds_dir / ENSEMBLE_FILE} is not a readable ensemble record: {err}") from None
    return _with_members(folds_dir, record)


def _with_members(folds_dir: Path, record: dict) -> dict:
    """`record` plus `member_dirs`, each checked to be a finished run."""
    try:
        members = [folds_dir / name for name in record["members"]]
    except (KeyError, TypeError) as err:
        raise ModelNotFoundError(f"{folds_dir / ENSEMBLE_FILE} is not a readable ensemble record: {err}") from None
    missing = [str(m) for m in members if not (m / "best.keras").is_file() or not (m / "model.json").is_file()]
    if missing:
        raise ModelNotFoundError(f"ensemble {folds_dir}: member runs missing or unfinished: {', '.join(missing)}")
    record["member_dirs"] = members
    return record


def ensemble_info(folds_dir: str | Path) -> dict:
    """The ensemble's `model.json`-like description, made from its members' records."""
    folds_dir = Path(folds_dir)
    return _describe(folds_dir, _read_record(folds_dir))


def _describe(folds_dir: Path, record: dict) -> dict:
    from keras_skel.inference import read_model_info

    infos = [read_model_info(m) for m in record["member_dirs"]]
    prunes = {(int(i.get("prune_length", 0)), int(i.get("gate_radius", 0))) for i in infos}
    if len(prunes) != 1:
        raise ConfigError(f"ensemble {folds_dir}: members disagree on their post-processing (prune_length, "
                          f"gate_radius: {sorted(prunes)}); an ensemble averages probabilities that one "
                          "post-processing must follow")
    prune_length, gate_radius = prunes.pop()
    stride = 1
    for info in infos:
        stride = math.lcm(stride, int(info.get("stride", 1)))
    first = infos[0]
    limits = [int(i["max_size"]) for i in infos if i.get("max_size")]
    return dict(
        task=first.get("task", "shapes"),
        # The threshold chosen for the ensemble itself where its validation was held out from every
        # member (synthetic sources), else the mean of the members' own.
        threshold=(float(record["threshold"]) if "threshold" in record
                   else round(sum(float(i["threshold"]) for i in infos) / len(infos), 4)),
        threshold_source=(f"chosen on {record['threshold_data']}" if "threshold_data" in record
                          else "pooled validation" if "threshold" in record else "mean of the members' thresholds"),
        tta=bool(record.get("tta", False)),  # the pooled threshold was chosen with TTA: run it
        prune_length=prune_length,
        gate_radius=gate_radius,
        target=first.get("target", "skeleton"),
        stride=stride,
        max_size=min(limits) // stride * stride if limits else None,
        input=first.get("input", "shape"),
        input_channels=first.get("input_channels", 1),
        image_size=first.get("image_size"),
        model=f"ensemble of {len(infos)} x {first.get('model')}",
        members=[str(m.resolve()) for m in record["member_dirs"]],
        data=(first.get("data") if len({i.get("data") for i in infos}) == 1
              else "; ".join(f"member {k}: {i.get('data')}" for k, i in enumerate(infos, start=1))),
        # Runs combined after training: how each member was trained, then the combining command.
        command=("; ".join(c for c in [*(i.get("command") for i in infos), record.get("command")] if c)
                 if record.get("combined") else record.get("command")),
    )


def build_ensemble(models: Sequence, name: str = "ensemble"):
    """One `keras.Model`: input `images` → mean of the members' `probability` outputs.

    Members must take the same input (`[N, H, W, C]`); deep-supervised models contribute
    their full-resolution output only. Each member becomes a nested model `member_k`.
    """
    import keras

    from keras_skel.models.canet import probability_model

    if not models:
        raise ConfigError("an ensemble needs at least one member")
    members = [probability_model(m) for m in models]
    channels = {int(m.input_shape[-1]) for m in members}
    if len(channels) != 1:
        raise ConfigError(f"ensemble members take different input channels: {sorted(channels)}")
    inputs = keras.Input(shape=(None, None, channels.pop()), name="images")
    outputs = []
    for k, member in enumerate(members, start=1):
        wrapped = keras.Model(member.inputs, member.output, name=f"member_{k}")
        outputs.append(wrapped(inputs))
    probability = (outputs[0] if len(outputs) == 1
                   else keras.layers.Average(name="probability", dtype="float32")(outputs))
    return keras.Model(inputs, probability, name=name)


def load_ensemble(folds_dir: str | Path):
    """`(model, info)` of a folds directory: the averaged `keras.Model` and `ensemble_info`."""
    info = ensemble_info(folds_dir)
    return build_ensemble(_load_members(info["members"])), info


def _load_members(member_dirs: Sequence[str | Path]) -> list:
    import keras

    import keras_skel.layers  # noqa: F401  (custom layers for deserialization)

    models = []
    for member in member_dirs:
        try:
            models.append(keras.saving.load_model(Path(member) / "best.keras", compile=False))
        except Exception as err:  # Keras raises many types for a damaged archive
            raise ModelNotFoundError(f"ensemble member {member}: could not load best.keras: {err}") from None
    return models
