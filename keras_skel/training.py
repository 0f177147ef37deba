"""`train(cfg, run_dir)`: data → model → `model.fit` with checkpoints → threshold → run record.

A run directory holds:
    config.yaml     the recipe as run (a resumed run must match it)
    backup/         `BackupAndRestore` state, saved every `train.backup_every_steps` steps;
                    a killed run resumes from it, losing at most those steps
    best.keras      the model with the best validation loss
    model.json      what predicting with `best.keras` needs: threshold, stride, task, input
    metrics.json    validation scores at the chosen threshold, the threshold table, timings
    history.csv     per-epoch losses;  logs/  TensorBoard
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from typing import Sequence

import numpy as np
import yaml

from keras_skel.config import Config, config_from_dict, config_to_dict
from keras_skel.errors import ConfigError

__all__ = ["train", "TrainResult", "resolve_precision", "init_weights_from", "cpu_name", "process_memory_mb"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished training run produced.

    Attributes:
        run_dir: the run directory.
        threshold: threshold chosen on the validation split.
        val_exact_f1: dataset-level exact F1 on validation at that threshold (None for
            tasks `thin` and `natural`).
        val_tolerant_f1: dataset-level F1 within `eval.tolerance` px (None for task `thin`).
        train_seconds: wall time of `model.fit`.
        epochs: epochs completed.
        val_scores: task `thin`: validation Dice, clDice and Betti errors
            (`SegmentationAccumulator.result()` without the per-image rows); task `natural`:
            `detection.evaluate_detector` scores (skeleton F1, benchmark ODS / OIS).
    """

    run_dir: Path
    threshold: float
    val_exact_f1: float | None
    val_tolerant_f1: float | None
    train_seconds: float
    epochs: int
    val_scores: dict | None = None


def cpu_name() -> str:
    """The CPU's model name (for benchmark and run records), or the platform's best guess."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def process_memory_mb(field: str = "VmHWM") -> float | None:
    """This process's memory from /proc/self/status in MiB: "VmHWM" its peak resident set,
    "VmRSS" the current one (for benchmark records). Not ``getrusage``'s ``ru_maxrss``: on
    Linux it survives exec, so a child of a large process (a pytest worker holding TensorFlow)
    would report its parent's peak. Where /proc is missing the peak falls back to
    ``ru_maxrss`` and other fields are None."""
    import resource

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if field == "VmHWM" else None


def cpu_has_amx() -> bool:
    """True when /proc/cpuinfo lists AMX bf16 (Sapphire Rapids and later)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy for a `train.precision` setting (`auto` detects, never assumes)."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_amx() else "float32"


def _prepare_run_dir(cfg: Config, run_dir: Path, overwrite: bool) -> bool:
    """Creates or checks the run dir; returns True when resuming an interrupted run."""
    config_file = run_dir / "config.yaml"
    if run_dir.is_dir() and any(run_dir.iterdir()) and not config_file.exists():
        raise ConfigError(f"{run_dir} is not empty and is not a keras-skel run directory (no config.yaml); "
                          "choose another --out")
    if (run_dir / "metrics.json").exists() and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a finished run (metrics.json); choose another --out "
            "or pass --overwrite to replace it"
        )
    if overwrite:  # a fresh start: nothing of an earlier run, finished or not, is reused
        for name in ("backup", "logs", "best.keras", "model.json", "metrics.json", "history.csv"):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    resuming = False
    started = (run_dir / "backup").exists() or (run_dir / "best.keras").exists()
    if config_file.exists() and not overwrite and started:
        previous = config_from_dict(yaml.safe_load(config_file.read_text()), origin=str(config_file))
        if previous != cfg:
            raise ConfigError(
                f"{run_dir} holds an interrupted run with a different config ({config_file}); "
                "resume it with the same recipe, or choose another --out"
            )
        resuming = (run_dir / "backup").exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return resuming


