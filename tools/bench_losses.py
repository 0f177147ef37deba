"""Benchmark: cost of the thin-structure losses — Dice+CE, +Skeleton Recall, +clDice.

One run, one table. For every configuration (loss × 2-D/3-D × K classes) it measures:

- **step ms**: the median wall time of one training step (`model.train_on_batch`: forward,
  loss, gradients, Adam update; `jit_compile=False` as in `training.py`) on one fixed
  in-memory batch of synthetic thin structures (`data.thin.make_thin_sample`), after warm-up
  steps (the first one traces the graph). The model is the same for the three losses of a
  row group, with the same initial weights: the 2-D U-Net of the thin recipes (`build_unet`,
  base 16, depth 3, 2 decoder convs) or the small 3-D U-Net (`build_unet3d`, base 8, depth 3);
  only the output channels change with K (1 sigmoid channel for K = 1, K + 1 softmax channels
  otherwise). The losses of a row group are timed *interleaved* in one process (one step of
  each per round, the order rotating), so that load from other processes, which comes and
  goes, slows them alike; should that process fail, a row falls back to the time measured in
  its own process (marked †).
- **peak RSS MiB**: the peak resident set (`VmHWM`) of a process that builds, compiles and
  trains (warm-up + `--memory-steps` steps) that configuration alone: each configuration runs
  in its own fresh process (`--child`), so the peak is its own; **Δ RSS** is the increase over
  the same dims/K's Dice+CE row.
- **tube ms/batch** (Skeleton Recall only): the CPU time of `data.targets.tubed_skeleton` for
  the batch's samples (one after the other, median of 5 repeats) — the skeleton target's CPU
  cost, which Skeleton Recall moves out of the training step into the input pipeline.
- **input pipeline vs step** (second table): samples/s of `thin_training_pipeline` over fresh
  samples (`thin_source`: generation, crop/flip augmentation, one-hot, with and without the
  tubed skeleton, batched and prefetched), against the step's samples/s (batch / step time).
  The pipeline is measured alone (its tf.data threads have every core); in training it shares
  the cores with the step.

A configuration that runs out of memory is the cell "OOM", never a crash: a child killed by a
signal (the kernel's OOM killer), or raising `MemoryError` / `tf.errors.ResourceExhaustedError`
/ `std::bad_alloc`, or going over `--memory-limit-gb` (a watchdog thread in the child polls its
RSS and exits with a dedicated code; RLIMIT_AS would break TensorFlow's virtual reservations).
Any other failure is "error" with the child's last stderr line.

The last line, `recall_overhead=<p>% cldice_overhead=<p>%`, is for 2-D, K = 3:
recall = (step_recall + tube_cpu_s_per_batch) / step_dice_ce − 1 and
cldice = step_cldice / step_dice_ce − 1. The tube's CPU cost is added *serially*, a
conservative bound: in training the tf.data pipeline makes the tubes on other threads while
the step runs, so when the pipeline keeps up the real overhead is the step's alone.

    python tools/bench_losses.py --quick                # 2-D K = 1, 3 at 128² + 3-D K = 1 at 32³ (~3 min)
    python tools/bench_losses.py                        # full: 2-D 128² and 3-D 48³, K = 1, 3, 8 (~9 min)
    python tools/bench_losses.py --dims 2 --classes 3 --steps 40 --json /tmp/losses.json
    python tools/bench_losses.py --memory-limit-gb 2    # cells over 2 GiB become "OOM"
    python tools/bench_losses.py --quick --threads 1    # steadier ratios on a shared machine

Defaults are sized for a 2-core CPU: 2-D crops 128², batch 4; 3-D volumes 48³, batch 2;
clDice with 10 soft-skeleton iterations (the recipes' value); 2 warm-up + 20 interleaved timed
steps per loss (--quick: 12). On an idle 2-core AMD EPYC, `--quick` took 162 s and the full
table 389 s (README, "Thin structures", has that table).

Caveats. These are CPU timings, not a GPU's, and RSS is host memory, not GPU memory (it
includes TensorFlow's own ~0.8 GiB). Timings are noisy on a shared machine and the ratios
depend on how many cores the step really gets, likely because Dice+CE's step is mostly
convolutions while clDice adds a long chain of small pooling ops, and the two do not scale
alike with the cores: under load from other processes (2-D, K = 3) clDice's overhead read
+88% to +104%, against +91% on the idle machine. `--threads 1` gives steadier numbers on a
shared machine, at the price of not measuring a multi-core step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from keras_skel.training import cpu_name, process_memory_mb

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LOSSES = ("dice_ce", "skeleton_recall", "cldice")
OOM_EXIT = 86  # a child's exit code when its watchdog saw RSS over --memory-limit-gb
OOM_MARKERS = ("MemoryError", "ResourceExhaustedError", "bad_alloc", "OOM when allocating", "Cannot allocate memory")


# ------------------------------------------------------------------------------------------
# Child side: one configuration in a fresh process
# ------------------------------------------------------------------------------------------


def _start_watchdog(limit_gb: float, interval: float = 0.01) -> None:
    """Exits the process with `OOM_EXIT` as soon as its RSS goes over `limit_gb`."""
    limit_mb = limit_gb * 1024

    def watch():
        while True:
            rss = process_memory_mb("VmRSS")
            if rss is not None and rss > limit_mb:
                sys.stdout.write(json.dumps({"status": "oom", "rss_mb": rss, "limit_mb": limit_mb}) + "\n")
                sys.stdout.flush()
                os._exit(OOM_EXIT)
            time.sleep(interval)

    threading.Thread(target=watch, name="rss-watchdog", daemon=True).start()


def _fallback_sample(seed: int, index: int, size: tuple[int, ...], classes: int):
    """Thin-ish labels without `data.thin`: the zero set of smoothed noise, a band ~2 px wide,
    split into `classes` by a second smooth field; the image is the labels plus noise."""
    import numpy as np
    import scipy.ndimage as ndi

    rng = np.random.default_rng([seed, index])
    field = ndi.gaussian_filter(rng.standard_normal(size), sigma=max(size) / 16)
    field /= np.abs(field).max() + 1e-12
    band = np.abs(field) < 0.04
    split = ndi.gaussian_filter(rng.standard_normal(size), sigma=max(size) / 8)
    ranks = np.argsort(np.argsort(split.ravel())).reshape(size)
    cls = (ranks * classes // split.size + 1).astype(np.uint8)
    labels = np.where(band, cls, 0).astype(np.uint8)
    image = np.clip(0.5 + 0.3 * (labels > 0) + 0.05 * rng.standard_normal(size), 0, 1).astype(np.float32)
    return image, labels


def _sample(seed: int, index: int, size: tuple[int, ...], classes: int):
    try:
        from keras_skel.data.thin import make_thin_sample

        return make_thin_sample(seed, index, size, classes)
    except Exception:  # data.thin missing or broken: realistic enough thin labels of our own
        return _fallback_sample(seed, index, size, classes)


def _build_model(cfg: dict):
    from keras_skel.data.thin_pipeline import output_channels

    channels = output_channels(cfg["classes"])
    activation = "sigmoid" if channels == 1 else "softmax"
    if cfg["dims"] == 2:
        from keras_skel.models.unet import build_unet

        return build_unet(base_filters=cfg["base"], depth=cfg["depth"], decoder_convs=cfg["decoder_convs"],
                          output_channels=channels, output_activation=activation)
    from keras_skel.models.unet3d import build_unet3d

    return build_unet3d(base_filters=cfg["base"], depth=cfg["depth"], output_channels=channels,
                        output_activation=activation)


def _loss(name: str, iterations: int):
    import keras_skel.losses  # noqa: F401  (registers the losses)
    from keras_skel.registry import LOSSES as REGISTRY

    params = {"skeleton_recall": {"recall_weight": 1.0},
              "cldice": {"cldice_weight": 1.0, "iterations": iterations}}.get(name, {})
    return REGISTRY.build(name, **params)


def _batch(cfg: dict):
    """The fixed batch: images `[B, *size, 1]`, labels `[B, *size, 1]` and the samples."""
    import numpy as np

    size = tuple(cfg["size"])
    samples = [_sample(cfg["seed"], i, size, cfg["classes"]) for i in range(cfg["batch"])]
    images = np.stack([s[0] for s in samples])[..., None].astype(np.float32)
    labels = np.stack([s[1] for s in samples])[..., None]
    return images, labels, samples


def _tubes(cfg: dict, samples) -> tuple:
    """The batch's tubed skeletons and their CPU seconds (median of 5 repeats, one sample after
    the other, as `tubed_skeleton` runs in the pipeline's map)."""
    import numpy as np

    from keras_skel.data.targets import tubed_skeleton

    totals = []
    for _ in range(5):
        start = time.perf_counter()
        tubes = [tubed_skeleton(s[1], cfg["tube_radius"]) for s in samples]
        totals.append(time.perf_counter() - start)
    return np.stack(tubes)[..., None], float(np.median(totals))


