"""Benchmark: DeepFlux's flux → skeleton post-processing (Algorithm 1) in graph ops, and the
network + post-processing per image.

DeepFlux reports 5 ms on the CPU for the post-processing of a 300 × 200 image (and 14 ms for
VGG16 on a GPU); the goal here is ≤ 2 ms. Flux fields are the ground-truth context flux of
synthetic natural images' skeletons with Gaussian noise added (a trained model's output looks
like that: strong inside the context band, weak elsewhere). Times are medians of `--repeats`
calls of a traced `tf.function` (the graph a SavedModel runs), one image per call.

Run: `python tools/bench_flux.py [--model deepflux_natural] [--repeats 200]`. The last line
is `postprocess_ms=<median of Algorithm 1>`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_skel.data.natural import make_natural_sample  # noqa: E402
from keras_skel.data.targets import flux_target  # noqa: E402
from keras_skel.export.graph import skeletons_from_outputs  # noqa: E402
from keras_skel.ops.flux import flux_to_skeleton  # noqa: E402


def _median_ms(fn, inputs, repeats: int) -> float:
    fn(inputs[0])  # trace
    times = []
    for i in range(repeats):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        out = fn(x)
        for value in tf.nest.flatten(out):
            value.numpy()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _fluxes(height: int, width: int, count: int = 8) -> list[tf.Tensor]:
    rng = np.random.default_rng(0)
    out = []
    for index in range(count):
        _, skeleton = make_natural_sample(3, index, (height, width), "all")
        flux = flux_target(skeleton, 7) + rng.normal(0, 0.1, (height, width, 2)).astype(np.float32)
        out.append(tf.constant(flux[None]))
    return out


def _network_ms(spec: str | None, height: int, width: int, repeats: int) -> tuple[str, float] | None:
    from keras_skel.detection import load_detector

    try:
        detector = load_detector(spec) if spec else None
    except Exception as err:  # a missing shipped model only drops this row
        print(f"(no network row: {err})")
        return None
    if detector is None:
        return None
    image = make_natural_sample(5, 0, (height, width), "heldout")[0].astype(np.float32) / 255.0
    detector.detect(image)
    times = []
    for _ in range(max(5, repeats // 20)):
        start = time.perf_counter()
        detector.detect(image)
        times.append(time.perf_counter() - start)
    return detector.name, 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=200)
    parser.add_argument("--width", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--model", default="deepflux_natural",
                        help="natural model for the network + post-processing row ('' to skip)")
    args = parser.parse_args()
    h, w = args.height, args.width
    fluxes = _fluxes(h, w)
    spec = tf.TensorSpec([1, None, None, 2], tf.float32)

    algorithm1 = tf.function(lambda f: flux_to_skeleton(f, 0.4, 3, 4), input_signature=[spec])
    served = tf.function(lambda f: skeletons_from_outputs(f, 0.4, "flux", 3, 4), input_signature=[spec])
    rows = [("Algorithm 1 (magnitude, 8-bin ending points, dilate k1=3, erode k2=4)",
             _median_ms(algorithm1, fluxes, args.repeats)),
            ("Algorithm 1 + thinning to 1 px (what exported models run)", _median_ms(served, fluxes, args.repeats))]
    network = _network_ms(args.model, h, w, args.repeats)
    if network is not None:
        rows.append((f"network + post-processing, {network[0]}", network[1]))
    print(f"{h}x{w} image, CPU threads {tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}")
    print(f"| {'step':<78} | {'ms / image':>10} |")
    print(f"|{'-' * 80}|{'-' * 12}|")
    for name, ms in rows:
        print(f"| {name:<78} | {ms:>10.2f} |")
    print(f"postprocess_ms={rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