def _best_val_loss(run_dir: Path) -> float | None:
    """Lowest `val_loss` in the run's `history.csv` (None when there is none)."""
    import csv

    try:
        with open(run_dir / "history.csv") as f:
            values = [float(row["val_loss"]) for row in csv.DictReader(f) if row.get("val_loss")]
    except (OSError, ValueError, KeyError):
        return None
    return min(values) if values else None


def init_weights_from(model, spec: str, member: int | None = None) -> int:
    """Copies weights from another Keras model into `model`, layer by layer by name.

    Args:
        model: the freshly built model.
        spec: a run dir, a `.keras` file or a shipped model's name (`keras_skel.inference.find_keras_file`).
        member: when `spec` is an ensemble (members `member_1` … `member_K`, `ensemble.build_ensemble`),
            the member to copy from (1..K); required for an ensemble, refused for a single model.

    Returns:
        The number of layers whose weights were copied.

    Raises:
        ConfigError: no layer matches (a different architecture or width); an ensemble without
            `member`, a member out of range, or `member` for a single model.
    """
    import warnings

    import keras

    import keras_skel.layers  # noqa: F401  (custom layers for deserialization)
    from keras_skel.inference import find_keras_file

    path = find_keras_file(spec)
    source = keras.saving.load_model(path, compile=False)
    members = [layer for layer in source.layers if isinstance(layer, keras.Model)]
    if members and member is None:
        raise ConfigError(f"train.init_from {spec}: {path} is an ensemble of {len(members)} models "
                          f"({', '.join(m.name for m in members)}); choose the one to start from with "
                          f"train.init_member=K (1..{len(members)}), e.g. --set train.init_member=1")
    if member is not None:
        if not members:
            raise ConfigError(f"train.init_member={member}: {path} (train.init_from {spec}) is a single model, "
                              "not an ensemble; leave train.init_member unset")
        if not 1 <= int(member) <= len(members):
            raise ConfigError(f"train.init_member={member}: {path} is an ensemble of {len(members)} models; "
                              f"expected 1..{len(members)}")
        source = members[int(member) - 1]
    copied, skipped = 0, []
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            skipped.append(layer.name)
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] != [tuple(w.shape) for w in layer.weights]:
            skipped.append(layer.name)
            continue
        layer.set_weights(theirs)
        copied += 1
    if not copied:
        raise ConfigError(f"train.init_from {spec}: no layer of {path} matches this model (different "
                          "architecture or width); use a model trained with the same model.params")
    if skipped:
        warnings.warn(f"init_from {path}: {len(skipped)} layer(s) kept their fresh weights (no match), "
                      f"e.g. {skipped[0]}", stacklevel=2)
    return copied


def _setup_devices(cpu_devices: int) -> None:
    import tensorflow as tf

    if cpu_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != cpu_devices:
            raise ConfigError(
                f"train.cpu_devices={cpu_devices} must be set before TensorFlow starts; "
                "run training in a fresh process"
            ) from None


def _strategy(name: str, cpu_devices: int):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if cpu_devices > 1 and not tf.config.list_physical_devices("GPU"):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MirroredStrategy()


def build_before_fit(model, dataset) -> None:
    """Creates, before `fit`, every variable its first training step would create.

    Under the default strategy Keras 3 leaves the optimizer's slots and the loss trackers
    unbuilt until the training function is first traced, and a `tf.function` whose first
    trace creates variables is traced a second time: the training step graph was built twice
    per run (a tiny SkeletonNet refinement run took 62 s, 28 s with one trace). Building them
    from the dataset's element spec (no batch is drawn, so the data order is untouched) leaves
    one trace. `fit` does the same itself only under a non-default strategy.

    Args:
        model: a compiled `keras.Model`.
        dataset: the training `tf.data.Dataset` (its `element_spec` gives the shapes).
    """
    build = getattr(model, "_symbolic_build", None)  # Keras 3 (what fit calls under a strategy)
    if build is not None:
        build(data_batch=dataset.element_spec)
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _optimizer(cfg: Config, total_steps: int):
    import keras

    lr = cfg.train.learning_rate
    if cfg.train.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(total_steps, 1))
    clip = {} if cfg.train.clipnorm is None else {"global_clipnorm": float(cfg.train.clipnorm)}
    if cfg.train.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.train.momentum, **clip)
    if cfg.train.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, **clip)
    return keras.optimizers.Adam(lr, **clip)