def _compiled(cfg: dict, loss):
    import keras

    keras.utils.set_random_seed(cfg["seed"])  # the same initial weights for every loss
    model = _build_model(cfg)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=False)
    return model


def _check_finite(value) -> float:
    import numpy as np

    value = float(np.asarray(value).ravel()[0])
    if not np.isfinite(value):
        raise FloatingPointError(f"loss is {value}")
    return value


def child_step(cfg: dict) -> dict:
    """One (loss, dims, K) configuration alone in this process: its peak RSS, the tube's CPU
    cost (Skeleton Recall), and its step time measured alone (the fallback when the
    interleaved timing child fails)."""
    import numpy as np
    import tensorflow as tf

    from keras_skel.data.thin_pipeline import encode_targets

    images, labels, samples = _batch(cfg)
    loss = _loss(cfg["loss"], cfg["iterations"])
    tube = tube_s = None
    if loss.uses_tubed_skeleton:
        tube, tube_s = _tubes(cfg, samples)
        tube = tf.constant(tube)
    y = encode_targets(tf.constant(labels), tube, cfg["classes"]).numpy()
    model = _compiled(cfg, loss)
    for _ in range(cfg["warmup"]):
        model.train_on_batch(images, y)
    times = []
    for _ in range(cfg["steps"]):
        start = time.perf_counter()
        value = model.train_on_batch(images, y)
        times.append(time.perf_counter() - start)
    value = _check_finite(value)
    step_s = float(np.median(times))
    return {"status": "ok", "kind": "step", "loss": cfg["loss"], "dims": cfg["dims"], "classes": cfg["classes"],
            "size": list(cfg["size"]), "batch": cfg["batch"], "params": int(model.count_params()),
            "step_s": step_s, "step_ms": 1e3 * step_s, "steps": cfg["steps"], "timing": "alone",
            "samples_per_s": cfg["batch"] / step_s,
            "tube_s_per_batch": tube_s, "tube_ms_per_batch": None if tube_s is None else 1e3 * tube_s,
            "loss_value": value, "peak_rss_mb": process_memory_mb("VmHWM")}


