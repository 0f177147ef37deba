"""Training data of SkeletonNet (task `volumes`): (rendering, ground-truth skeletal points).

Every view of every object is one training pair. The targets are fixed-size samples of the
object's meso-skeleton points, per output of the model: `curve` and `sheet` (the points
labelled curve / sheet) for the two-decoder model, `points` (all of them) otherwise. A set
with fewer points than asked is sampled with replacement (Chamfer distance does not care
about repeats); an object without sheet (or curve) points lends that output its other points.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_skel.data.volumes import CURVE, SHEET

__all__ = ["target_points", "volume_pairs", "volume_dataset"]


def target_points(sample: dict, output: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` ground-truth points of `sample` for the model output `output` (`curve`, `sheet`
    or `points`), float32 `[count, 3]`."""
    points, labels = sample["skeleton_points"], sample["skeleton_labels"]
    if output in ("curve", "sheet"):
        chosen = points[labels == (CURVE if output == "curve" else SHEET)]
        if len(chosen) == 0:
            chosen = points
    else:
        chosen = points
    index = rng.choice(len(chosen), size=count, replace=len(chosen) < count)
    return chosen[index].astype(np.float32)


def volume_pairs(samples: Sequence[dict], outputs: Sequence[str], count: int, seed: int):
    """`(images [V·N, S, S, 3], {output: [V·N, count, 3]})` over every view of every sample."""
    rng = np.random.default_rng(seed)
    images, targets = [], {name: [] for name in outputs}
    for sample in samples:
        for image in sample["images"]:
            images.append(image)
            for name in outputs:
                targets[name].append(target_points(sample, name, count, rng))
    return np.stack(images).astype(np.float32), {k: np.stack(v) for k, v in targets.items()}


def volume_dataset(samples: Sequence[dict], outputs: Sequence[str], count: int, batch_size: int, seed: int,
                   training: bool) -> tf.data.Dataset:
    """Batches of `(image, {output: points})`; training: shuffled and repeated."""
    images, targets = volume_pairs(samples, outputs, count, seed)
    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return ds.batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)
