"""Weights both ways between retina-seg and PyTorch, checked by their outputs.

Export: `retina-seg train` a ResNet-50 DeepLabV3 and DeepLabV3+ for a few steps on a tiny
synthetic set, `retina-seg export` them (torchvision's keys, SMP's keys, SMP's save_pretrained
folder), load each with `load_state_dict(strict=True)` into torchvision's `deeplabv3_resnet50` /
SMP's `DeepLabV3Plus` (or `smp.from_pretrained`), and compare their eval output on an image with
the probabilities `retina-seg predict` writes for it (16-bit maps).

Import: train torchvision's and SMP's models (2 classes, and SMP's binary `classes=1`) for two
Adam steps in PyTorch, save them with `torch.save(model.state_dict())` (and SMP's folder with
`save_pretrained`), predict the same image with `retina-seg predict --checkpoint <file or folder>`
and compare with PyTorch's own probabilities.

    python scripts/pytorch_round_trip.py --bin target/debug/retina-seg --work /tmp/round-trip

Exits non-zero on any difference above the tolerance (1e-4 on the vessel probability, on top of
the 16-bit maps' resolution 7.6e-6). The Python stack: scripts/python-requirements.txt.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.torch import load_file

SIZE = 64
TOLERANCE = 1e-4
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def run(binary, *args, cwd):
    print("$ retina-seg", " ".join(args), flush=True)
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n")
        sys.exit(f"retina-seg {args[0]} failed ({result.returncode})")
    return result.stdout


def image_tensor(path, mean, std):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    x = (rgb - np.array(mean)) / np.array(std)
    return torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).float()


def vessel_probability(logits):
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)[0, 0]
    return torch.softmax(logits, dim=1)[0, 1]


def torch_probability(model, image, mean, std):
    model.eval()
    with torch.no_grad():
        out = model(image_tensor(image, mean, std))
    return vessel_probability(out["out"] if isinstance(out, dict) else out).double().numpy()


def predicted_probability(pred_dir, image):
    stem = os.path.splitext(os.path.basename(image))[0]
    levels = np.asarray(Image.open(os.path.join(pred_dir, f"{stem}_prob.png")), dtype=np.float64)
    return levels / 65535.0


def compare(what, ours, theirs):
    diff = float(np.abs(ours - theirs).max())
    spread = float(theirs.max() - theirs.min())
    # A nearly constant map would agree whatever the weights: the models must say something.
    ok = diff <= TOLERANCE + 0.5 / 65535 and spread >= 0.01
    print(f"{what}: max |p(retina-seg) - p(PyTorch)| = {diff:.2e} (PyTorch's p in "
          f"[{theirs.min():.3f}, {theirs.max():.3f}]) {'ok' if ok else 'FAILED'}", flush=True)
    return ok


def predict(binary, work, checkpoint, out, *extra):
    run(binary, "predict", "--checkpoint", checkpoint, "--input", "image", "--out", out,
        "--fov-masks", "fov", "--prob-depth", "16", "--device", "cpu", "--workers", "0", *extra,
        cwd=work)
    return os.path.join(work, out)


def export_direction(binary, work, image):
    ok = True
    for arch in ["deeplabv3", "deeplabv3plus"]:
        run_dir = f"run-{arch}"
        run(binary, "train", "--data", "data", "--arch", arch, "--backbone", "r50", "--weights",
            "none", "--imgsz", str(SIZE), "--batch", "2", "--epochs", "3", "--lr", "1e-3",
            "--scheduler", "constant", "--workers", "0",
            "--device", "cpu", "--report", "false", "--out", run_dir, cwd=work)
        meta = json.load(open(os.path.join(work, run_dir, "checkpoints/last/meta.json")))
        mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
        ckpt = f"{run_dir}/checkpoints/last"
        ours = predicted_probability(predict(binary, work, ckpt, f"pred-{arch}"), image)
        exported = os.path.join(work, f"{arch}.safetensors")
        run(binary, "export", "--checkpoint", ckpt, "--out", exported, cwd=work)
        if arch == "deeplabv3":
            model = torchvision.models.segmentation.deeplabv3_resnet50(
                weights=None, weights_backbone=None, num_classes=2, aux_loss=True)
        else:
            model = smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, classes=2)
        model.load_state_dict(load_file(exported), strict=True)
        ok &= compare(f"export {arch} (strict load)", ours, torch_probability(model, image, mean, std))
        if arch == "deeplabv3plus":
            folder = os.path.join(work, "smp-pretrained")
            run(binary, "export", "--checkpoint", ckpt, "--out", folder, "--format",
                "smp-pretrained", cwd=work)
            model = smp.from_pretrained(folder)
            ok &= compare("export deeplabv3plus (smp.from_pretrained)", ours,
                          torch_probability(model, image, mean, std))
    return ok


def train_two_steps(model, classes):
    generator = torch.Generator().manual_seed(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(2):
        x = torch.randn(2, 3, SIZE, SIZE, generator=generator)
        y = torch.randint(0, 2, (2, SIZE, SIZE), generator=generator)
        out = model(x)
        out = out["out"] if isinstance(out, dict) else out
        if classes == 1:
            loss = F.binary_cross_entropy_with_logits(out[:, 0], y.float())
        else:
            loss = F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # Running statistics of these weights (cumulative averages over a few batches), so that the
    # eval-mode model says something (after two steps, momentum 0.1 leaves them near 0 and 1 and
    # every probability near 0.5, which any weights would match).
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(2, 3, SIZE, SIZE, generator=generator))
    return model


def import_direction(binary, work, image):
    ok = True
    torch.manual_seed(3)
    models = {
        "torchvision": (torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=2, aux_loss=True), 2),
        "smp": (smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, classes=2), 2),
        "smp-binary": (smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None,
                                         classes=1), 1),
    }
    for name, (model, classes) in models.items():
        model = train_two_steps(model, classes)
        theirs = torch_probability(model, image, *IMAGENET)
        path = os.path.join(work, f"{name}.pth")
        torch.save(model.state_dict(), path)
        ours = predicted_probability(
            predict(binary, work, path, f"pred-import-{name}", "--normalization", "imagenet",
                    "--imgsz", str(SIZE)), image)
        ok &= compare(f"import {name} (.pth)", ours, theirs)
        if name == "smp-binary":
            folder = os.path.join(work, "smp-binary-pretrained")
            model.save_pretrained(folder)
            ours = predicted_probability(
                predict(binary, work, folder, "pred-import-smp-folder", "--imgsz", str(SIZE)),
                image)
            ok &= compare("import smp-binary (save_pretrained folder)", ours, theirs)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the retina-seg binary")
    p.add_argument("--work", required=True, help="a scratch folder (created)")
    a = p.parse_args()
    binary = os.path.abspath(a.bin)
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, smp {smp.__version__}")
    run(binary, "synth", "--out", "data", "--count", "20", "--width", str(SIZE), "--height",
        str(SIZE), "--seed", "4", cwd=work)
    # One test image and an all-inside FOV mask for it (so every pixel is compared).
    os.makedirs(os.path.join(work, "image"), exist_ok=True)
    os.makedirs(os.path.join(work, "fov"), exist_ok=True)
    source = sorted(os.listdir(os.path.join(work, "data/test_images")))[0]
    image = os.path.join(work, "image", "retina.png")
    Image.open(os.path.join(work, "data/test_images", source)).convert("RGB").save(image)
    Image.fromarray(np.full((SIZE, SIZE), 255, dtype=np.uint8)).save(
        os.path.join(work, "fov", "retina_mask.png"))
    ok = export_direction(binary, work, image)
    ok &= import_direction(binary, work, image)
    if not ok:
        sys.exit("the PyTorch round trip differs")
    print("PyTorch round trip: every model gives PyTorch's probabilities")


if __name__ == "__main__":
    main()
