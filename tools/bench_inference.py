"""Benchmark: inference speed and memory of every way to run a shipped model.

One table, same images (synthetic noisy 256×256 shapes; for a natural-image model, held-out
synthetic natural 256×256 RGB images and the Otsu classical pipeline), same run: classical skeletonize +
pruning, the `.keras` model, the SavedModel, and TFLite fp32 / fp16 / dynamic-range int8 /
full-integer int8 (the quantized variants are converted from the `.keras` model into a
temp dir). Each backend runs in its own fresh process so peak memory (max RSS) is its own.

    python tools/bench_inference.py                 # every shipped model
    python tools/bench_inference.py --model unet_shapes --count 32

Columns: ms/image at batch 1 (median over the images after a warm-up), images/s at batch 32
(one batched call where the backend takes batches; a loop for classical and TFLite, whose
input is one fixed-size image), peak RSS of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keras_skel.training import cpu_name, process_memory_mb

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
# Every shipped model (DESIGN.md §3: listed here and in serving/models.config).
SHIPPED = {"denoiser_shapes": {"task": "shapes", "size": 256},
           "canet_shapes": {"task": "shapes", "size": 256}, "unet_shapes": {"task": "shapes", "size": 256},
           "deepflux_natural": {"task": "natural", "size": 256}}
BACKENDS = ("classical", "keras", "savedmodel", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")


def _images(count: int, size: int):
    import numpy as np

    from keras_skel.data.synthetic import make_shape_sample

    return np.stack([make_shape_sample(4242, i, (size, size), noise=2.0)[0] for i in range(count)]).astype(bool)


def _natural_images(count: int, size: int):
    import numpy as np

    from keras_skel.data.natural import make_natural_sample

    return np.stack([make_natural_sample(4242, i, (size, size), "heldout")[0] for i in range(count)]) / np.float32(255)


def _natural_backend(backend: str, root: Path, variant_dir: str):
    """`(one image -> skeleton, batch -> outputs or None)` of a natural-image (DeepFlux) model."""
    import tensorflow as tf

    from keras_skel.detection import classical_natural_skeleton, load_detector

    name = root.name
    if backend == "classical":
        return classical_natural_skeleton, None
    if backend == "keras":
        detector = load_detector(root.parent / f"{name}.keras")
    elif backend == "savedmodel":
        detector = load_detector(root)
    else:
        from keras_skel.detection import _tflite_detector
        from keras_skel.export.saved_model import read_model_card
        from keras_skel.inference import _latest_version

        variant = backend.split("_", 1)[1]
        path = root.parent / f"{name}.tflite" if variant == "fp32" else Path(variant_dir) / f"{name}_{variant}.tflite"
        # The converted variants sit in a temp dir, away from the SavedModel whose card they share.
        detector = _tflite_detector(path, read_model_card(_latest_version(root)))
        return (lambda image: detector.detect(image)["skeleton"]), None
    return (lambda image: detector.detect(image)["skeleton"]), (lambda batch: detector.fn(tf.constant(batch)))


def _worker(backend: str, model_dir: str, count: int, size: int, variant_dir: str) -> dict:
    """Runs in a fresh process: times one backend and reports its peak RSS."""
    import numpy as np

    root = Path(model_dir)
    name = root.name
    natural = SHIPPED[name]["task"] == "natural"
    images = _natural_images(count, size) if natural else _images(count, size)
    batch_fn = None
    if natural:
        one, batch_fn = _natural_backend(backend, root, variant_dir)
    elif backend == "classical":
        from keras_skel.inference import ClassicalSkeletonizer

        one = ClassicalSkeletonizer().skeletonize
    elif backend == "keras":
        from keras_skel.inference import load

        model = load(root.parent / f"{name}.keras")
        one = model.skeletonize

        def batch_fn(batch):
            from keras_skel.inference import _skeleton_graph

            images = batch.astype(np.float32)[..., None]
            probability = model._probability_fn(images)
            graph = _skeleton_graph(model.prune_length, model.gate_radius)
            if model.gate_radius:
                return graph(probability, np.float32(model.threshold), images).numpy()
            return graph(probability, np.float32(model.threshold)).numpy()
    elif backend == "savedmodel":
        import tensorflow as tf

        from keras_skel.inference import load

        model = load(root)
        one = model.skeletonize
        signature = model._fn

        def batch_fn(batch):
            return signature(images=tf.constant(batch.astype(np.float32)[..., None]))["skeleton"].numpy()
    else:
        from keras_skel.inference import load

        variant = backend.split("_", 1)[1]
        path = root.parent / f"{name}.tflite" if variant == "fp32" else Path(variant_dir) / f"{name}_{variant}.tflite"
        one = load(path).skeletonize
    one(images[0])  # warm-up (tracing, allocation)
    times = []
    for image in images:
        start = time.perf_counter()
        one(image)
        times.append(time.perf_counter() - start)
    batch = images[:32]
    start = time.perf_counter()
    if batch_fn is not None:
        batch_fn(batch)
        start = time.perf_counter()
        batch_fn(batch)
    else:
        for image in batch:
            one(image)
    rate = len(batch) / (time.perf_counter() - start)
    peak_mb = process_memory_mb("VmHWM")
    return {"backend": backend, "ms_per_image": 1e3 * float(np.median(times)), "images_per_s_b32": rate,
            "peak_rss_mb": peak_mb}


def _convert_variants(model_dir: Path, size: int, out: Path, only: str | None = None) -> None:
    from keras_skel.export.saved_model import read_model_card
    from keras_skel.export.tflite import convert_natural_tflite, convert_tflite
    from keras_skel.inference import load_keras_model

    card = read_model_card(model_dir / str(max(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())))
    model = load_keras_model(model_dir.parent / f"{model_dir.name}.keras")
    for variant in ("float16", "dynamic", "int8") if only is None else (only,):
        short = {"float16": "fp16", "dynamic": "dynamic", "int8": "int8"}[variant]
        if card.get("task") == "natural":
            flatbuffer = convert_natural_tflite(model, card["stride"], card["threshold"], card["output"], (size, size),
                                                variant, card["k1"], card["k2"], card.get("tta", False),
                                                tuple(card.get("scales") or (1.0,)))
        else:
            flatbuffer = convert_tflite(model, card["threshold"], card["stride"], (size, size), variant,
                                        card.get("tta", False), card.get("prune_length", 0),
                                        card.get("gate_radius", 0))
        (out / f"{model_dir.name}_{short}.tflite").write_bytes(flatbuffer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SHIPPED), action="append", help="shipped model (default: all)")
    parser.add_argument("--models-dir", default=str(REPO / "saved_models"))
    parser.add_argument("--count", type=int, default=32, help="images (>= 32)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--variant-dir", help=argparse.SUPPRESS)
    parser.add_argument("--convert", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = max(args.count, 32)
    if args.convert:
        variant, model_dir = args.convert.split(":", 1)
        _convert_variants(Path(model_dir), SHIPPED[Path(model_dir).name]["size"], Path(args.variant_dir), variant)
        return
    if args.worker:
        backend, model_dir = args.worker.split(":", 1)
        print(json.dumps(_worker(backend, model_dir, count, SHIPPED[Path(model_dir).name]["size"], args.variant_dir)))
        return
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; images: {count} synthetic noisy shapes (natural-image models: "
          f"{count} held-out synthetic natural images)")
    for name in args.model or sorted(SHIPPED):
        model_dir = Path(args.models_dir) / name
        size = SHIPPED[name]["size"]
        if not model_dir.is_dir():
            print(f"{name}: not found in {args.models_dir} (export it first)")
            continue
        print(f"\n{name} at {size}x{size}")
        print(f"{'backend':<16}{'ms/img (b1)':>12}{'img/s (b32)':>13}{'peak RSS MB':>13}")
        with tempfile.TemporaryDirectory() as variants:
            # Each quantized variant is converted in its own process: a converter that crashes
            # (the TFLite converter has segfaulted on a TTA graph) fails that row, not the table.
            unconverted = {}
            for variant, short in (("float16", "fp16"), ("dynamic", "dynamic"), ("int8", "int8")):
                done = subprocess.run([sys.executable, __file__, "--convert", f"{variant}:{model_dir}",
                                       "--variant-dir", variants], capture_output=True, text=True)
                if done.returncode != 0:
                    lines = done.stderr.strip().splitlines()
                    unconverted[f"tflite_{short}"] = (f"conversion crashed (signal {-done.returncode})"
                                                      if done.returncode < 0 else lines[-1] if lines else "")
            for backend in BACKENDS:
                if backend in unconverted:
                    print(f"{backend:<16} failed: {unconverted[backend]}")
                    continue
                cmd = [sys.executable, __file__, "--worker", f"{backend}:{model_dir}", "--count", str(count),
                       "--variant-dir", variants]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{backend:<16} failed: {out.stderr.strip().splitlines()[-1]}")
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{backend:<16}{row['ms_per_image']:>12.1f}{row['images_per_s_b32']:>13.1f}"
                      f"{row['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
