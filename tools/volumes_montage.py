"""Picture of synthetic SkeletonNet objects: renderings (two views each) and the ground-truth
meso-skeleton projected into the same views (red: curve points, blue: sheet points).

    python tools/volumes_montage.py --out docs/volumes_montage.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from keras_skel.data.volumes import CURVE, make_volume_sample, project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/volumes_montage.png"))
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    columns = []
    for index in range(args.count):
        sample = make_volume_sample(args.seed, index, resolution=32, image_size=args.size, views=2)
        tiles = []
        for image, (azimuth, elevation) in zip(sample.images, sample.viewpoints):
            picture = (image * 255).astype(np.uint8)
            skeleton = np.full_like(picture, 255)
            xy = project(sample.skeleton_points, azimuth, elevation, args.size)
            for (x, y), label in zip(xy, sample.skeleton_labels):
                colour = (220, 40, 40) if label == CURVE else (40, 90, 220)
                cv2.circle(skeleton, (int(round(x)), int(round(y))), 1, colour, -1)
            tiles.append(np.concatenate([picture, skeleton], axis=0))
        columns.append(np.concatenate(tiles, axis=0))
    montage = np.concatenate(columns, axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), montage[..., ::-1])
    print(f"wrote {args.out} ({montage.shape[1]}x{montage.shape[0]})")


if __name__ == "__main__":
    main()