def child_timing(cfg: dict) -> dict:
    """The step times of several losses (same dims, K, model, batch) measured interleaved in
    one process: round-robin, one step of each loss per round (the order rotating), so that
    other load on the CPU slows every loss alike and the ratios stay fair."""
    import numpy as np
    import tensorflow as tf

    from keras_skel.data.thin_pipeline import encode_targets

    images, labels, samples = _batch(cfg)
    losses = {name: _loss(name, cfg["iterations"]) for name in cfg["losses"]}
    tube = None
    if any(loss.uses_tubed_skeleton for loss in losses.values()):
        tube = tf.constant(_tubes(cfg, samples)[0])
    models, targets = {}, {}
    for name, loss in losses.items():
        targets[name] = encode_targets(tf.constant(labels), tube if loss.uses_tubed_skeleton else None,
                                       cfg["classes"]).numpy()
        models[name] = _compiled(cfg, loss)
        for _ in range(cfg["warmup"]):
            models[name].train_on_batch(images, targets[name])
    names = list(models)
    times = {name: [] for name in names}
    for r in range(cfg["steps"]):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            value = models[name].train_on_batch(images, targets[name])
            times[name].append(time.perf_counter() - start)
            if r == cfg["steps"] - 1:
                _check_finite(value)
    return {"status": "ok", "kind": "timing", "dims": cfg["dims"], "classes": cfg["classes"], "steps": cfg["steps"],
            "step_s": {name: float(np.median(t)) for name, t in times.items()},
            "step_min_s": {name: float(min(t)) for name, t in times.items()}}


