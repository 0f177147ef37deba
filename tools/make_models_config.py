"""Regenerates `serving/models.config` (TF Serving's model config) from `saved_models/`.

Every `saved_models/NAME/VERSION/` SavedModel is listed with base path `/models/NAME` (where
`serving/docker-compose.yml` mounts the folder), all its versions, and the version label
`stable` on the newest version (or the one `--stable NAME=V` names).

Run after `keras-skel export`:

    python tools/make_models_config.py                 # writes serving/models.config
    python tools/make_models_config.py --check         # exit 1 if the file is out of date (CI)
    python tools/make_models_config.py --stable unet_shapes=1 --stdout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keras_skel.errors import KerasSkelError  # noqa: E402
from keras_skel.serving.server import render_models_config  # noqa: E402


def _stable(values: list[str]) -> dict[str, int]:
    pinned = {}
    for value in values:
        name, _, version = value.partition("=")
        if not name or not version.isdigit():
            raise SystemExit(f"--stable {value!r}: expected NAME=VERSION, e.g. unet_shapes=1")
        pinned[name] = int(version)
    return pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "saved_models", help="the saved_models folder")
    parser.add_argument("--out", type=Path, default=ROOT / "serving" / "models.config", help="file to write")
    parser.add_argument("--base-path", default="/models", help="where TF Serving sees the models folder")
    parser.add_argument("--stable", action="append", default=[], metavar="NAME=V",
                        help="pin the stable label of a model (default: its newest version)")
    parser.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if it differs")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)

    try:
        text = render_models_config(args.models, base_path=args.base_path, stable=_stable(args.stable))
    except KerasSkelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date with {args.models}; run: python tools/make_models_config.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
