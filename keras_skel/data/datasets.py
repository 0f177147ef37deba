"""Dataset builders registered in `registry.DATASETS`.

Each builder returns `Splits`: a training sample stream (a `tf.data.Dataset` of
`(image, target)` pairs, `[H, W, 1]` float32) and the validation samples as arrays (used for
the validation loss, the threshold search and the scores stored with a run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_skel.data import folders, synthetic
from keras_skel.data.pipeline import samples_dataset, split_indices
from keras_skel.registry import DATASETS

__all__ = ["Splits", "synthetic_shapes", "folder", "synthetic_thin", "thin_folder", "synthetic_natural",
           "natural_folder", "volumes_folder"]


@dataclass(frozen=True)
class Splits:
    """Training stream and validation samples of one dataset.

    Attributes:
        train: `(image, target)` stream for `training_pipeline`.
        val: validation samples `(id, shape, skeleton)` as NumPy arrays (thin-structure
            datasets: `(id, image, labels)`).
        train_shuffle: shuffle buffer the training stream wants (0 for fresh samples).
        description: one line for run records and model cards.
        train_count: number of training samples (None for an endless stream).
        val_targets: the training targets of the validation samples when they are not the
            skeletons (`data.target: shape`: the clean shapes), in `val` order; None = skeletons.
        train_samples: task `volumes`: the training objects (dicts of `data.volumes`), whose
            pipeline needs the model's outputs; `train` is then None and `val` holds objects.
    """

    train: tf.data.Dataset
    val: Sequence[tuple[str, np.ndarray, np.ndarray]]
    train_shuffle: int
    description: str
    train_count: int | None = None
    val_targets: Sequence[np.ndarray] | None = None
    train_samples: Sequence | None = None


def _train_seed(seed: int) -> int:
    # Train and validation draw from disjoint seed streams (even / odd), so no validation
    # shape is ever a training shape.
    return 2 * seed


def _val_seed(seed: int) -> int:
    return 2 * seed + 1


def _train_val(train_dir: str, val_dir: str | None, read, val_fraction: float, seed: int) -> tuple[list, list]:
    """Training and validation samples: `read(val_dir)` when given, else a seeded split of
    `read(train_dir)`."""
    samples = read(train_dir)
    if val_dir:
        return samples, read(val_dir)
    if len(samples) < 2:
        from keras_skel.errors import DataError

        raise DataError(f"{train_dir} has {len(samples)} sample: at least 2 are needed to split off "
                        "validation (or give data.val_dir)")
    train_idx, val_idx = split_indices(len(samples), val_fraction, seed)
    return [samples[i] for i in train_idx], [samples[i] for i in val_idx]


@DATASETS.register("synthetic_shapes")
def synthetic_shapes(image_size: tuple[int, int], seed: int, noise: float = 2.0,
                     val_count: int = 64, target: str = "skeleton", split: str = "all",
                     noise_style: str = "field", clean_fraction: float = 0.0) -> Splits:
    """Fresh synthetic shapes every step, and `val_count` fixed validation shapes.

    Args:
        image_size: `(height, width)` of each sample.
        seed: dataset seed.
        noise: boundary-noise amplitude (px) of the inputs; targets are clean.
        val_count: number of validation samples.
        target: `skeleton` or `shape` (the clean shape), what the model learns.
        split: shape variants, `all` or `train` (without the held-out ones).
        noise_style: `field`, `bumps` or `mixed` boundary noise.
        clean_fraction: share of noise-free samples, in training and validation alike.
    """
    size = tuple(int(s) for s in image_size)
    val, val_targets = [], []
    for index in range(val_count):
        shape, skeleton, clean = synthetic.make_shape_sample(
            _val_seed(seed), index, size, noise=noise, split=split, noise_style=noise_style, with_clean=True,
            clean_fraction=clean_fraction)
        val.append((f"{index:06d}", shape.astype(bool), skeleton.astype(np.uint8)))
        val_targets.append(clean.astype(np.uint8))
    train = synthetic.shapes_source(size, seed=_train_seed(seed), noise=noise, split=split,
                                    noise_style=noise_style, target=target, clean_fraction=clean_fraction)
    description = (f"synthetic shapes {size[0]}x{size[1]}, noise {noise} px ({noise_style}"
                   + (f", {clean_fraction:.0%} clean" if clean_fraction else "") + f"), split {split}, seed {seed}")
    return Splits(train, val, 0, description, val_targets=val_targets if target == "shape" else None)


@DATASETS.register("folder")
def folder(train_dir: str, seed: int, val_dir: str | None = None, val_fraction: float = 0.2,
           on_error: str = "raise", target: str = "skeleton") -> Splits:
    """A dataset folder (`shapes/`, `skeletons/`), split by `seed` unless `val_dir` is given.

    Args:
        train_dir: training folder.
        seed: split seed.
        val_dir: optional separate validation folder.
        val_fraction: share of `train_dir` held out when `val_dir` is not given.
        on_error: `raise` on the first bad pair, or `skip` bad pairs with a warning.
        target: `skeleton`, or `shape`: the clean shapes of the folders' optional `clean/`
            subfolders (`folders.load_clean_shapes`), else the input shapes themselves.
    """
    if not train_dir:
        from keras_skel.errors import ConfigError

        raise ConfigError("data.source folder needs data.train_dir (a folder with shapes/ and skeletons/)")

    def with_targets(root, loaded):
        if target != "shape":
            return [(i, s, k, k) for i, s, k in loaded]
        clean = folders.load_clean_shapes(root, loaded)
        if clean is None:
            clean = [s for _, s, _ in loaded]
        return [(i, s, k, c) for (i, s, k), c in zip(loaded, clean)]

    def read(root):
        return with_targets(root, folders.load_folder(root, on_error=on_error, progress=True))

    train_samples, val_samples = _train_val(train_dir, val_dir, read, val_fraction, seed)
    stream = samples_dataset([(s, t) for _, s, _, t in train_samples]).cache()
    description = f"folder {train_dir} ({len(train_samples)} train / {len(val_samples)} val)"
    val_targets = [t for *_, t in val_samples] if target == "shape" else None
    return Splits(stream, [(i, s, k) for i, s, k, _ in val_samples], len(train_samples), description,
                  len(train_samples), val_targets=val_targets)


@DATASETS.register("synthetic_thin")
def synthetic_thin(image_size: tuple[int, ...], seed: int, classes: int = 1, structure: str = "mixed",
                   val_count: int = 64) -> Splits:
    """Fresh synthetic thin structures every step (`data.thin`), and `val_count` fixed
    validation samples; 2-D for a 2-entry `image_size`, 3-D volumes for 3 entries.

    Args:
        image_size: `(H, W)` or `(D, H, W)`.
        seed: dataset seed.
        classes: foreground classes (1 = binary).
        structure: `vessels`, `cracks`, `roads` or `mixed`.
        val_count: number of validation samples.
    """
    from keras_skel.data import thin

    size = tuple(int(s) for s in image_size)
    kind = None if structure == "mixed" else structure
    val = []
    for index in range(val_count):
        image, labels = thin.make_thin_sample(_val_seed(seed), index, size, classes=classes, kind=kind)
        val.append((f"{index:06d}", image, labels))
    train = thin.thin_source(size, seed=_train_seed(seed), classes=classes, kind=kind)
    dims = "x".join(str(s) for s in size)
    description = f"synthetic thin structures ({structure}) {dims}, {classes} class(es), seed {seed}"
    return Splits(train, val, 0, description)


@DATASETS.register("thin_folder")
def thin_folder(train_dir: str, seed: int, val_dir: str | None = None, val_fraction: float = 0.2,
                classes: int = 1) -> Splits:
    """A thin-structure dataset folder (`images/`, `labels/`, `dataset.json`; `data synth
    --task thin` writes one), split by `seed` unless `val_dir` is given.

    Args:
        train_dir: training folder.
        seed: split seed.
        val_dir: optional separate validation folder.
        val_fraction: share of `train_dir` held out when `val_dir` is not given.
        classes: the recipe's `data.classes`; must match the folder's `dataset.json`.
    """
    from keras_skel.data import thin
    from keras_skel.data.thin_pipeline import thin_samples_dataset
    from keras_skel.errors import ConfigError

    if not train_dir:
        raise ConfigError("data.source thin_folder needs data.train_dir (a folder with images/, labels/ and "
                          "dataset.json, as `keras-skel data synth --task thin` writes)")

    def read(root):
        info, samples = thin.load_thin_folder(root)
        if int(info["classes"]) != classes:
            raise ConfigError(f"{root}/dataset.json says {info['classes']} class(es) but the recipe has "
                              f"data.classes {classes}: set --set data.classes={info['classes']}")
        return samples

    train_samples, val_samples = _train_val(train_dir, val_dir, read, val_fraction, seed)
    stream = thin_samples_dataset([(image, labels) for _, image, labels in train_samples])
    description = f"thin folder {train_dir} ({len(train_samples)} train / {len(val_samples)} val)"
    return Splits(stream, val_samples, len(train_samples), description, len(train_samples))


@DATASETS.register("synthetic_natural")
def synthetic_natural(image_size: tuple[int, ...], seed: int, split: str = "train", val_count: int = 64,
                      photos: str | None = None) -> Splits:
    """Fresh synthetic natural images every step (`data.natural`), and `val_count` fixed
    validation samples (RGB images and their objects' skeletons).

    Args:
        image_size: `(H, W)`, each ≥ 64.
        seed: dataset seed.
        split: `train` (keeps the held-out shapes, photographs and textures out; the recipes
            set it: `data.split` defaults to `all`, which trains on held-out material too),
            `heldout` or `all`.
        val_count: number of validation samples.
        photos: a folder of photographs to texture the composites with too (its files of
            `split`; `data synth --photos`).
    """
    from keras_skel.data import natural

    size = tuple(int(s) for s in image_size)
    val = []
    for index in range(val_count):
        image, skeleton = natural.make_natural_sample(_val_seed(seed), index, size, split, photos=photos)
        val.append((f"{index:06d}", image.astype(np.float32) / 255.0, skeleton))
    train = natural.natural_source(size, seed=_train_seed(seed), split=split, photos=photos)
    description = f"synthetic natural images {size[0]}x{size[1]}, split {split}, seed {seed}"
    if photos is not None:
        description += f", photos {photos}"
    return Splits(train, val, 0, description)


@DATASETS.register("natural_folder")
def natural_folder(train_dir: str, seed: int, val_dir: str | None = None, val_fraction: float = 0.2) -> Splits:
    """A natural-image folder (`images/`, `skeletons/`: `data synth --task natural` or `data
    convert --from sk-large|...`), split by `seed` unless `val_dir` is given.

    Args:
        train_dir: training folder.
        seed: split seed.
        val_dir: optional separate validation folder.
        val_fraction: share of `train_dir` held out when `val_dir` is not given.
    """
    from keras_skel.data import natural
    from keras_skel.errors import ConfigError

    if not train_dir:
        raise ConfigError("data.source natural_folder needs data.train_dir (a folder with images/ and skeletons/, "
                          "as `keras-skel data synth --task natural` writes)")
    train_samples, val_samples = _train_val(train_dir, val_dir, natural.load_natural_folder, val_fraction, seed)
    stream = samples_dataset([(image, skeleton) for _, image, skeleton in train_samples], image_channels=3).cache()
    description = f"natural folder {train_dir} ({len(train_samples)} train / {len(val_samples)} val)"
    return Splits(stream, val_samples, len(train_samples), description, len(train_samples))


@DATASETS.register("volumes_folder")
def volumes_folder(train_dir: str, seed: int, val_dir: str | None = None, val_fraction: float = 0.2) -> Splits:
    """A volumes folder (`data synth --task volumes`: images/, objects/, dataset.json), split by
    object (all views of an object on one side) by `seed` unless `val_dir` is given."""
    from keras_skel.data.volumes import load_volumes_folder
    from keras_skel.errors import ConfigError

    if not train_dir:
        raise ConfigError("data.source volumes_folder needs data.train_dir (a folder written by `keras-skel data "
                          "synth --task volumes`)")
    train_samples, val_samples = _train_val(train_dir, val_dir, lambda root: load_volumes_folder(root)[1],
                                            val_fraction, seed)
    description = f"volumes folder {train_dir} ({len(train_samples)} train / {len(val_samples)} val objects)"
    views = sum(len(s["images"]) for s in train_samples)
    return Splits(None, val_samples, 0, description, views, train_samples=train_samples)
