"""PyTorch + segmentation_models_pytorch predicting a folder of fundus images by batched sliding
windows, as `retina-seg predict` does with a crop-trained checkpoint: the reference for the
prediction throughput table (`scripts/predict-throughput.sh`).

    python scripts/torch_predict.py --weights model.safetensors --meta meta.json \\
        --images DIR --out DIR [--tile 64] [--overlap 0.25] [--batch 64] [--threads 2]

`--weights`: a DeepLabV3+ state_dict with SMP's keys (`retina-seg export` writes it from one of our
checkpoints; `--encoder resnet50` by default, output stride 16); `--meta`: the checkpoint's
`meta.json` (normalisation, input size). Windows of `tile` pixels every `tile * (1 - overlap)`
(rounded), the last flush with the edge, each resized to the model's input size when it differs,
`batch` windows per forward pass, softmax class 1, blended with weights ramping linearly over
`tile * overlap / 2` pixels from 0.05 at the window edges — the same windows and blend as
retina-seg's. Writes `<stem>_prob.png` (8-bit) and `<stem>_mask.png` (probability >= 0.5) per
image and prints the images per second of the whole loop (reading, predicting, writing)."""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file


def starts(length, tile, overlap):
    if tile >= length:
        return [0]
    stride = max(1, round(tile * (1 - overlap)))
    out = list(range(0, length - tile, stride))
    if not out or out[-1] != length - tile:
        out.append(length - tile)
    return out


def ramp(n, tile, overlap):
    r = round(tile * overlap / 2)
    if r == 0:
        return np.ones(n, dtype=np.float32)
    d = np.minimum(np.arange(n), n - 1 - np.arange(n)) + 0.5
    return np.clip(d / r, 0.05, 1.0).astype(np.float32)


def predict(model, rgb, mean, std, imgsz, tile, overlap, batch):
    h, w = rgb.shape[:2]
    x = torch.from_numpy(((rgb / 255.0 - mean) / std).transpose(2, 0, 1).astype(np.float32))
    th, tw = min(tile, h), min(tile, w)
    windows = [(y, x0) for y in starts(h, th, overlap) for x0 in starts(w, tw, overlap)]
    weight2d = np.outer(ramp(th, tile, overlap), ramp(tw, tile, overlap))
    if len(windows) == 1:
        weight2d = np.ones_like(weight2d)
    total = np.zeros((h, w), dtype=np.float32)
    weight = np.zeros((h, w), dtype=np.float32)
    for i in range(0, len(windows), batch):
        chunk = windows[i:i + batch]
        crops = torch.stack([x[:, y:y + th, x0:x0 + tw] for y, x0 in chunk])
        if (th, tw) != (imgsz, imgsz):
            crops = F.interpolate(crops, size=(imgsz, imgsz), mode="bilinear", align_corners=False)
        with torch.no_grad():
            prob = torch.softmax(model(crops), dim=1)[:, 1:2]
        if (th, tw) != (imgsz, imgsz):
            prob = F.interpolate(prob, size=(th, tw), mode="bilinear", align_corners=False)
        prob = prob[:, 0].numpy()
        for (y, x0), p in zip(chunk, prob):
            total[y:y + th, x0:x0 + tw] += p * weight2d
            weight[y:y + th, x0:x0 + tw] += weight2d
    return total / weight


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--encoder", default="resnet50")
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    import segmentation_models_pytorch as smp
    if a.threads:
        torch.set_num_threads(a.threads)
    meta = json.load(open(a.meta))
    mean = np.array(meta["normalization"]["mean"])
    std = np.array(meta["normalization"]["std"])
    imgsz = meta["imgsz"]
    model = smp.DeepLabV3Plus(a.encoder, encoder_weights=None, encoder_output_stride=16, classes=2)
    model.load_state_dict(load_file(a.weights), strict=True)
    model.eval()
    os.makedirs(a.out, exist_ok=True)
    files = sorted(f for f in os.listdir(a.images) if f.lower().endswith((".png", ".jpg", ".tif", ".tiff")))
    begin = time.perf_counter()
    for name in files:
        rgb = np.asarray(Image.open(os.path.join(a.images, name)).convert("RGB"), dtype=np.float64)
        prob = predict(model, rgb, mean, std, imgsz, a.tile, a.overlap, a.batch)
        stem = os.path.splitext(name)[0]
        Image.fromarray(np.round(prob * 255).astype(np.uint8)).save(os.path.join(a.out, f"{stem}_prob.png"))
        Image.fromarray(((prob >= 0.5) * 255).astype(np.uint8)).save(os.path.join(a.out, f"{stem}_mask.png"))
    seconds = time.perf_counter() - begin
    print(f"PyTorch {torch.__version__} + SMP: {len(files)} image(s) in {seconds:.1f} s, "
          f"{len(files) / seconds:.2f} img/s (batch {a.batch}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