def _atomic_backup_callback(backup_dir: Path, save_freq: int):
    import keras

    class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
        """`BackupAndRestore` whose files are replaced atomically: a run killed while writing
        its backup resumes from the previous one instead of failing on a half-written file."""

        def _save_model(self):
            os.makedirs(self.backup_dir, exist_ok=True)
            weights_tmp = os.path.join(self.backup_dir, "incoming.weights.h5")
            self.model.save_weights(filepath=weights_tmp, overwrite=True)
            metadata_tmp = self._training_metadata_path + ".incoming"
            with open(metadata_tmp, "w") as f:
                json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
            os.replace(weights_tmp, self._weights_path)
            os.replace(metadata_tmp, self._training_metadata_path)

    return AtomicBackupAndRestore(str(backup_dir), save_freq=save_freq)


@contextlib.contextmanager
def _graceful_stop(callback):
    """While training, SIGINT / SIGTERM ask the callback to stop after the current batch, so the
    run is finished properly (best checkpoint, threshold, records); a second signal aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if callback.requested:
            raise KeyboardInterrupt
        callback.requested = True
        print(f"\n{signal.Signals(signum).name}: stopping after this batch and finishing the run "
              "(send it again to abort)", flush=True)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stop_request_callback():
    import keras

    class StopRequest(keras.callbacks.Callback):
        """Stops training at the next batch end once `requested` is set (by a signal)."""

        requested = False

        def on_train_batch_end(self, batch, logs=None):
            if self.requested:
                self.model.stop_training = True

    return StopRequest()


def _time_limit_callback(minutes: float):
    import keras

    class TimeLimit(keras.callbacks.Callback):
        """Stops training after a wall-clock budget (checked after every batch)."""

        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.start > minutes * 60:
                self.model.stop_training = True

    return TimeLimit()


def train(cfg: Config, run_dir: str | Path, overwrite: bool = False, verbose: int | str = "auto",
          command: str | None = None) -> TrainResult:
    """Trains a model as `cfg` says and records the run in `run_dir`.

    Resumes automatically when `run_dir` holds an interrupted run of the same config. Ctrl-C
    (SIGINT) or SIGTERM stops training after the current batch and still finishes the run
    (threshold search on the best checkpoint, records); a second signal aborts, leaving the
    backup to resume from.

    Args:
        cfg: the recipe (see `keras_skel.config`).
        run_dir: run directory (created).
        overwrite: replace a finished run in `run_dir` instead of refusing.
        verbose: Keras progress output (`"auto"`, 0, 1, 2).
        command: the command line that started the run (recorded in `model.json`).

    Returns:
        A `TrainResult`.

    Example:
        >>> from keras_skel.config import load_config
        >>> result = train(load_config("unet_tiny"), "runs/tiny")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    resuming = _prepare_run_dir(cfg, run_dir, overwrite)
    if resuming and verbose:
        print(f"resuming the interrupted run in {run_dir} from {run_dir / 'backup'}")
    _setup_devices(cfg.train.cpu_devices)

    import keras

    from keras_skel.data.pipeline import evaluation_pipeline, training_pipeline
    from keras_skel.registry import LOSSES, MODELS

    keras.utils.set_random_seed(cfg.seed)
    previous_policy = keras.mixed_precision.global_policy()
    policy = resolve_precision(cfg.train.precision)
    keras.mixed_precision.set_global_policy(policy)
    try:
        splits = build_splits(cfg)
        if not splits.val:
            raise ConfigError("the validation split is empty: raise data.val_count or data.val_fraction")
        # SkeletonNet builds one loss per output (skeletal_points.volume_losses).
        loss = None if cfg.task == "volumes" else LOSSES.build(cfg.loss.name, **cfg.loss.params)
        model_args = dict(input_channels=1)
        if cfg.task == "thin":
            train_ds, val_ds, model_args = _thin_datasets(cfg, splits, loss)
        elif cfg.task == "natural":
            train_ds, val_ds, model_args = _natural_datasets(cfg, splits)
        elif cfg.task == "volumes":
            train_ds, val_ds, model_args = _volume_datasets(cfg, splits)
        else:
            train_ds = training_pipeline(splits.train, cfg.data.image_size, cfg.data.batch_size, cfg.seed,
                                         cfg.data.augment, cfg.data.input_noise_std, splits.train_shuffle)
            val_targets = splits.val_targets or [skeleton for _, _, skeleton in splits.val]
            val_samples = [(shape, target) for (_, shape, _), target in zip(splits.val, val_targets)]
            val_ds = evaluation_pipeline(val_samples, cfg.data.image_size, cfg.data.batch_size)
        if cfg.train.steps_per_epoch is None and splits.train_count is None:
            raise ConfigError(f"data.source {cfg.data.source} is an endless stream: set train.steps_per_epoch")
        steps = cfg.train.steps_per_epoch or max(1, math.ceil(splits.train_count / cfg.data.batch_size))

        strategy = _strategy(cfg.train.strategy, cfg.train.cpu_devices)
        with strategy.scope():
            model = MODELS.build(cfg.model.name, **{**model_args, **cfg.model.params})
            if cfg.train.init_from and not resuming:
                init_weights_from(model, cfg.train.init_from, cfg.train.init_member)
            loss_weights = None
            if cfg.task == "volumes":
                from keras_skel.skeletal_points import volume_losses

                loss, loss_weights = volume_losses(cfg)
            model.compile(optimizer=_optimizer(cfg, steps * cfg.train.epochs), loss=loss, loss_weights=loss_weights,
                          jit_compile=cfg.train.jit_compile)
        if cfg.task == "thin":
            _check_thin_model(cfg, model, model_args)
        elif cfg.task == "natural":
            _check_natural_model(cfg, model)
        if isinstance(model.output, dict) and cfg.task == "thin":
            from keras_skel.data.thin_pipeline import thin_deep_supervision_targets

            depth, channels = len(model.output), model_args["output_channels"]
            train_ds = train_ds.map(lambda x, y: (x, thin_deep_supervision_targets(y, depth, channels)))
            val_ds = val_ds.map(lambda x, y: (x, thin_deep_supervision_targets(y, depth, channels)))
        elif isinstance(model.output, dict) and cfg.task == "shapes":  # deep supervision: a target per output
            from keras_skel.models.canet import deep_supervision_targets

            depth = len(model.output)  # `probability` + one side output per lower decoder stage
            # A skeleton is max-pooled (thin lines survive), a shape averaged (its boundary).
            mode = "mean" if cfg.data.target == "shape" else "max"
            train_ds = train_ds.map(lambda x, y: (x, deep_supervision_targets(y, depth, mode)))
            val_ds = val_ds.map(lambda x, y: (x, deep_supervision_targets(y, depth, mode)))

        callbacks = [
            _atomic_backup_callback(run_dir / "backup", cfg.train.backup_every_steps),
            # On resume, "best" continues from the interrupted session, so its better checkpoint
            # is not replaced by the first epoch after the restart.
            keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True,
                                            initial_value_threshold=_best_val_loss(run_dir) if resuming else None),
            keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
            keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resuming),
        ]
        if cfg.train.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(patience=cfg.train.early_stopping_patience,
                                                           restore_best_weights=False))
        if cfg.train.schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(patience=cfg.train.plateau_patience, factor=0.5))
        if cfg.train.max_minutes:
            callbacks.append(_time_limit_callback(cfg.train.max_minutes))

        stop_request = _stop_request_callback()
        callbacks.append(stop_request)
        step_timer = _step_timer_callback()
        callbacks.append(step_timer)
        with strategy.scope():
            build_before_fit(model, train_ds)
        start = time.monotonic()
        with _graceful_stop(stop_request):
            history = model.fit(train_ds, epochs=cfg.train.epochs, steps_per_epoch=steps,
                                validation_data=val_ds, callbacks=callbacks, verbose=verbose,
                                shuffle=False)  # the tf.data pipeline shuffles itself
        train_seconds = time.monotonic() - start
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    rates = dict(step_seconds=step_timer.median(), samples_per_second_training=step_timer.rate(cfg.data.batch_size))
    if cfg.task in ("thin", "natural", "volumes"):
        from keras_skel.segmentation import measure_pipeline_rate

        rates["samples_per_second_pipeline"] = measure_pipeline_rate(train_ds)
    return _finish_run(cfg, run_dir, model, splits, history, train_seconds, policy, command,
                       strategy.num_replicas_in_sync, rates)


