"""Collect photographs for `keras-skel data synth --task natural --photos DIR`.

Walks the source folders, keeps one file per picture and writes it, its longer side reduced to
`--max-side`, into one flat folder:

- a picture shipped at several resolutions (wallpaper packages) is kept once, at its largest
  size: files whose 16 x 16 grey thumbnails and aspect ratios agree are the same picture;
- KDE-style wallpaper folders (``NAME/contents/images*/WxH.ext``: one design in several sizes,
  orientations and a dark variant) give one file, the largest, named after ``NAME``;
- files under `--min-side` px on their shorter side (icons, previews) are skipped.

The shipped DeepFlux's extra photographs came from two Debian packages (no install needed):

    apt-get download mate-backgrounds plasma-workspace-wallpapers
    for f in *.deb; do dpkg-deb -x "$f" debs; done
    python tools/collect_photos.py debs/usr/share/backgrounds/mate debs/usr/share/wallpapers --out data/photos

Prints one line per kept file and a summary; nothing in `--out` is overwritten without
`--overwrite`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from keras_skel.data.natural import PHOTO_MAX_SIDE, PHOTO_SUFFIXES, photo_split


def _picture(path: Path) -> tuple[str, str | None]:
    """`(output file name, wallpaper folder)`: a KDE-style ``NAME/contents/images*/WxH.ext`` file
    is ``NAME.jpg`` of folder ``NAME`` (all its files are one picture); any other file keeps
    its name (as .jpg) and belongs to no folder."""
    parts = path.parts
    if len(parts) >= 4 and parts[-3] == "contents" and parts[-2].startswith("images"):
        return f"{parts[-4]}.jpg", str(path.parents[2])
    return path.with_suffix(".jpg").name, None


def _thumb(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def collect(sources: list[Path], out: Path, max_side: int, min_side: int, overwrite: bool) -> int:
    files = sorted(p for s in sources for p in (s.rglob("*") if s.is_dir() else [s])
                   if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    kept: list[dict] = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < min_side:
            continue
        h, w = image.shape[:2]
        name, folder = _picture(path)
        entry = dict(path=path, name=name, folder=folder, area=h * w, aspect=w / h, thumb=_thumb(image))
        same = [k for k in kept if folder is not None and k["folder"] == folder]
        same += [k for k in kept if abs(k["aspect"] - entry["aspect"]) < 0.02 * k["aspect"]
                 and float(np.abs(k["thumb"] - entry["thumb"]).mean()) < 0.01]
        if same:
            if entry["area"] > same[0]["area"]:
                kept[kept.index(same[0])] = entry
            continue
        kept.append(entry)
    names: set[str] = set()
    for k in kept:  # two pictures with one file name: the later one gets its folder's name in front
        if k["name"] in names:
            k["name"] = f"{Path(k['folder'] or k['path']).parent.name}_{k['name']}"
        names.add(k["name"])
    out.mkdir(parents=True, exist_ok=True)
    clashes = [k["name"] for k in kept if (out / k["name"]).exists()]
    if clashes and not overwrite:
        sys.exit(f"{out} already holds {len(clashes)} of these files (e.g. {clashes[0]}); pass --overwrite")
    for k in kept:
        image = cv2.imread(str(k["path"]), cv2.IMREAD_COLOR)
        f = max_side / max(image.shape[:2])
        if f < 1:
            image = cv2.resize(image, (round(image.shape[1] * f), round(image.shape[0] * f)),
                               interpolation=cv2.INTER_AREA)
        target = out / k["name"]
        tmp = target.with_suffix(".tmp.jpg")
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            sys.exit(f"cannot write {tmp}")
        tmp.replace(target)
        print(f"{target.name:40s} {image.shape[1]:5d}x{image.shape[0]:<5d} {photo_split(target):8s} <- {k['path']}")
    held = sum(photo_split(k["name"]) == "heldout" for k in kept)
    print(f"kept {len(kept)} of {len(files)} files in {out}: {len(kept) - held} train, {held} heldout")
    return len(kept)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="folders (searched recursively) or files")
    parser.add_argument("--out", type=Path, required=True, help="flat output folder of JPEG files")
    parser.add_argument("--max-side", type=int, default=PHOTO_MAX_SIDE,
                        help=f"longer side of the written files [default: {PHOTO_MAX_SIDE}]")
    parser.add_argument("--min-side", type=int, default=400, help="skip smaller pictures [default: 400]")
    parser.add_argument("--overwrite", action="store_true", help="replace files of the same name in --out")
    args = parser.parse_args(argv)
    missing = [s for s in args.sources if not s.exists()]
    if missing:
        parser.error(f"no such file or folder: {missing[0]}")
    collect(args.sources, args.out, args.max_side, args.min_side, args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
