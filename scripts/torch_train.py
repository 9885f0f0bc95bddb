"""PyTorch reference training for `scripts/learn-side-by-side.sh`: a recipe of `retina-seg train`
trained in PyTorch on the same images, labels, FOV masks and validation hold-out, written as
`retina-seg` writes a run, so that `retina-seg evaluate` scores both frameworks' predictions
with one scorer and `retina-seg compare` overlays both runs.

    retina-seg check-data --data DATA --export SPLIT          # the splits as retina-seg reads them
    python scripts/torch_train.py --split SPLIT/split.json --recipe quick --seed 1 --out RUN

Recipes (the same settings as the `retina-seg train` command in parentheses):

* `quick` (`train --preset quick`): segmentation_models_pytorch's
  `DeepLabV3Plus("resnet50", encoder_weights=None, encoder_output_stride=16, classes=2)`;
  random 64x64 crops at native resolution, 32 per training image and epoch, shuffled, batch 6
  (whole batches only); each crop a window of the whole image flipped horizontally (p 0.5) and
  rotated about its centre by U(-50, 50) degrees (p 0.5), reflect-101 border, bilinear image,
  nearest labels and FOV, up to 8 positions tried for one at least half inside the FOV (else the
  one with the most); normalisation by the training images' channel means and standard
  deviations; Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) with the poly schedule
  lr·(1 − i/total)^0.9 per step; loss F.cross_entropy(weight=[1, 8]) + soft Dice
  1 − (2Σpt + 1)/(Σp + Σt + 1) on the vessel softmax over the batch; 19 epochs.
* `deeplabv3` (`train --preset r50-512 --weights none --imgsz 128 --batch 2 --epochs 60`):
  torchvision's `deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=2,
  aux_loss=True)`; whole images resized to 128x128 (bilinear, half-pixel centres; labels and FOV
  nearest) with the same flip and rotation, shuffled, batch 2 (whole batches only); ImageNet
  normalisation; Adam 1e-4, x0.1 at epochs 25 and 50; F.cross_entropy(out) +
  0.5·F.cross_entropy(aux); 60 epochs.

Every epoch: the training loss and confusion counts (argmax of the training batches), then the
validation images whole — by 64-px sliding windows overlapping by a quarter and blended with
retina-seg's edge ramp for `quick`, resized for `deeplabv3` (probability resized back bilinearly,
align_corners=False) — vessel = probability >= 0.5; the model with the best validation vessel
IoU inside the FOV is kept (`best-iou`). Writes into RUN: `metrics.csv` (retina-seg's columns),
`predictions-{valid,test}/<name>_prob.png` (16-bit, the best model's), `best-iou.pt` and
`summary.json` (wall time, steps, best epoch). Data loading and augmentation run in the training
process (numpy), on the same threads as the model."""
import argparse
import copy
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

RECIPES = {
    "quick": dict(arch="deeplabv3plus", crop=64, crops_per_image=32, batch=6, epochs=19,
                  lr=1e-3, schedule="poly", class_weights=[1.0, 8.0], dice=1.0, aux=0.0,
                  normalization="computed", tile=64, overlap=0.25),
    "deeplabv3": dict(arch="deeplabv3", crop=None, imgsz=128, crops_per_image=1, batch=2,
                      epochs=60, lr=1e-4, schedule="multistep", class_weights=None, dice=0.0,
                      aux=0.5, normalization="imagenet", tile=None, overlap=0.0),
}
CROP_TRIES = 8
CROP_MIN_FOV = 0.5
METRICS = ["accuracy", "miou", "vessel_iou", "f1", "sensitivity", "specificity", "precision",
           "mcc"]


def load_split(manifest):
    root = Path(manifest).parent
    listing = json.loads(Path(manifest).read_text())["splits"]

    def read(entry):
        image = np.asarray(Image.open(root / entry["image"]).convert("RGB"), dtype=np.uint8)
        fov = (np.asarray(Image.open(root / entry["fov"]).convert("L")) > 0).astype(np.uint8)
        vessels = None
        if entry.get("vessels"):
            vessels = (np.asarray(Image.open(root / entry["vessels"]).convert("L")) > 0)
            vessels = vessels.astype(np.uint8)
        return dict(name=entry["name"], id=entry["id"], image=image, vessels=vessels, fov=fov)

    return {split: [read(e) for e in entries] for split, entries in listing.items()}