def _step_timer_callback():
    """A callback recording the wall time of each training batch (`median()` is robust to
    the first, compiling, batch)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []
            self._start = None

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self._start is not None:
                self.times.append(time.perf_counter() - self._start)

        def median(self):
            return float(np.median(self.times)) if self.times else None

        def rate(self, batch_size):
            step = self.median()
            return batch_size / step if step else None

    return StepTimer()


def _thin_datasets(cfg, splits, loss):
    """Training and validation datasets of a thin-structure run, and the model's output args."""
    from keras_skel.data.thin_pipeline import output_channels, thin_evaluation_pipeline, thin_training_pipeline

    with_tube = bool(getattr(loss, "uses_tubed_skeleton", False))
    train_ds = thin_training_pipeline(splits.train, cfg.data.image_size, cfg.data.batch_size, cfg.seed,
                                      cfg.data.classes, with_tube, cfg.data.tube_radius, cfg.data.augment,
                                      finite=splits.train_count is not None, shuffle_buffer=splits.train_shuffle)
    val_samples = [(image, labels) for _, image, labels in splits.val]
    val_ds = thin_evaluation_pipeline(val_samples, cfg.data.image_size, cfg.data.batch_size, cfg.data.classes,
                                      with_tube, cfg.data.tube_radius)
    channels = output_channels(cfg.data.classes)
    return train_ds, val_ds, dict(input_channels=1, output_channels=channels,
                                  output_activation="sigmoid" if channels == 1 else "softmax")