def child_pipeline(cfg: dict) -> dict:
    """samples/s of `thin_training_pipeline` over fresh samples, without and with the tube."""
    import tensorflow as tf

    from keras_skel.data.thin_pipeline import thin_training_pipeline

    size = tuple(cfg["size"])
    try:
        from keras_skel.data.thin import thin_source

        def stream():
            return thin_source(size, seed=cfg["seed"], classes=cfg["classes"])
        source = "thin_source"
    except Exception:
        def stream():
            def make(index):
                image, labels = _fallback_sample(cfg["seed"], int(index), size, cfg["classes"])
                return image[..., None], labels[..., None]

            def to_tensors(index):
                image, labels = tf.numpy_function(make, [index], [tf.float32, tf.uint8], stateful=False)
                return tf.ensure_shape(image, (*size, 1)), tf.ensure_shape(labels, (*size, 1))

            return tf.data.Dataset.counter().map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE)
        source = "fallback"

    out = {"status": "ok", "kind": "pipeline", "dims": cfg["dims"], "classes": cfg["classes"], "size": list(size),
           "batch": cfg["batch"], "source": source}
    for with_tube in (False, True):
        ds = thin_training_pipeline(stream(), size, cfg["batch"], seed=cfg["seed"], classes=cfg["classes"],
                                    with_tube=with_tube, tube_radius=cfg["tube_radius"], augment=True)
        it = iter(ds)
        warm = time.perf_counter()
        for i in range(1000):  # warm-up (tracing, thread pools, autotuning): 3 batches and 1 s
            next(it)
            if i >= 2 and time.perf_counter() - warm > 1.0:
                break
        batches, start = 0, time.perf_counter()
        while batches < cfg["min_batches"] or time.perf_counter() - start < cfg["min_seconds"]:
            next(it)
            batches += 1
        elapsed = time.perf_counter() - start
        out["tube_samples_per_s" if with_tube else "plain_samples_per_s"] = batches * cfg["batch"] / elapsed
        del it, ds
    out["peak_rss_mb"] = process_memory_mb("VmHWM")
    return out


def run_child(cfg: dict) -> dict:
    if cfg.get("memory_limit_gb"):
        _start_watchdog(cfg["memory_limit_gb"])
    if cfg.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(cfg["threads"])
    try:
        run = {"pipeline": child_pipeline, "timing": child_timing, "step": child_step}[cfg["kind"]]
        return run(cfg)
    except MemoryError:
        return {"status": "oom", "detail": "MemoryError"}
    except Exception as error:  # tf.errors.ResourceExhaustedError and friends are OOMs
        text = f"{type(error).__name__}: {error}".strip().splitlines()[0][:300]
        if any(marker in text for marker in OOM_MARKERS):
            return {"status": "oom", "detail": text}
        raise


# ------------------------------------------------------------------------------------------
# Parent side: spawn children, read their JSON lines, classify failures
# ------------------------------------------------------------------------------------------


def classify(returncode: int, stdout: str, stderr: str) -> dict:
    """The result of a finished child: its JSON line, or an "oom" / "error" record."""
    last_json = None
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                last_json = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    err_lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last_err = err_lines[-1].strip() if err_lines else ""
    if returncode == OOM_EXIT:
        detail = "over --memory-limit-gb"
        if last_json and "rss_mb" in last_json:
            detail += f" (RSS {last_json['rss_mb']:.0f} MiB)"
        return {"status": "oom", "detail": detail}
    if returncode == 0 and last_json is not None:
        return last_json
    if returncode < 0:  # killed by a signal: SIGKILL is the kernel's OOM killer; SIGABRT + bad_alloc
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL or any(m in stderr for m in OOM_MARKERS):
            return {"status": "oom", "detail": f"killed by {name}"}
        return {"status": "error", "detail": f"killed by {name}: {last_err}"}
    if any(m in stderr for m in OOM_MARKERS) or (last_json or {}).get("status") == "oom":
        return {"status": "oom", "detail": last_err}
    return {"status": "error", "detail": last_err or f"exit code {returncode}"}