def computed_normalization(samples):
    total = np.zeros(3)
    squares = np.zeros(3)
    n = 0
    for s in samples:
        x = s["image"].reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(0)
        squares += (x * x).sum(0)
        n += x.shape[0]
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(squares / max(n, 1) - mean * mean, 1e-12))
    return mean.astype(np.float32).tolist(), std.astype(np.float32).tolist()


def normalized(image, norm):
    """uint8 HxWx3 -> float32 HxWx3, (x/255 - mean)/std per channel (retina-seg's look-up)."""
    mean, std = norm
    lut = np.stack([(np.arange(256, dtype=np.float32) / np.float32(255.0) - np.float32(mean[c]))
                    / np.float32(std[c]) for c in range(3)], axis=1)
    return np.stack([lut[image[..., c], c] for c in range(3)], axis=-1)


def reflect101(i, n):
    if n <= 1:
        return np.zeros_like(i)
    last = n - 1
    period = 2.0 * last
    m = np.mod(i, period)
    inside = (i >= 0) & (i <= last)
    return np.where(inside, i, np.where(m > last, period - m, m))


def warp_window(sample, size, window, hflip, angle_deg, nimage=None):
    """The window [x, y, w, h] of the sample resized to size (h, w), flipped and rotated about
    the resized image's centre: retina-seg's `warp_window`. Returns (image 3xhxw float32,
    vessels, fov) or, with nimage None, the FOV alone."""
    h, w = size
    x, y, ww, wh = window
    h0, w0 = sample["fov"].shape
    cx, cy = w / 2.0, h / 2.0
    rad = math.radians(angle_deg)
    sin, cos = math.sin(rad), math.cos(rad)
    oy, ox = np.meshgrid(np.arange(y, y + wh, dtype=np.float64),
                         np.arange(x, x + ww, dtype=np.float64), indexing="ij")
    u, v = ox + 0.5 - cx, oy + 0.5 - cy
    xs, ys = cos * u - sin * v + cx, sin * u + cos * v + cy
    if hflip:
        xs = w - xs
    rx, ry = reflect101(xs - 0.5, w), reflect101(ys - 0.5, h)
    sx, sy = w0 / w, h0 / h
    fx = np.clip(rx * sx + 0.5 * sx - 0.5, 0, w0 - 1)
    fy = np.clip(ry * sy + 0.5 * sy - 0.5, 0, h0 - 1)
    nx = (fx + 0.5).astype(np.int64)
    ny = (fy + 0.5).astype(np.int64)
    fov = sample["fov"][ny, nx]
    if nimage is None:
        return fov
    x0, y0 = fx.astype(np.int64), fy.astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w0 - 1), np.minimum(y0 + 1, h0 - 1)
    tx = (fx - x0).astype(np.float32)[..., None]
    ty = (fy - y0).astype(np.float32)[..., None]
    top = nimage[y0, x0] + (nimage[y0, x1] - nimage[y0, x0]) * tx
    bottom = nimage[y1, x0] + (nimage[y1, x1] - nimage[y1, x0]) * tx
    image = (top + (bottom - top) * ty).transpose(2, 0, 1)
    vessels = sample["vessels"][ny, nx] if sample["vessels"] is not None else np.zeros_like(fov)
    return np.ascontiguousarray(image, dtype=np.float32), vessels, fov