def _volume_datasets(cfg, splits):
    """Training and validation datasets of a SkeletonNet run: every view of every object, with
    `data.points` ground-truth points per model output."""
    from keras_skel.data.volumes_pipeline import volume_dataset
    from keras_skel.skeletal_points import model_outputs, model_params

    outputs = model_outputs(cfg)
    resolution = int(model_params(cfg)["resolution"])
    size = tuple(splits.train_samples[0]["images"].shape[1:3])
    if size != tuple(cfg.data.image_size):
        raise ConfigError(f"the renderings of {cfg.data.train_dir} are {size[0]}x{size[1]} but data.image_size is "
                          f"{list(cfg.data.image_size)}: set --set 'data.image_size=[{size[0]}, {size[1]}]'")
    train_ds = volume_dataset(splits.train_samples, outputs, cfg.data.points, cfg.data.batch_size, cfg.seed, True,
                              resolution)
    val_ds = volume_dataset(splits.val, outputs, cfg.data.points, cfg.data.batch_size, cfg.seed + 1, False,
                            resolution)
    return train_ds, val_ds, dict(input_channels=3, image_size=int(cfg.data.image_size[0]))


def _natural_datasets(cfg, splits):
    """Training and validation datasets of a natural-image run (flux or dilated-skeleton
    targets made after augmentation), and the model's input/output args."""
    from keras_skel.data.natural_pipeline import natural_target_fn
    from keras_skel.data.pipeline import evaluation_pipeline, training_pipeline

    target_fn = natural_target_fn(cfg.data.target, cfg.data.flux_radius)
    train_ds = training_pipeline(splits.train, cfg.data.image_size, cfg.data.batch_size, cfg.seed, cfg.data.augment,
                                 cfg.data.input_noise_std, splits.train_shuffle, image_channels=3, target_fn=target_fn,
                                 colour_strength=cfg.data.colour_augment)
    val_samples = [(image, skeleton) for _, image, skeleton in splits.val]
    val_ds = evaluation_pipeline(val_samples, cfg.data.image_size, cfg.data.batch_size, image_channels=3,
                                 target_fn=target_fn)
    return train_ds, val_ds, dict(input_channels=3, output=cfg.data.target)


