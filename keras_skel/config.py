"""Training recipes: YAML files loaded into frozen dataclasses.

A recipe is addressed by name (a file in `keras_skel/configs/`, installed with the package) or by
path. Overrides use dotted keys (`--set train.epochs=3`), their values parsed as YAML scalars.
Unknown keys are rejected with the list of valid ones, so a typo never silently does nothing.

Config objects live only at the edge (the CLI and `train(cfg)`): the functions they configure
take explicit arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence, Union, get_args, get_origin, get_type_hints

import yaml

from keras_skel.errors import ConfigError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "LossConfig",
    "TrainConfig",
    "EvalConfig",
    "Config",
    "recipe_names",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
]


@dataclass(frozen=True)
class DataConfig:
    """Where training samples come from and how they are batched.

    `source` names a dataset builder in `keras_skel.registry.DATASETS`: `synthetic_shapes`
    draws fresh shapes every epoch; `folder` reads `train_dir` (the layout of DESIGN.md §3) and
    splits off `val_fraction` for validation unless `val_dir` is given.

    `target`: what the model learns, `skeleton` (the ground truth) or `shape` (the clean
    shape: the model denoises the input and the ground-truth rule skeletonizes its output,
    see `EvalConfig.prune_length`); folders give the clean shape in an optional `clean/`
    subfolder (else the input shape is its own target). `split` and `noise_style` choose the
    synthetic shapes' variants and boundary noise (`keras_skel.data.synthetic`);
    `clean_fraction` of them stay noise-free.

    Thin-structure segmentation (`task: thin`): `source` is `synthetic_thin` (fresh vessels,
    cracks or roads, `structure` mixed/vessels/cracks/roads) or `thin_folder` (`train_dir` as
    `data synth --task thin` writes it); `image_size` has 2 entries (images) or 3 (volumes,
    D, H, W); `classes` foreground classes (1 = binary, sigmoid; K > 1 = softmax over
    background + K); `tube_radius` is the radius of the tubed skeleton that the Skeleton
    Recall loss needs (made on the CPU in the pipeline only when the loss uses it).

    Object skeletons in natural images (`task: natural`, DeepFlux): `source` is
    `synthetic_natural` (fresh composites, `split` train/heldout/all) or `natural_folder`
    (`train_dir` with images/ and skeletons/, from `data synth --task natural` or `data
    convert`); `target` is `flux` (the context flux of radius `flux_radius`, DeepFlux) or
    `binary` (the skeleton dilated by `flux_radius`, the classification baseline);
    `colour_augment` is the strength of the photometric augmentation of the RGB inputs
    (`data.augment.random_colour`: channel order, inversion, hue, saturation, contrast,
    brightness, grey; 0 = off); `photos` a folder of photographs that `synthetic_natural`
    textures its composites with too (`data synth --photos`; the files of `split` only).

    3-D skeletal points (`task: volumes`, SkeletonNet): `source` is `volumes_folder`
    (`train_dir` from `data synth --task volumes`; split by object), `image_size` the renderings'
    size, `points` the ground-truth points sampled per object and model output.
    """

    source: str = "synthetic_shapes"
    train_dir: str | None = None
    val_dir: str | None = None
    image_size: tuple[int, ...] = (128, 128)
    noise: float = 2.0
    val_count: int = 64
    val_fraction: float = 0.2
    batch_size: int = 8
    augment: bool = True
    input_noise_std: float = 0.0
    on_error: str = "raise"
    target: str = "skeleton"
    split: str = "all"
    noise_style: str = "field"
    clean_fraction: float = 0.0
    classes: int = 1
    structure: str = "mixed"
    tube_radius: int = 2
    flux_radius: int = 7
    colour_augment: float = 0.0
    photos: str | None = None
    points: int = 1024


@dataclass(frozen=True)
class ModelConfig:
    """A model builder name from `keras_skel.registry.MODELS` and its keyword arguments."""

    name: str = "unet"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig:
    """A loss name from `keras_skel.registry.LOSSES` and its keyword arguments."""

    name: str = "focal"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpointing and hardware settings.

    `precision`: `float32`, `mixed_bfloat16` (fast on CPUs with AMX and on TPUs/modern GPUs),
    `mixed_float16` (GPUs), or `auto` (bf16 when the CPU reports AMX, float32 otherwise).
    `strategy`: `default` or `mirrored` (all visible GPUs, or `cpu_devices` logical CPUs).
    `clipnorm`: clip the global gradient norm to this (None = no clipping).
    `init_from`: start from the weights of another model of the same architecture (a run dir,
    a `.keras` file, or a shipped model's name, whose `saved_models/<name>.keras` is used).
    `init_member`: when `init_from` is an ensemble (`keras-skel ensemble`, a `--folds` export),
    the member (1..K) whose weights to start from; required for an ensemble, refused otherwise.
    """

    epochs: int = 10
    steps_per_epoch: int | None = 50
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    schedule: str = "constant"
    plateau_patience: int = 3
    early_stopping_patience: int | None = None
    max_minutes: float | None = None
    backup_every_steps: int = 50
    strategy: str = "default"
    cpu_devices: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    init_from: str | None = None
    init_member: int | None = None
    clipnorm: float | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Threshold search and scoring on the validation split, and the post-processing.

    `prune_length`: after thresholding and thinning, remove terminal branches shorter than
    this many pixels and thin again (`keras_skel.ops.prune_spurs`; 10 is the
    ground-truth rule of DESIGN.md §3, what a `data.target: shape` model needs); 0 = off.
    Stored with the run and baked into exports.

    `gate_radius`: > 0 makes the model's thresholded map a gate on the ground-truth rule
    applied to the input (`probability_to_skeleton`): the rule's skeleton of the input, kept
    within `gate_radius` px of the map, pruned again (needs `prune_length`, e.g. 10).

    `skip_scale_offsets`: for a model with an input skip (`InputSkip`, clean-shape models),
    also try the learned skip scale plus each offset, jointly with the thresholds, on the
    validation split, and keep the best (a larger scale leaves more of the input unchanged);
    empty = keep the learned scale.

    `tta` (tasks shapes and natural): choose the threshold (λ) with D4 test-time augmentation
    of the network (8 flips / rotations, maps — and fluxes' vectors — turned back and
    averaged); the run record asks for it, so loading and exporting the run run it too (8× the
    compute). The averaged map's peaks are lower than one view's, which is why the threshold is
    chosen with it.

    `scales` (task natural): the image scales the network runs at, outputs resized back and
    averaged (`export.graph.natural_raw_outputs`; with `tta`, each scale with TTA); λ is chosen
    with them and the run record asks for them, like `tta`. `[1.0]` = one pass.
    """

    tolerance: float = 2.0
    threshold_tolerance: float = 0.0
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    prune_length: int = 0
    gate_radius: int = 0
    skip_scale_offsets: tuple[float, ...] = ()
    tta: bool = False
    scales: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Config:
    """A whole training recipe."""

    task: str = "shapes"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_CHOICES = {
    "task": ("shapes", "thin", "natural", "volumes"),
    "data.structure": ("mixed", "vessels", "cracks", "roads"),
    "data.on_error": ("raise", "skip"),
    "data.target": ("skeleton", "shape", "flux", "binary"),
    "data.split": ("all", "train", "heldout"),
    "data.noise_style": ("field", "bumps", "mixed"),
    "train.optimizer": ("adam", "adamw", "sgd"),
    "train.schedule": ("constant", "cosine", "plateau"),
    "train.strategy": ("default", "mirrored"),
    "train.precision": ("float32", "mixed_bfloat16", "mixed_float16", "auto"),
}


def recipe_names() -> list[str]:
    """Names of the recipes shipped in `keras_skel/configs/`."""
    folder = resources.files("keras_skel") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_recipe(name_or_path: str) -> tuple[dict, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        text, origin = path.read_text(), str(path)
    else:
        resource = resources.files("keras_skel") / "configs" / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown recipe {name_or_path!r}: not a file and not a shipped recipe; "
                f"shipped recipes: {', '.join(recipe_names())}"
            )
        text, origin = resource.read_text(), f"recipe {name_or_path}"
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin} must be a mapping of sections, got {type(raw).__name__}")
    return raw, origin


def load_config(name_or_path: str, overrides: Sequence[str] = ()) -> Config:
    """Loads a recipe by name or path and applies `key=value` overrides.

    Args:
        name_or_path: a shipped recipe name (`unet_shapes`) or a YAML file path.
        overrides: strings like `train.epochs=3` or `model.params.base_filters=8`.

    Returns:
        The frozen `Config`.

    Example:
        >>> cfg = load_config("unet_shapes", ["train.epochs=1"])
        >>> cfg.train.epochs
        1
    """
    raw, origin = _read_recipe(name_or_path)
    raw = apply_overrides(raw, overrides)
    return config_from_dict(raw, origin=origin)


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    """Returns a copy of the nested dict `raw` with dotted `key=value` overrides applied."""
    out = _deep_copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.epochs=3)")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _deep_copy(v) for k, v in raw.items()}
    return raw


def config_from_dict(raw: Mapping[str, Any], origin: str = "config") -> Config:
    """Builds a `Config` from nested mappings, rejecting unknown keys, wrong types and values
    that could only fail later (after TensorFlow started, or after training)."""
    cfg = _build(Config, raw, prefix="", origin=origin)
    _check_values(cfg, origin)
    return cfg


def _check_values(cfg: Config, origin: str) -> None:
    problems = []
    thin_sources, shape_sources = ("synthetic_thin", "thin_folder"), ("synthetic_shapes", "folder")
    natural_sources = ("synthetic_natural", "natural_folder")
    if (cfg.task == "volumes") != (cfg.data.source == "volumes_folder"):
        problems.append(f"task volumes goes with data.source volumes_folder (got task {cfg.task}, source "
                        f"{cfg.data.source})")
    if cfg.task == "volumes" and (cfg.model.name != "skeletonnet" or cfg.loss.name != "chamfer"):
        problems.append(f"task volumes needs model skeletonnet and loss chamfer, got {cfg.model.name} and "
                        f"{cfg.loss.name}")
    if cfg.task == "volumes" and cfg.data.image_size[0] != cfg.data.image_size[-1]:
        problems.append(f"task volumes renders square images: data.image_size must be square, got "
                        f"{list(cfg.data.image_size)}")
    if cfg.data.points < 1:
        problems.append(f"data.points must be >= 1, got {cfg.data.points}")
    if cfg.task == "natural":
        if cfg.data.source not in natural_sources:
            problems.append("task natural needs data.source synthetic_natural or natural_folder, "
                            f"got {cfg.data.source}")
        if cfg.data.target not in ("flux", "binary"):
            problems.append(f"task natural needs data.target flux or binary, got {cfg.data.target}")
        if cfg.data.flux_radius < 1:
            problems.append(f"data.flux_radius must be >= 1, got {cfg.data.flux_radius}")
        if cfg.model.name != "deepflux":
            problems.append(f"task natural needs model deepflux, got {cfg.model.name}")
        if (cfg.data.target == "flux") != (cfg.loss.name == "flux"):
            problems.append(f"data.target flux goes with loss flux (class-balanced L2) and data.target binary with a "
                            f"probability loss; got target {cfg.data.target}, loss {cfg.loss.name}")
    else:
        if cfg.data.source in natural_sources:
            problems.append(f"data.source {cfg.data.source} is for task natural (set task: natural)")
        if cfg.data.target in ("flux", "binary"):
            problems.append(f"data.target {cfg.data.target} is for task natural; task {cfg.task} learns skeleton "
                            "or shape")
    if cfg.task == "thin":
        if len(cfg.data.image_size) not in (2, 3):
            problems.append("data.image_size must have 2 (H, W) or 3 (D, H, W) entries, "
                            f"got {list(cfg.data.image_size)}")
        if cfg.data.source in shape_sources:
            problems.append(f"task thin needs data.source synthetic_thin or thin_folder, got {cfg.data.source}")
        if not 1 <= cfg.data.classes <= 8:
            problems.append(f"data.classes must be in 1..8, got {cfg.data.classes}")
        if cfg.data.tube_radius < 0:
            problems.append(f"data.tube_radius must be >= 0, got {cfg.data.tube_radius}")
    else:
        if len(cfg.data.image_size) != 2:
            problems.append(f"data.image_size must have 2 entries (H, W), got {list(cfg.data.image_size)}")
        if cfg.data.source in thin_sources:
            problems.append(f"data.source {cfg.data.source} is for task thin (set task: thin)")
    if cfg.data.batch_size < 1:
        problems.append(f"data.batch_size must be >= 1, got {cfg.data.batch_size}")
    if not cfg.data.image_size or min(cfg.data.image_size) < 8:
        problems.append(f"data.image_size must be at least 8x8, got {list(cfg.data.image_size)}")
    if (cfg.task in ("shapes", "natural") and cfg.data.augment and len(cfg.data.image_size) == 2
            and cfg.data.image_size[0] != cfg.data.image_size[1]):
        problems.append(f"data.image_size must be square when data.augment is on (90° rotations), "
                        f"got {list(cfg.data.image_size)}")
    if cfg.eval.tta and cfg.task not in ("shapes", "natural"):
        problems.append(f"eval.tta (threshold chosen with test-time augmentation) is for tasks shapes and natural, "
                        f"not {cfg.task}")
    if not cfg.eval.scales or any(not 0.25 <= float(s) <= 4.0 for s in cfg.eval.scales):
        problems.append(f"eval.scales must be one or more image scales in [0.25, 4], got {list(cfg.eval.scales)}")
    elif tuple(cfg.eval.scales) != (1.0,) and cfg.task != "natural":
        problems.append(f"eval.scales (multi-scale averaging) is for task natural, not {cfg.task}")
    if not 0 <= cfg.data.colour_augment <= 1:
        problems.append(f"data.colour_augment is a strength in [0, 1], got {cfg.data.colour_augment}")
    if cfg.data.photos is not None and cfg.data.source != "synthetic_natural":
        problems.append(f"data.photos textures fresh composites (data.source synthetic_natural), not data.source "
                        f"{cfg.data.source}; for a folder made by `data synth --photos` nothing more is needed")
    if cfg.data.colour_augment and cfg.task != "natural":
        problems.append(f"data.colour_augment is for RGB inputs (task natural), not task {cfg.task}")
    if not 0 < cfg.data.val_fraction < 1:
        problems.append(f"data.val_fraction must be in (0, 1), got {cfg.data.val_fraction}")
    if cfg.data.val_count < 1:
        problems.append(f"data.val_count must be >= 1, got {cfg.data.val_count}")
    if cfg.train.epochs < 1:
        problems.append(f"train.epochs must be >= 1, got {cfg.train.epochs}")
    if cfg.train.steps_per_epoch is not None and cfg.train.steps_per_epoch < 1:
        problems.append(f"train.steps_per_epoch must be >= 1 or null, got {cfg.train.steps_per_epoch}")
    if not cfg.eval.thresholds or not all(0 < t < 1 for t in cfg.eval.thresholds):
        problems.append("eval.thresholds must be a non-empty list of values in (0, 1), "
                        f"got {list(cfg.eval.thresholds)}")
    if not 0.0 <= cfg.data.clean_fraction <= 1.0:
        problems.append(f"data.clean_fraction must be in [0, 1], got {cfg.data.clean_fraction}")
    if cfg.eval.gate_radius < 0 or (cfg.eval.gate_radius and not cfg.eval.prune_length):
        problems.append(f"eval.gate_radius must be >= 0 and needs eval.prune_length > 0 (the ground-truth rule's "
                        f"10), got gate_radius {cfg.eval.gate_radius}, prune_length {cfg.eval.prune_length}")
    if cfg.train.init_member is not None and (cfg.train.init_from is None or cfg.train.init_member < 1):
        problems.append(f"train.init_member picks a member (>= 1) of the ensemble named by train.init_from; got "
                        f"init_member {cfg.train.init_member}, init_from {cfg.train.init_from}")
    if cfg.eval.prune_length < 0:
        problems.append(f"eval.prune_length must be >= 0 (0 = no pruning), got {cfg.eval.prune_length}")
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))


def _build(cls: type, raw: Any, prefix: str, origin: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: {prefix.rstrip('.') or 'top level'} must be a mapping")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{origin}: unknown key {prefix}{key}{hint}; valid keys under "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(fields)}"
        )
    values = {}
    for name, value in raw.items():
        typ = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(typ):
            values[name] = _build(typ, value or {}, key + ".", origin)
        else:
            values[name] = _coerce(value, typ, key, origin)
            if key in _CHOICES and values[name] not in _CHOICES[key]:
                raise ConfigError(
                    f"{origin}: {key} = {value!r} is not one of {', '.join(_CHOICES[key])}"
                )
    return cls(**values)


def _coerce(value: Any, typ: Any, key: str, origin: str) -> Any:
    origin_t = get_origin(typ)
    args = get_args(typ)
    if origin_t is Union:  # Optional[...]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, origin)
    if origin_t is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{origin}: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key, origin) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{origin}: {key} must have {len(args)} entries, got {value!r}")
        return tuple(_coerce(v, a, key, origin) for v, a in zip(value, args))
    if origin_t in (dict, Mapping) or typ is Mapping:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{origin}: {key} must be a mapping, got {value!r}")
        return dict(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{origin}: {key} must be a number, got {value!r}")
        return float(value)
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{origin}: {key} must be an integer, got {value!r}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: {key} must be true or false, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: {key} must be a string, got {value!r}")
        return value
    return value


def config_to_dict(cfg: Any) -> Any:
    """Plain nested dicts/lists of a config (for writing `config.yaml` into a run dir)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    return cfg