def training_item(sample, nimage, recipe, rng):
    hflip = rng.random() < 0.5
    rotate = rng.random() < 0.5
    angle = rng.uniform(-50.0, 50.0)
    angle = angle if rotate else 0.0
    h0, w0 = sample["fov"].shape
    if recipe["crop"] is None:
        s = recipe["imgsz"]
        return warp_window(sample, (s, s), (0, 0, s, s), hflip, angle, nimage)
    cw, ch = min(recipe["crop"], w0), min(recipe["crop"], h0)
    best = None
    for _ in range(CROP_TRIES):
        x = int(rng.integers(0, w0 - cw + 1))
        y = int(rng.integers(0, h0 - ch + 1))
        fov = warp_window(sample, (h0, w0), (x, y, cw, ch), hflip, angle)
        inside = fov.mean()
        if inside >= CROP_MIN_FOV:
            best = (inside, x, y)
            break
        if best is None or inside > best[0]:
            best = (inside, x, y)
    _, x, y = best
    return warp_window(sample, (h0, w0), (x, y, cw, ch), hflip, angle, nimage)


def build_model(recipe):
    if recipe["arch"] == "deeplabv3plus":
        import segmentation_models_pytorch as smp
        return smp.DeepLabV3Plus("resnet50", encoder_weights=None, encoder_output_stride=16,
                                 classes=2)
    from torchvision.models.segmentation import deeplabv3_resnet50
    return deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=2, aux_loss=True)


def forward(model, x):
    out = model(x)
    if isinstance(out, dict):
        return out["out"], out.get("aux")
    return out, None


def segmentation_loss(recipe, out, aux, target):
    weight = None
    if recipe["class_weights"] is not None:
        weight = torch.tensor(recipe["class_weights"], dtype=out.dtype)
    loss = F.cross_entropy(out, target, weight=weight)
    if aux is not None and recipe["aux"] != 0.0:
        loss = loss + recipe["aux"] * F.cross_entropy(aux, target, weight=weight)
    if recipe["dice"] != 0.0:
        p = torch.softmax(out, 1)[:, 1]
        t = target.to(p.dtype)
        dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        loss = loss + recipe["dice"] * dice
    return loss


def confusion(pred, truth, mask=None):
    pred, truth = pred.astype(bool), truth.astype(bool)
    if mask is not None:
        keep = mask.astype(bool)
        pred, truth = pred[keep], truth[keep]
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    return np.array([tp, fp, fn, tn], dtype=np.int64)


def summary(c):
    tp, fp, fn, tn = (float(v) for v in c)

    def ratio(a, b):
        return a / b if b > 0 else None

    ious = [r for r in (ratio(tn, tn + fp + fn), ratio(tp, tp + fp + fn)) if r is not None]
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return [ratio(tp + tn, tp + fp + fn + tn), sum(ious) / len(ious) if ious else None,
            ratio(tp, tp + fp + fn), ratio(2 * tp, 2 * tp + fp + fn), ratio(tp, tp + fn),
            ratio(tn, tn + fp), ratio(tp, tp + fp), 0.0 if den == 0 else (tp * tn - fp * fn) / den]


def window_starts(length, tile, overlap):
    if tile >= length:
        return [0]
    stride = max(int(round(tile * (1.0 - overlap))), 1)
    starts = []
    k = 0
    while k * stride + tile < length:
        starts.append(k * stride)
        k += 1
    starts.append(length - tile)
    return sorted(set(starts))


def windows(shape, tile, overlap):
    h, w = shape
    if tile is None:
        return [(0, 0, w, h)]
    tw, th = min(tile, w), min(tile, h)
    return [(x, y, tw, th) for y in window_starts(h, th, overlap)
            for x in window_starts(w, tw, overlap)]


def ramp(n, r):
    if r == 0:
        return np.ones(n, dtype=np.float32)
    d = np.minimum(np.arange(n), n - 1 - np.arange(n)).astype(np.float32) + 0.5
    return np.clip(d / r, 0.05, 1.0).astype(np.float32)


