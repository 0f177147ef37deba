"""SkeletonNet's skeletal point sets (task `volumes`): the training-run record and scoring.

Scores are Chamfer distances (`metrics.chamfer`, means of squared nearest-neighbour
distances, coordinates in the unit cube [-0.5, 0.5]³) between predicted and ground-truth
meso-skeleton points, averaged over every view of every object: `cd` for all points (the
union of curve and sheet outputs for the two-decoder model), and `cd_curve` / `cd_sheet` for
the two decoders against their own ground-truth subsets.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_skel.errors import ConfigError

__all__ = ["model_outputs", "volume_losses", "predict_points", "evaluate_points", "skeletonnet_run_record"]


def _model_params(cfg: Any) -> dict:
    from keras_skel.models.skeletonnet import build_skeletonnet

    defaults = {name: p.default for name, p in inspect.signature(build_skeletonnet).parameters.items()}
    return {**defaults, **dict(cfg.model.params)}


def model_outputs(cfg: Any) -> list[str]:
    """The output names of the SkeletonNet a recipe builds."""
    return ["curve", "sheet"] if _model_params(cfg)["decoders"] == "both" else ["points"]


def volume_losses(cfg: Any) -> dict:
    """One `ChamferLaplacianLoss` per model output, with that output's neighbour table."""
    from keras_skel.losses.points import ChamferLaplacianLoss
    from keras_skel.models.skeletonnet import skeletonnet_neighbours

    if cfg.loss.name != "chamfer":
        raise ConfigError(f"task volumes trains with loss chamfer (Chamfer + alpha * Laplacian); got {cfg.loss.name}")
    params = _model_params(cfg)
    tables = skeletonnet_neighbours(params["decoders"], params["lines"], params["squares"], params["line_samples"],
                                    params["square_side"])
    alpha = float(dict(cfg.loss.params).get("alpha", 0.2))
    return {name: ChamferLaplacianLoss(table, alpha, name=f"chamfer_{name}") for name, table in tables.items()}


def predict_points(model, images: np.ndarray, batch_size: int = 16) -> dict[str, np.ndarray]:
    """The model's point sets for `[N, S, S, 3]` images, as NumPy."""
    out = model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return {k: np.asarray(v) for k, v in out.items()}


def evaluate_points(model, samples: Sequence[dict]) -> dict:
    """Mean Chamfer distances of `model` over every view of `samples` (see the module
    docstring), plus `count` (views)."""
    from keras_skel.data.volumes import CURVE, SHEET
    from keras_skel.metrics.points import chamfer

    scores: dict[str, list[float]] = {"cd": [], "cd_curve": [], "cd_sheet": []}
    for sample in samples:
        out = predict_points(model, sample["images"])
        gt, labels = sample["skeleton_points"], sample["skeleton_labels"]
        for view in range(len(sample["images"])):
            if "curve" in out:
                union = np.concatenate([out["curve"][view], out["sheet"][view]])
                scores["cd_curve"].append(chamfer(out["curve"][view], gt[labels == CURVE]))
                scores["cd_sheet"].append(chamfer(out["sheet"][view], gt[labels == SHEET]))
            else:
                union = out["points"][view]
            scores["cd"].append(chamfer(union, gt))
    result = {k: float(np.mean([v for v in values if np.isfinite(v)])) for k, values in scores.items() if values}
    result["count"] = len(scores["cd"])
    return result


def skeletonnet_run_record(cfg: Any, run_dir: Path, model, splits, command: str | None) -> tuple[dict, dict]:
    """`(model_info, val_scores)` of a finished SkeletonNet run."""
    params = _model_params(cfg)
    scores = evaluate_points(model, splits.val)
    info = dict(task="volumes", decoders=params["decoders"], outputs=model_outputs(cfg),
                image_size=list(cfg.data.image_size), model=cfg.model.name, data=splits.description, command=command,
                coordinates="unit cube [-0.5, 0.5]^3, y up")
    return info, scores
