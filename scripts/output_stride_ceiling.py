"""How well can any DeepLabV3 or DeepLabV3+ score on these vessel masks at their native resolution?

DeepLabV3 predicts logits at 1/8 of the input (output stride 8) and upsamples them bilinearly
(`align_corners=False`) to the input size; DeepLabV3+ predicts them at 1/4 (its decoder works on
`layer1`'s features) and upsamples them x4 with `align_corners=True`. This script fits such a
low-resolution logit map directly to each ground-truth mask -- as if a network could output any
logits at all -- by gradient descent on a soft F1 inside the field of view, then thresholds the
upsampled map at the level with the best F1 and prints that F1. The result is what the output
geometry alone leaves reachable: an estimate found by optimisation (a better optimiser could
find slightly more), not a trained network's score. DeepLabV3 at output strides 4 and 2 is
printed for comparison (e.g. the same model on images upsampled 2x and 4x). For DeepLabV3+ the
logit map is ceil(H/4) x ceil(W/4) with its corners on the image's corners: the model itself
takes sides that are multiples of 16 (whole images padded, or sliding windows), which this
ignores.

Usage (torch from pip, Pillow, numpy):

    python scripts/output_stride_ceiling.py --masks DATA/valid_masks --images DATA/valid_images
    python scripts/output_stride_ceiling.py --masks DRIVE/test/1st_manual --fov DRIVE/test/mask

Masks and FOV masks are binarised at 128 and paired by the numeric id in the file name, like the
library does; without `--fov` the FOV is derived from the image (brightest channel > 20, holes
filled), as the library does for datasets without FOV masks.
"""

import argparse
import re
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

FOV_THRESHOLD = 20
IMAGE_SUFFIXES = {".tif", ".tiff", ".gif", ".png", ".jpg", ".jpeg", ".bmp"}


def by_id(folder):
    files = {}
    for path in sorted(Path(folder).iterdir()):
        match = re.search(r"\d+", path.name)
        if path.suffix.lower() in IMAGE_SUFFIXES and match:
            files[int(match.group())] = path
    if not files:
        raise SystemExit(f"{folder}: no image files with a numeric id in their name")
    return files


def derive_fov(image_path):
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    inside = rgb.max(axis=2) > FOV_THRESHOLD
    h, w = inside.shape
    outside = np.zeros_like(inside)
    queue = deque()
    for y in range(h):
        queue.extend([(y, 0), (y, w - 1)])
    for x in range(w):
        queue.extend([(0, x), (h - 1, x)])
    while queue:
        y, x = queue.popleft()
        if outside[y, x] or inside[y, x]:
            continue
        outside[y, x] = True
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < h and 0 <= nx < w and not outside[ny, nx]:
                queue.append((ny, nx))
    return ~outside


def reduced(n, halvings):
    # conv1 (7x7, stride 2, padding 3), maxpool (3x3, stride 2, padding 1) and layer2's first
    # block (3x3, stride 2, padding 1) each map n to ceil(n / 2).
    for _ in range(halvings):
        n = (n + 1) // 2
    return n


def best_f1(scores, truth):
    """Best F1 over all thresholds of `scores` (1-d) against boolean `truth`."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(truth[order])
    predicted = np.arange(1, len(order) + 1)
    # Only cut between distinct scores.
    last = np.r_[scores[order][1:] != scores[order][:-1], True]
    f1 = 2 * hits[last] / (predicted[last] + truth.sum())
    return float(f1.max())


def ceiling(mask, fov, stride, steps, align_corners=False):
    h, w = mask.shape
    halvings = stride.bit_length() - 1
    target = torch.tensor(mask, dtype=torch.float32)[None, None]
    inside = torch.tensor(fov, dtype=torch.float32)[None, None]
    logits = torch.zeros(1, 1, reduced(h, halvings), reduced(w, halvings), requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.3)

    def upsampled():
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=align_corners)

    for _ in range(steps):
        p = torch.sigmoid(upsampled())
        tp = (p * target * inside).sum()
        loss = 1 - 2 * tp / ((p * inside).sum() + (target * inside).sum())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        up = upsampled()[0, 0]
    return best_f1(up.numpy()[fov], mask[fov])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masks", required=True, help="folder of vessel masks")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fov", help="folder of FOV masks")
    source.add_argument("--images", help="folder of the images (FOV derived from them)")
    parser.add_argument("--strides", type=int, nargs="+", default=[8, 4, 2],
                        help="DeepLabV3 output strides to fit (8 is DeepLabV3's)")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps per mask")
    args = parser.parse_args()

    masks = by_id(args.masks)
    others = by_id(args.fov or args.images)
    columns = [f"DeepLabV3 F1 at output stride {s}" for s in args.strides]
    print("mask, vessel fraction of the FOV, " + ", ".join(columns) + ", DeepLabV3+ F1 (stride 4, corners aligned)")
    for key, mask_path in masks.items():
        if key not in others:
            raise SystemExit(f"{mask_path}: no FOV mask or image with id {key} in {args.fov or args.images}")
        mask = np.asarray(Image.open(mask_path).convert("L")) >= 128
        if args.fov:
            fov = np.asarray(Image.open(others[key]).convert("L")) >= 128
        else:
            fov = derive_fov(others[key])
        if fov.shape != mask.shape:
            raise SystemExit(f"{mask_path}: size {mask.shape} differs from its FOV's {fov.shape}")
        scores = [ceiling(mask, fov, s, args.steps) for s in args.strides]
        scores.append(ceiling(mask, fov, 4, args.steps, align_corners=True))
        print(f"{mask_path.name}, {mask[fov].mean():.3f}, " + ", ".join(f"{f:.3f}" for f in scores))


if __name__ == "__main__":
    main()
