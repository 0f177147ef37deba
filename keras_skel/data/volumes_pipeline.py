"""Training data of SkeletonNet (task `volumes`): (rendering, ground-truth skeletal points and
volumes).

Every view of every object is one training pair. The point targets are fixed-size samples of
the object's meso-skeleton points, per output of the model: `curve` and `sheet` (the points
labelled curve / sheet) for the two-decoder model, `points` (all of them) otherwise. A set
with fewer points than asked is sampled with replacement (Chamfer distance does not care
about repeats); an object without sheet (or curve) points lends that output its other points.
A refining model's `volume` target is V* at its resolution (`ground_truth_volume`) and its
`coarse` target V* max-pooled by 4 (thin skeletons survive); the volumes are kept once per
object (uint8) and gathered per batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_skel.data.volumes import CURVE, SHEET, ground_truth_volume

__all__ = ["target_points", "volume_pairs", "volume_dataset", "POINT_OUTPUTS", "VOLUME_OUTPUTS"]

POINT_OUTPUTS = ("curve", "sheet", "points")
VOLUME_OUTPUTS = ("volume", "coarse")


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
    """`(images [V·N, S, S, 3], {output: [V·N, count, 3]}, owner [V·N])` over every view of
    every sample, for the point outputs among `outputs`; `owner` is each view's sample index."""
    rng = np.random.default_rng(seed)
    point_outputs = [name for name in outputs if name in POINT_OUTPUTS]
    images, owner, targets = [], [], {name: [] for name in point_outputs}
    for index, sample in enumerate(samples):
        for image in sample["images"]:
            images.append(image)
            owner.append(index)
            for name in point_outputs:
                targets[name].append(target_points(sample, name, count, rng))
    return (np.stack(images).astype(np.float32), {k: np.stack(v) for k, v in targets.items()},
            np.asarray(owner, np.int32))


def volume_dataset(samples: Sequence[dict], outputs: Sequence[str], count: int, batch_size: int, seed: int,
                   training: bool, resolution: int | None = None) -> tf.data.Dataset:
    """Batches of `(image, {output: target})`; training: shuffled and repeated. `resolution`:
    the side of the `volume` output (needed when `outputs` has it)."""
    images, targets, owner = volume_pairs(samples, outputs, count, seed)
    wanted = [name for name in VOLUME_OUTPUTS if name in outputs]
    ds = tf.data.Dataset.from_tensor_slices((images, targets, owner))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    if wanted:
        volumes = tf.constant(np.stack([ground_truth_volume(sample, resolution) for sample in samples]))

        def add_volumes(image, points, index):
            volume = tf.cast(tf.gather(volumes, index), tf.float32)[..., None]  # [B, r, r, r, 1]
            extra = {"volume": volume}
            if "coarse" in wanted:
                extra["coarse"] = tf.nn.max_pool3d(volume, 4, 4, "VALID")
            return image, {**points, **{k: v for k, v in extra.items() if k in wanted}}

        ds = ds.map(add_volumes, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda image, points, index: (image, points))
    if not training:
        ds = ds.cache()
    return ds.prefetch(tf.data.AUTOTUNE)