def _check_natural_model(cfg, model) -> None:
    want = 2 if cfg.data.target == "flux" else 1
    got = model.output_shape[-1] if not isinstance(model.output, dict) else None
    if got != want or model.input_shape[-1] != 3:
        raise ConfigError(f"task natural with data.target {cfg.data.target} needs a model from RGB (3 channels) to "
                          f"{want} output channel(s), got {model.input_shape} -> {model.output_shape}: use model "
                          "deepflux")


def _check_thin_model(cfg, model, model_args) -> None:
    from keras_skel.inference import infer_stride

    ndim = len(cfg.data.image_size)
    if len(model.input_shape) - 2 != ndim:
        raise ConfigError(f"model {cfg.model.name} takes {len(model.input_shape) - 2}-D inputs but data.image_size "
                          f"{list(cfg.data.image_size)} is {ndim}-D (use unet for images, unet3d for volumes)")
    output = model.output["probability"] if isinstance(model.output, dict) else model.output
    if output.shape[-1] != model_args["output_channels"]:
        raise ConfigError(f"model.params gives {output.shape[-1]} output channels; data.classes "
                          f"{cfg.data.classes} needs {model_args['output_channels']}")
    stride = infer_stride(model)
    if any(s % stride for s in cfg.data.image_size):
        raise ConfigError(f"data.image_size {list(cfg.data.image_size)} must be multiples of the model's stride "
                          f"{stride}")


def _max_size(cfg) -> int | None:
    """The largest input side the model runs whole (attention memory), None for no limit."""
    if cfg.model.name != "canet":
        return None
    from keras_skel.models.canet import build_canet, canet_max_size

    defaults = {k: v.default for k, v in inspect.signature(build_canet).parameters.items()}
    params = {**defaults, **dict(cfg.model.params)}
    return canet_max_size(params["attention_stages"], params["depth"])


def build_splits(cfg: Config, seed: int | None = None):
    """The dataset source's `Splits` for a recipe (`data.*` settings), with `seed` (default the
    recipe's own)."""
    from keras_skel.registry import DATASETS

    data_args = dict(config_to_dict(cfg.data), seed=cfg.seed if seed is None else int(seed),
                     image_size=tuple(cfg.data.image_size))
    return DATASETS.build(cfg.data.source, **DATASETS.accepted(cfg.data.source, data_args))


def reselect(run_dir: str | Path, overrides: Sequence[str] = (), command: str | None = None) -> TrainResult:
    """Re-does the end of a finished run with other `eval.*` settings: threshold search (and
    input-skip calibration) on its validation split, `model.json`, `metrics.json`.

    The trained weights stay (the skip scale may be recalibrated); the previous metrics'
    history and training time are kept. Only `eval.*` keys may change.

    Args:
        run_dir: a finished run of `keras-skel train`.
        overrides: `eval.key=value` strings, e.g. `eval.skip_scale_offsets=[1,2,4]`.
        command: recorded in `model.json` after the training command.

    Raises:
        ConfigError: not a finished run, or an override outside `eval.`.
    """
    import keras

    from keras_skel.config import apply_overrides

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file() or not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a finished training run (config.yaml, metrics.json)")
    bad = [o for o in overrides if not o.strip().startswith("eval.")]
    if bad:
        raise ConfigError(f"reselect changes only eval.* settings; got {', '.join(bad)}")
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg = config_from_dict(apply_overrides(raw, overrides), origin=str(run_dir / "config.yaml"))
    old_metrics = json.loads((run_dir / "metrics.json").read_text())
    old_info = json.loads((run_dir / "model.json").read_text()) if (run_dir / "model.json").is_file() else {}
    splits = build_splits(cfg)
    history = keras.callbacks.History()
    history.history = old_metrics.get("history", {})
    previous = old_info.get("command")
    joined = "; ".join(c for c in (previous, command) if c) or None
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return _finish_run(cfg, run_dir, None, splits, history, float(old_metrics.get("train_seconds", 0.0)),
                       old_metrics.get("precision_policy", "float32"), joined, old_metrics.get("replicas", 1))