def spawn(cfg: dict, timeout: float | None = None) -> dict:
    """Runs one configuration in a fresh Python process; never raises for the child's failure."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cfg)]
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
        result = classify(out.returncode, out.stdout, out.stderr)
    except subprocess.TimeoutExpired:
        result = {"status": "error", "detail": f"timed out after {timeout:.0f} s"}
    result.setdefault("kind", cfg["kind"])
    for key in ("dims", "classes"):
        result.setdefault(key, cfg[key])
    if cfg["kind"] == "step":
        result.setdefault("loss", cfg["loss"])
    result["wall_s"] = time.perf_counter() - start
    return result


def format_overhead_line(step_dice_ce: float | None, step_recall: float | None, tube_s: float | None,
                         step_cldice: float | None) -> str:
    """`recall_overhead=<p>% cldice_overhead=<p>%` (one decimal); recall includes the tube's
    CPU seconds per batch, added serially. A missing number gives `n/a`."""

    def pct(value):
        return "n/a" if value is None else f"{100.0 * value:.1f}%"

    recall = cldice = None
    if step_dice_ce:
        if step_recall is not None:
            recall = (step_recall + (tube_s or 0.0)) / step_dice_ce - 1.0
        if step_cldice is not None:
            cldice = step_cldice / step_dice_ce - 1.0
    return f"recall_overhead={pct(recall)} cldice_overhead={pct(cldice)}"


def _cell(result: dict) -> str | None:
    if result.get("status") == "ok":
        return None
    return "OOM" if result.get("status") == "oom" else "error"


def loss_table(results: list[dict]) -> list[str]:
    """Markdown rows: dims, K, loss, step ms, vs dice_ce, peak RSS, Δ RSS, tube ms/batch."""
    steps = [r for r in results if r.get("kind") == "step"]
    base = {(r["dims"], r["classes"]): r for r in steps if r["loss"] == "dice_ce" and r.get("status") == "ok"}
    lines = ["| dims | K | loss | step ms | vs dice_ce | +tube vs dice_ce | peak RSS MiB | Δ RSS MiB | tube ms/batch |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in steps:
        dims = f"{r['dims']}-D {'×'.join(map(str, r['size']))}" if "size" in r else f"{r['dims']}-D"
        head = f"| {dims} | {r['classes']} | {r['loss']} |"
        bad = _cell(r)
        if bad:
            lines.append(f"{head} {bad} | — | — | {bad} | — | — |")
            if r.get("detail"):
                notes.append(f"{r['dims']}-D K={r['classes']} {r['loss']}: {bad}: {r['detail']}")
            continue
        b = base.get((r["dims"], r["classes"]))
        vs = plus_tube = d_rss = "—"
        if b is not None and r["loss"] != "dice_ce":
            vs = f"{100 * (r['step_s'] / b['step_s'] - 1):+.1f}%"
            d_rss = f"{r['peak_rss_mb'] - b['peak_rss_mb']:+.0f}"
            if r.get("tube_s_per_batch") is not None:
                plus_tube = f"{100 * ((r['step_s'] + r['tube_s_per_batch']) / b['step_s'] - 1):+.1f}%"
        elif r["loss"] == "dice_ce":
            vs, d_rss = "0 (base)", "0"
        tube = "—" if r.get("tube_ms_per_batch") is None else f"{r['tube_ms_per_batch']:.1f}"
        mark = ""
        if r.get("timing", "interleaved") != "interleaved":
            mark = " †"
            notes.append(f"† {r['dims']}-D K={r['classes']} {r['loss']}: step timed {r['timing']}")
        lines.append(f"{head} {r['step_ms']:.0f}{mark} | {vs} | {plus_tube} | {r['peak_rss_mb']:.0f} | {d_rss} "
                     f"| {tube} |")
    return lines + ([""] + notes if notes else [])


def pipeline_table(results: list[dict]) -> list[str]:
    """Markdown rows: the input pipeline's samples/s vs the training step's samples/s."""
    steps = {(r["dims"], r["classes"], r["loss"]): r for r in results
             if r.get("kind") == "step" and r.get("status") == "ok"}
    lines = ["| dims | K | pipeline samples/s | pipeline + tube samples/s | step samples/s dice_ce "
             "| step samples/s recall | pipeline+tube / recall step |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in (r for r in results if r.get("kind") == "pipeline"):
        dims = f"{r['dims']}-D {'×'.join(map(str, r['size']))}" if "size" in r else f"{r['dims']}-D"
        head = f"| {dims} | {r['classes']} |"
        dice = steps.get((r["dims"], r["classes"], "dice_ce"))
        recall = steps.get((r["dims"], r["classes"], "skeleton_recall"))
        dice_rate = f"{dice['samples_per_s']:.1f}" if dice else "—"
        recall_rate = f"{recall['samples_per_s']:.1f}" if recall else "—"
        bad = _cell(r)
        if bad:
            lines.append(f"{head} {bad} | {bad} | {dice_rate} | {recall_rate} | — |")
            continue
        ratio = f"{r['tube_samples_per_s'] / recall['samples_per_s']:.1f}×" if recall else "—"
        lines.append(f"{head} {r['plain_samples_per_s']:.1f} | {r['tube_samples_per_s']:.1f} | {dice_rate} | "
                     f"{recall_rate} | {ratio} |")
    return lines


def overhead_from(results: list[dict], dims: int = 2, classes: int = 3) -> str:
    steps = {r["loss"]: r for r in results if r.get("kind") == "step" and r.get("status") == "ok"
             and r["dims"] == dims and r["classes"] == classes}
    dice, recall, cl = steps.get("dice_ce"), steps.get("skeleton_recall"), steps.get("cldice")
    return format_overhead_line(dice and dice["step_s"], recall and recall["step_s"],
                                recall and recall.get("tube_s_per_batch"), cl and cl["step_s"])


def plan(args) -> list[dict]:
    """Row groups in table order, one per (dims, K): the losses' memory children, the
    interleaved timing child's settings and the pipeline child."""
    groups = []
    for dims in args.dims:
        size = (args.size2d,) * 2 if dims == 2 else (args.size3d,) * 3
        batch = args.batch2d if dims == 2 else args.batch3d
        model = ({"base": args.base2d, "depth": args.depth2d, "decoder_convs": args.decoder_convs} if dims == 2
                 else {"base": args.base3d, "depth": args.depth3d, "decoder_convs": 0})
        classes_list = args.classes if dims == 2 or args.classes3d is None else args.classes3d
        common = {"dims": dims, "size": list(size), "batch": batch, "seed": args.seed, "threads": args.threads,
                  "tube_radius": args.tube_radius, "memory_limit_gb": args.memory_limit_gb}
        for k in classes_list:
            step = {**common, **model, "classes": k, "warmup": args.warmup, "iterations": args.iterations}
            groups.append({
                "steps": [{**step, "kind": "step", "loss": loss, "steps": args.memory_steps} for loss in args.losses],
                "timing": {**step, "kind": "timing", "losses": list(args.losses), "steps": args.steps},
                "pipeline": ({**common, "kind": "pipeline", "classes": k, "min_batches": args.pipeline_batches,
                              "min_seconds": args.pipeline_seconds} if args.pipeline else None),
            })
    return groups


