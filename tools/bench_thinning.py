"""Benchmark: graph-op thinning (`keras_skel.ops.thin`) vs scikit-image `skeletonize`.

Prints a table of milliseconds per image for synthetic shapes at several sizes, and checks the
two agree on every image. Run: `python tools/bench_thinning.py [--count N]`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from skimage.morphology import skeletonize  # noqa: E402

from keras_skel.data.synthetic import make_shape_sample  # noqa: E402
from keras_skel.ops.thinning import thin  # noqa: E402


def _time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8, help="shapes per size")
    args = parser.parse_args()
    print(f"{'size':>9} {'skimage ms':>11} {'thin ms':>9} {'thin batch ms/img':>18} {'identical':>10}")
    for size in (128, 256, 512):
        shapes = [make_shape_sample(99, i, (size, size), noise=0.0)[0].astype(bool) for i in range(args.count)]
        batch = np.stack(shapes)[..., None].astype(np.uint8)
        thin(batch[:1])  # trace once
        ours = thin(batch).numpy()[..., 0]
        same = all(np.array_equal(o, skeletonize(s)) for o, s in zip(ours, shapes))
        sk = _time(lambda: [skeletonize(s) for s in shapes]) / len(shapes)
        single = _time(lambda: [thin(s[None, :, :, None].astype(np.uint8)) for s in shapes]) / len(shapes)
        batched = _time(lambda: thin(batch)) / len(shapes)
        print(f"{size:>4}x{size:<4} {sk * 1e3:>11.1f} {single * 1e3:>9.1f} {batched * 1e3:>18.1f} {str(same):>10}")


if __name__ == "__main__":
    main()