def _calibrate_input_skip(cfg, full_model, model, skeletonizer, splits, best_path: Path) -> list[dict]:
    """Tries the input skip's scale plus each `eval.skip_scale_offsets` jointly with the
    thresholds on validation, keeps the best in the model (re-saving `best.keras`); returns the
    table. The network runs once: its logits before the skip are reused for every scale."""
    import keras

    from keras_skel.inference import KerasSkeletonizer

    skip = model.get_layer("input_skip")
    logits_model = keras.Model(model.inputs, skip.input[0])
    raw = KerasSkeletonizer(logits_model, stride=skeletonizer.stride, max_size=skeletonizer.max_size,
                            tta=skeletonizer.tta)
    shapes = [shape for _, shape, _ in splits.val]
    logits = [raw.probability(shape) for shape in shapes]
    signs = [2.0 * (shape > 0) - 1.0 for shape in shapes]
    gts = [skeleton for _, _, skeleton in splits.val]
    learned = float(skip.scale.numpy())
    table = []
    for offset in (0.0, *[float(o) for o in cfg.eval.skip_scale_offsets if float(o) != 0.0]):
        scale = learned + offset
        probabilities = [1.0 / (1.0 + np.exp(-(z + scale * sign))) for z, sign in zip(logits, signs)]
        threshold, rows = skeletonizer.choose_threshold(probabilities, shapes, gts, cfg.eval.thresholds,
                                                        cfg.eval.threshold_tolerance)
        f1 = max(row["f1"] for row in rows)
        table.append(dict(scale=round(scale, 4), offset=offset, threshold=threshold, f1=f1))
    best = max(table, key=lambda row: (row["f1"], -abs(row["offset"])))
    if best["offset"] != 0.0:
        skip.scale.assign(best["scale"])
        full_model.save(best_path)
    return table