def merge_timing(rows: list[dict], timing: dict | None) -> None:
    """Puts the interleaved step times into the rows (each row keeps its alone time as
    `alone_step_s`); rows keep their alone time where the timing child failed."""
    for row in rows:
        if row.get("status") != "ok":
            continue
        row["alone_step_s"] = row["step_s"]
        times = (timing or {}).get("step_s") if (timing or {}).get("status") == "ok" else None
        if times and row["loss"] in times:
            row.update(step_s=times[row["loss"]], step_ms=1e3 * times[row["loss"]], steps=timing["steps"],
                       samples_per_s=row["batch"] / times[row["loss"]], timing="interleaved")
        else:
            row["timing"] = "alone" + (f" (interleaved run: {timing.get('status')})" if timing else "")


def run_all(args, log=sys.stderr) -> list[dict]:
    """Runs every child; returns the step rows (timing merged in) and the pipeline rows."""
    results, start = [], time.perf_counter()

    def note(job, result, what):
        status = result.get("status")
        extra = result.get("detail", "") if status != "ok" else ""
        if status == "ok" and job["kind"] == "step":
            extra = f"{result['peak_rss_mb']:.0f} MiB, {result['step_ms']:.0f} ms/step alone"
        elif status == "ok" and job["kind"] == "timing":
            extra = ", ".join(f"{k} {1e3 * v:.0f}" for k, v in result["step_s"].items()) + " ms/step"
        print(f"  [{time.perf_counter() - start:6.0f} s] {job['dims']}-D K={job['classes']} {what}: {status} "
              f"{extra}", file=log, flush=True)

    for group in plan(args):
        rows = []
        for job in group["steps"]:
            rows.append(spawn(job, args.child_timeout))
            note(job, rows[-1], job["loss"])
        ok = [r["loss"] for r in rows if r.get("status") == "ok"]
        timing = None
        if ok:
            job = {**group["timing"], "losses": ok}
            timing = spawn(job, args.child_timeout)
            note(job, timing, "interleaved timing")
        merge_timing(rows, timing)
        results.extend(rows)
        if group["pipeline"]:
            results.append(spawn(group["pipeline"], args.child_timeout))
            note(group["pipeline"], results[-1], "pipeline")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="reduced table (2-D K = 1, 3; 3-D K = 1 at 32³; fewer steps), < 5 min on 2 cores")
    parser.add_argument("--dims", type=int, nargs="+", choices=(2, 3), help="default: 2 3")
    parser.add_argument("--classes", type=int, nargs="+", help="K values (default: 1 3 8)")
    parser.add_argument("--classes3d", type=int, nargs="+", help="K values for 3-D (default: as --classes)")
    parser.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    parser.add_argument("--size2d", type=int, help="2-D image side (default 128)")
    parser.add_argument("--size3d", type=int, help="3-D volume side (default 48; --quick: 32)")
    parser.add_argument("--batch2d", type=int, default=4)
    parser.add_argument("--batch3d", type=int, default=2)
    parser.add_argument("--base2d", type=int, default=16)
    parser.add_argument("--depth2d", type=int, default=3)
    parser.add_argument("--decoder-convs", type=int, default=2)
    parser.add_argument("--base3d", type=int, default=8)
    parser.add_argument("--depth3d", type=int, default=3)
    parser.add_argument("--steps", type=int, help="interleaved timed steps per loss (default 20; --quick: 12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first traces)")
    parser.add_argument("--memory-steps", type=int, default=3,
                        help="timed steps of each loss's own process (peak RSS; the fallback step time)")
    parser.add_argument("--iterations", type=int, default=10, help="clDice soft-skeleton iterations")
    parser.add_argument("--tube-radius", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false", help="skip the pipeline rates")
    parser.add_argument("--pipeline-batches", type=int, help="min timed pipeline batches (default 16; quick 8)")
    parser.add_argument("--pipeline-seconds", type=float, help="min timed pipeline seconds (default 3; quick 1.5)")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra/inter-op threads in the children (0 = TF's default, all cores)")
    parser.add_argument("--memory-limit-gb", type=float, help="a child over this RSS is the cell OOM")
    parser.add_argument("--child-timeout", type=float, default=900.0, help="seconds before a child is an error")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = run_child(json.loads(args.child))
        print(json.dumps(result), flush=True)
        return OOM_EXIT if result.get("status") == "oom" else 0

    quick = args.quick
    args.dims = args.dims or [2, 3]
    args.classes = args.classes or ([1, 3] if quick else [1, 3, 8])
    if quick and args.classes3d is None and 3 in args.dims:
        args.classes3d = [1]
    args.size2d = args.size2d or 128
    args.size3d = args.size3d or (32 if quick else 48)
    args.steps = args.steps or (12 if quick else 20)
    args.pipeline_batches = args.pipeline_batches or (8 if quick else 16)
    args.pipeline_seconds = args.pipeline_seconds or (1.5 if quick else 3.0)

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"2-D: {args.size2d}², batch {args.batch2d}, U-Net base {args.base2d} depth {args.depth2d} "
          f"decoder_convs {args.decoder_convs}; 3-D: {args.size3d}³, batch {args.batch3d}, U-Net3D base "
          f"{args.base3d} depth {args.depth3d}; clDice iterations {args.iterations}; tube radius "
          f"{args.tube_radius}; {args.warmup} warm-up + {args.steps} timed steps (median)"
          + (f"; {args.threads} TF threads" if args.threads else "")
          + (f"; memory limit {args.memory_limit_gb} GiB" if args.memory_limit_gb else ""), flush=True)
    start = time.perf_counter()
    results = run_all(args)
    print()
    print("\n".join(loss_table(results)))
    if any(r.get("kind") == "pipeline" for r in results):
        print()
        print("\n".join(pipeline_table(results)))
    total = time.perf_counter() - start
    print(f"\nwall time: {total:.0f} s")
    line = overhead_from(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": cpu_name(), "cpus": os.cpu_count(),
                                               "settings": {k: v for k, v in vars(args).items() if k != "child"},
                                               "results": results, "overhead": line, "wall_s": total}, indent=1))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
