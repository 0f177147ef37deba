"""Rebuilds a shipped SavedModel's graph from its Keras twin, keeping its weights, card and outputs.

For exports made before a change of the export code that leaves the answers alone: before
`export.graph.traced_once`, test-time augmentation graphs held the network 8 times inline (slow
to load, large `saved_model.pb`); before its `_noinline` mark, a loaded model's first call
optimized 8 copies of the network. This writes the version again from `saved_models/NAME.keras`
(the twin of the newest version) with the card's post-processing settings and the current
export code (`--why` says what changed, for the card's note), checks that the new graph answers
exactly like the old one on held-out synthetic inputs of several sizes (skeletons equal,
probabilities / fluxes within 1e-5, `predict_png` bytes equal), and only then replaces the
version folder in one step (the model card is kept, with a note added). Nothing is written when
the check fails.

    python tools/resave_shipped.py denoiser_shapes 3 --why "the network function the TTA views call marked _noinline"
    python tools/resave_shipped.py deepflux_natural 4 --count 6 --why "what changed in the export code"
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keras_skel.errors import KerasSkelError  # noqa: E402

SIZES = ((256, 256), (200, 232), (97, 131))


def _inputs(task: str, count: int) -> list[np.ndarray]:
    """Held-out inputs of several sizes: binary shapes with bumps, or natural composites."""
    out = []
    for i in range(count):
        size = SIZES[i % len(SIZES)]
        if task == "natural":
            from keras_skel.data.natural import make_natural_sample

            out.append(make_natural_sample(4201, i, size, split="heldout")[0].astype(np.float32)[None] / 255.0)
        else:
            from keras_skel.data.synthetic import make_shape_sample

            shape = make_shape_sample(4201, i, size, noise=3.0, noise_style="bumps", split="heldout")[0]
            out.append(shape.astype(np.float32)[None, ..., None])
    return out


def _png(array: np.ndarray) -> bytes:
    import cv2

    image = np.clip(array[0] * 255.0, 0, 255).astype(np.uint8)
    if image.shape[-1] == 3:
        image = image[..., ::-1]  # cv2 writes BGR
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _compare(old_dir: Path, new_dir: Path, inputs: list[np.ndarray]) -> list[str]:
    """Differences between the two SavedModels' answers (empty = the same)."""
    import tensorflow as tf

    old, new = tf.saved_model.load(str(old_dir)), tf.saved_model.load(str(new_dir))
    problems = []
    for i, x in enumerate(inputs):
        a = {k: v.numpy() for k, v in old.signatures["serving_default"](images=tf.constant(x)).items()}
        b = {k: v.numpy() for k, v in new.signatures["serving_default"](images=tf.constant(x)).items()}
        if sorted(a) != sorted(b):
            problems.append(f"input {i}: outputs {sorted(a)} became {sorted(b)}")
            continue
        for key in a:
            if a[key].dtype.kind in "fc":
                worst = float(np.abs(a[key] - b[key]).max()) if a[key].size else 0.0
                if a[key].shape != b[key].shape or worst > 1e-5:
                    problems.append(f"input {i} {x.shape[1:3]}: {key} differs by {worst:.2g}")
            elif not np.array_equal(a[key], b[key]):
                problems.append(f"input {i} {x.shape[1:3]}: {key} differs in {int((a[key] != b[key]).sum())} values")
        png = tf.constant([_png(x)])
        pa = old.signatures["predict_png"](image_bytes=png)
        pb = new.signatures["predict_png"](image_bytes=png)
        for key in pa:
            if pa[key].numpy().tolist() != pb[key].numpy().tolist():
                problems.append(f"input {i}: predict_png {key} differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n    python")[0],
                                     epilog='example: python tools/resave_shipped.py denoiser_shapes 3 --why "what the '
                                            'export code changed"',
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="shipped model name (saved_models/NAME/ and saved_models/NAME.keras)")
    parser.add_argument("version", type=int, help="the version its .keras twin belongs to")
    parser.add_argument("--models", type=Path, default=ROOT / "saved_models", help="the saved_models folder")
    parser.add_argument("--count", type=int, default=9, help="held-out inputs the check compares on")
    parser.add_argument("--why", required=True, help="what the current export code changes (it goes into the "
                        "card's note, after 'with the export code of that day')")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1 (the inputs the new graph is checked on), got {args.count}")

    from keras_skel.export.layout import atomic_directory
    from keras_skel.export.saved_model import MODEL_CARD, _write_archive, archive_from_card, read_model_card
    from keras_skel.inference import load_keras_model

    target = args.models / args.name / str(args.version)
    twin = args.models / f"{args.name}.keras"
    try:
        card = read_model_card(target)
        if not card:
            raise KerasSkelError(f"{target} has no model card ({MODEL_CARD}): is it a shipped version?")
        if not twin.is_file():
            raise KerasSkelError(f"{twin} is missing: the graph is rebuilt from the Keras twin")
        if card.get("task") not in ("shapes", "natural", None):
            raise KerasSkelError(f"{target}: task {card.get('task')!r} is not handled (shapes and natural only)")
        inputs = _inputs(card.get("task", "shapes"), args.count)
        start = time.time()
        with atomic_directory(target, force=True) as tmp:
            _write_archive(archive_from_card(load_keras_model(twin), card), tmp)
            problems = _compare(target, tmp, inputs)
            if problems:
                raise KerasSkelError("the rebuilt graph answers differently; nothing replaced:\n  " +
                                     "\n  ".join(problems[:20]))
            shutil.copytree(target / "assets.extra", tmp / "assets.extra", dirs_exist_ok=True)
            today = _dt.date.today().isoformat()
            sizes = sorted({x.shape[1:3] for x in inputs})
            card.setdefault("notes", []).append(
                f"Graph rebuilt {today} from {twin.name} by tools/resave_shipped.py with the export code of that day "
                f"({args.why}); same weights, answers checked equal on {len(inputs)} held-out inputs of sizes {sizes}.")
            (tmp / MODEL_CARD).write_text(json.dumps(card, indent=2))
            new_pb = (tmp / "saved_model.pb").stat().st_size
        print(f"{target}: rebuilt in {time.time() - start:.0f} s, saved_model.pb now {new_pb / 1e6:.2f} MB, "
              f"answers equal on {len(inputs)} inputs")
    except KerasSkelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