@torch.no_grad()
def predict(model, recipe, samples, nimages, batch=64):
    """Per sample: vessel probability (HxW float32) at its size and the mean validation loss of
    its inputs (None without labels). retina-seg's `predict` / validation of the recipe."""
    model.eval()
    tile, overlap = recipe["tile"], recipe["overlap"]
    size = recipe["crop"] or recipe["imgsz"]
    jobs = []
    for i, s in enumerate(samples):
        for win in windows(s["fov"].shape, tile, overlap):
            jobs.append((i, win))
    sums = [np.zeros(s["fov"].shape, np.float32) for s in samples]
    weights = [np.zeros(s["fov"].shape, np.float32) for s in samples]
    single = [len(windows(s["fov"].shape, tile, overlap)) == 1 for s in samples]
    losses = [[] for _ in samples]
    r = int(round(tile * overlap / 2.0)) if tile else 0
    for k in range(0, len(jobs), batch):
        chunk = jobs[k:k + batch]
        inputs, targets = [], []
        for i, (x, y, ww, wh) in chunk:
            s = samples[i]
            part = dict(fov=s["fov"][y:y + wh, x:x + ww],
                        vessels=None if s["vessels"] is None else s["vessels"][y:y + wh, x:x + ww])
            image, vessels, _ = warp_window(part, (size, size), (0, 0, size, size), False, 0.0,
                                            nimages[i][y:y + wh, x:x + ww])
            inputs.append(image)
            targets.append(vessels)
        out, aux = forward(model, torch.from_numpy(np.stack(inputs)))
        prob = torch.softmax(out, 1)[:, 1:2]
        for j, (i, (x, y, ww, wh)) in enumerate(chunk):
            if samples[i]["vessels"] is not None:
                t = torch.from_numpy(targets[j][None].astype(np.int64))
                one_aux = None if aux is None else aux[j:j + 1]
                losses[i].append(float(segmentation_loss(recipe, out[j:j + 1], one_aux, t)))
            p = prob[j:j + 1]
            if (wh, ww) != tuple(p.shape[2:]):
                p = F.interpolate(p, size=(wh, ww), mode="bilinear", align_corners=False)
            p = p[0, 0].numpy()
            if single[i]:
                sums[i][...] = p
                weights[i][...] = 1.0
                continue
            wgt = ramp(wh, r)[:, None] * ramp(ww, r)[None, :]
            sums[i][y:y + wh, x:x + ww] += p * wgt
            weights[i][y:y + wh, x:x + ww] += wgt
    probs = [s / w for s, w in zip(sums, weights)]
    return probs, [float(np.mean(v)) if v else None for v in losses]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", required=True, help="split.json of `retina-seg check-data --export`")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="quick")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, help="default: the recipe's")
    ap.add_argument("--crops-per-image", type=int, help="default: the recipe's")
    ap.add_argument("--imgsz", type=int, help="whole-image recipes: the input size")
    ap.add_argument("--batch", type=int, help="default: the recipe's")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.time()
    recipe = dict(RECIPES[args.recipe])
    for key in ("epochs", "crops_per_image", "imgsz", "batch"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load_split(args.split)
    train, valid = data.get("train", []), data.get("valid", [])
    if not train or not valid:
        raise SystemExit(f"{args.split}: needs a train and a valid split (has {sorted(data)})")
    norm = computed_normalization(train) if recipe["normalization"] == "computed" else IMAGENET
    ntrain = [normalized(s["image"], norm) for s in train]
    nvalid = [normalized(s["image"], norm) for s in valid]

    model = build_model(recipe)
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], betas=(0.9, 0.999), eps=1e-8)
    items = len(train) * recipe["crops_per_image"]
    iters = items // recipe["batch"]
    if iters == 0:
        raise SystemExit(f"{items} training items make no batch of {recipe['batch']}")
    total = iters * recipe["epochs"]
    if recipe["schedule"] == "poly":
        factor = lambda i: (1.0 - min(i / max(total, 1), 1.0)) ** 0.9  # noqa: E731
    else:
        factor = lambda i: 0.1 ** sum(i // iters >= m for m in (25, 50))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    rows, best, best_epoch, steps = [], -1.0, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        order = rng.permutation(items)[: iters * recipe["batch"]]
        image_c, fov_c = np.zeros(4, np.int64), np.zeros(4, np.int64)
        loss_sum, seen, lr = 0.0, 0, recipe["lr"]
        for b in range(iters):
            batch = [training_item(train[slot // recipe["crops_per_image"]],
                                   ntrain[slot // recipe["crops_per_image"]], recipe, rng)
                     for slot in order[b * recipe["batch"]:(b + 1) * recipe["batch"]]]
            x = torch.from_numpy(np.stack([it[0] for it in batch]))
            t = torch.from_numpy(np.stack([it[1] for it in batch]).astype(np.int64))
            lr = opt.param_groups[0]["lr"]
            o, a = forward(model, x)
            loss = segmentation_loss(recipe, o, a, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            loss_sum += float(loss.detach()) * len(batch)
            seen += len(batch)
            pred = o.detach().argmax(1).numpy()
            for k, it in enumerate(batch):
                image_c += confusion(pred[k], it[1])
                fov_c += confusion(pred[k], it[1], it[2])
        rows.append(("train", epoch, lr, loss_sum / max(seen, 1), image_c, fov_c))
        probs, losses = predict(model, recipe, valid, nvalid)
        image_c, fov_c = np.zeros(4, np.int64), np.zeros(4, np.int64)
        for s, p in zip(valid, probs):
            pred = (p >= 0.5).astype(np.uint8)
            image_c += confusion(pred, s["vessels"])
            fov_c += confusion(pred, s["vessels"], s["fov"])
        # The validation loss averages every input (window) of the split.
        n_inputs = [len(windows(s["fov"].shape, recipe["tile"], recipe["overlap"])) for s in valid]
        vloss = sum(l * n for l, n in zip(losses, n_inputs)) / max(sum(n_inputs), 1)
        rows.append(("valid", epoch, lr, vloss, image_c, fov_c))
        iou = summary(fov_c)[2] or 0.0
        if iou > best:
            best, best_epoch = iou, epoch
            best_state = copy.deepcopy(model.state_dict())
        print(f"epoch {epoch}/{recipe['epochs']}: train loss {loss_sum / max(seen, 1):.4f}, "
              f"valid loss {vloss:.4f}, valid vessel IoU (FOV) {100 * iou:.2f}% "
              f"({time.time() - start:.0f} s)", flush=True)
        write_metrics(out / "metrics.csv", rows)

    model.load_state_dict(best_state)
    torch.save(best_state, out / "best-iou.pt")
    for split in ("valid", "test"):
        samples = data.get(split, [])
        if not samples:
            continue
        nimages = [normalized(s["image"], norm) for s in samples]
        probs, _ = predict(model, recipe, samples, nimages)
        folder = out / f"predictions-{split}"
        folder.mkdir(exist_ok=True)
        for s, p in zip(samples, probs):
            levels = np.round(np.clip(p, 0.0, 1.0) * 65535.0).astype(np.uint16)
            Image.fromarray(levels).save(folder / f"{s['name']}_prob.png")
    (out / "summary.json").write_text(json.dumps(dict(
        framework=f"PyTorch {torch.__version__}", recipe=args.recipe, settings=recipe,
        seed=args.seed, steps=steps, best_epoch=best_epoch, best_valid_vessel_iou=best,
        normalization=dict(mean=list(norm[0]), std=list(norm[1])),
        wall_seconds=time.time() - start, threads=args.threads), indent=2))


def write_metrics(path, rows):
    head = ["epoch", "split", "lr", "loss"]
    head += [f"{region}_{m}" for region in ("image", "fov") for m in METRICS]
    head += [f"{region}_{c}" for region in ("image", "fov") for c in ("tp", "fp", "fn", "tn")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        for split, epoch, lr, loss, image_c, fov_c in sorted(rows, key=lambda r: (r[1], r[0] != "train")):
            cells = [epoch, split, f"{lr:e}", repr(float(loss))]
            for c in (image_c, fov_c):
                cells += ["" if v is None else f"{v:.6f}" for v in summary(c)]
            cells += [int(v) for v in image_c] + [int(v) for v in fov_c]
            w.writerow(cells)


if __name__ == "__main__":
    main()