def _finish_run(cfg, run_dir: Path, model, splits, history, train_seconds: float, policy: str,
                command: str | None, replicas: int, rates: dict | None = None) -> TrainResult:
    """Picks the threshold on validation with the best checkpoint and writes the run record."""
    import keras

    if cfg.task in ("thin", "natural", "volumes"):
        return _finish_task_run(cfg, run_dir, model, splits, history, train_seconds, policy, command, replicas,
                                rates or {})

    from keras_skel.inference import MODEL_INFO_FILE, KerasSkeletonizer, infer_stride
    from keras_skel.metrics.skeleton_f1 import SkeletonF1Accumulator
    from keras_skel.models.canet import probability_model

    best_path = run_dir / "best.keras"
    if best_path.exists():
        full_model = keras.saving.load_model(best_path, compile=False)
    else:  # no validation improvement was ever recorded (e.g. zero epochs run)
        full_model = model
        full_model.save(best_path)
    model = probability_model(full_model)
    skeletonizer = KerasSkeletonizer(model, stride=infer_stride(model), name=str(best_path),
                                     prune_length=cfg.eval.prune_length, max_size=_max_size(cfg),
                                     gate_radius=cfg.eval.gate_radius, tta=cfg.eval.tta)
    gts = [skeleton for _, _, skeleton in splits.val]
    shapes = [shape for _, shape, _ in splits.val]

    skip_table = None
    if cfg.eval.skip_scale_offsets and any(layer.name == "input_skip" for layer in model.layers):
        skip_table = _calibrate_input_skip(cfg, full_model, model, skeletonizer, splits, best_path)
    probabilities = [skeletonizer.probability(shape) for shape in shapes]
    threshold, table = skeletonizer.choose_threshold(probabilities, shapes, gts, cfg.eval.thresholds,
                                                     cfg.eval.threshold_tolerance)
    skeletons = [skeletonizer.skeleton_from_probability(p, threshold, shape=shape)
                 for p, shape in zip(probabilities, shapes)]
    scores = {}
    for key, tol in (("exact", 0.0), ("tolerant", cfg.eval.tolerance)):
        acc = SkeletonF1Accumulator(tol)
        for skeleton, gt in zip(skeletons, gts):
            acc.update(skeleton, gt)
        result = acc.result()
        scores[key] = {k: result[k] for k in ("precision", "recall", "f1", "mean_image_f1")}

    info = dict(task=cfg.task, threshold=threshold, prune_length=cfg.eval.prune_length,
                gate_radius=cfg.eval.gate_radius, tta=bool(cfg.eval.tta), target=cfg.data.target,
                stride=skeletonizer.stride, max_size=skeletonizer.max_size, input="shape",
                input_channels=int(model.input_shape[-1]), image_size=list(cfg.data.image_size),
                model=cfg.model.name, data=splits.description, command=command)
    (run_dir / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2))
    epochs = len(history.history.get("loss", []))
    metrics = dict(
        threshold=threshold,
        threshold_table=table,
        val=scores,
        tolerance_px=cfg.eval.tolerance,
        val_count=len(gts),
        train_seconds=round(train_seconds, 1),
        epochs_this_session=epochs,
        precision_policy=policy,
        replicas=replicas,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        input_skip_calibration=skip_table,
        **(rates or {}),
    )
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(run_dir, threshold, scores["exact"]["f1"], scores["tolerant"]["f1"],
                       train_seconds, epochs)


def _finish_task_run(cfg, run_dir: Path, model, splits, history, train_seconds: float, policy: str,
                     command: str | None, replicas: int, rates: dict) -> TrainResult:
    """Scores the best checkpoint of a thin run (Dice, clDice, Betti) or a natural run (skeleton
    F1, benchmark ODS) and writes the run record."""
    import keras

    from keras_skel.inference import MODEL_INFO_FILE
    from keras_skel.models.canet import probability_model

    if cfg.task == "natural":
        from keras_skel.detection import natural_run_record as run_record
    elif cfg.task == "volumes":
        from keras_skel.skeletal_points import skeletonnet_run_record as run_record
    else:
        from keras_skel.segmentation import thin_run_record as run_record

    best_path = run_dir / "best.keras"
    if best_path.exists():
        model = keras.saving.load_model(best_path, compile=False)
    else:
        model.save(best_path)
    info, scores = run_record(cfg, run_dir, model if cfg.task == "volumes" else probability_model(model), splits,
                              command)
    (run_dir / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2))
    val = {k: v for k, v in scores.items() if k != "per_image"}
    metrics = dict(
        val=val,
        val_count=len(splits.val),
        train_seconds=round(train_seconds, 1),
        epochs_this_session=len(history.history.get("loss", [])),
        precision_policy=policy,
        replicas=replicas,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        **rates,
    )
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if cfg.task == "natural":
        return TrainResult(run_dir, info["threshold"], None, val["skeleton"]["f1"], train_seconds,
                           metrics["epochs_this_session"], val_scores=val)
    if cfg.task == "volumes":
        return TrainResult(run_dir, float(info.get("threshold", 0.0)), None, None, train_seconds,
                           metrics["epochs_this_session"], val_scores=val)
    return TrainResult(run_dir, 0.5, None, None, train_seconds, metrics["epochs_this_session"], val_scores=val)
