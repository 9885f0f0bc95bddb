"""PyTorch reference for the side-by-side tables: torchvision's DeepLabV3 and
segmentation_models_pytorch's DeepLabV3+ trained and run exactly as `cargo bench --bench
throughput` runs the Rust model, on the same machine.

    python scripts/torch_reference.py --device cpu --configs r50-128 --threads 2 --profile --out torch.json
    python scripts/torch_reference.py --device cuda --configs r50-512,r50-768,r101-512,r101-640,r101-768

Per configuration (`<arch>-<imgsz>[-b<batch>]`, batch 2 by default): arch r50 or r101 is
deeplabv3_resnet{50,101}(weights=None, num_classes=2, aux_loss=True); r50plus or r101plus is
smp.DeepLabV3Plus("resnet{50,101}", encoder_weights=None, encoder_output_stride=16, classes=2)
(segmentation_models_pytorch, no aux head). A training step = forward + cross_entropy(out)
(+ 0.5 * cross_entropy(aux) for DeepLabV3) + backward + Adam(lr 1e-4, eps 1e-8) on a random batch; inference = model.eval() forward + argmax under no_grad. Reported: train and inference
images/s after warm-up, the first step's time, peak memory (CUDA: max allocated after the warm-up;
CPU: the process's peak resident set after the training steps, as the Rust bench reads it), and
with --profile the stages the Rust bench reports (forward + loss, backward, Adam step;
eval forward of stem and layer1..4). Writes JSON in the Rust bench's format (`rows`, `profiles`)."""
import argparse
import json
import platform
import resource
import time

import torch
import torch.nn as nn
import torchvision
from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101


def parse(spec):
    parts = spec.split("-")
    arch, size = parts[0], int(parts[1])
    batch = int(parts[2][1:]) if len(parts) > 2 else 2
    if arch not in ("r50", "r101", "r50plus", "r101plus"):
        raise SystemExit(f"bad config {spec}: arch must be r50, r101, r50plus or r101plus")
    return dict(name=f"{arch}-{size}-b{batch}", arch=arch, imgsz=size, batch=batch)


class Plus(nn.Module):
    """SMP's DeepLabV3+ with torchvision's output convention ({"out": logits}) and its encoder's
    ResNet under the names the profile reads (conv1, bn1, relu, maxpool, layer1..4)."""

    def __init__(self, arch):
        super().__init__()
        import segmentation_models_pytorch as smp
        self.net = smp.DeepLabV3Plus(f"resnet{arch[1:-4]}", encoder_weights=None,
                                     encoder_output_stride=16, classes=2)
        self.backbone = self.net.encoder

    def forward(self, x):
        return {"out": self.net(x)}


def build(cfg, device):
    torch.manual_seed(0)
    if cfg["arch"].endswith("plus"):
        return Plus(cfg["arch"]).to(device)
    ctor = deeplabv3_resnet50 if cfg["arch"] == "r50" else deeplabv3_resnet101
    return ctor(weights=None, weights_backbone=None, num_classes=2, aux_loss=True).to(device)


def loss_of(crit, o, y):
    loss = crit(o["out"], y)
    return loss + 0.5 * crit(o["aux"], y) if "aux" in o else loss


def batch(cfg, device):
    n, s = cfg["batch"], cfg["imgsz"]
    x = torch.randn(n, 3, s, s, device=device)
    y = (torch.rand(n, s, s, device=device) > 0.9).long()
    return x, y


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def now(self):
        self.sync()
        return time.perf_counter()


def run(cfg, device, iters, warmup):
    model = build(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    crit = nn.CrossEntropyLoss()
    x, y = batch(cfg, device)
    t = Timer(device)

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_of(crit, model(x), y)
        loss.backward()
        opt.step()

    start = t.now()
    step()
    first = t.now() - start
    for _ in range(1, warmup):
        step()
    if t.cuda:
        torch.cuda.reset_peak_memory_stats()
    begin = t.now()
    for _ in range(iters):
        step()
    train = iters * cfg["batch"] / (t.now() - begin)
    if t.cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:  # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    model.eval()
    with torch.no_grad():
        for _ in range(max(1, warmup)):
            model(x)["out"].argmax(1)
        begin = t.now()
        for _ in range(iters):
            model(x)["out"].argmax(1)
        infer = iters * cfg["batch"] / (t.now() - begin)
    return dict(config=cfg["name"], dtype="f32", device=str(device), train_img_per_s=train,
                infer_img_per_s=infer, first_step_s=first, warmup_s=None, peak_mem_gib=peak, error=None)


def profile(cfg, device, iters):
    model = build(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    crit = nn.CrossEntropyLoss()
    x, y = batch(cfg, device)
    t = Timer(device)
    stages = []

    def timed(f):
        f()
        begin = t.now()
        for _ in range(iters):
            f()
        return (t.now() - begin) * 1e3 / iters

    bb = model.backbone
    model.eval()
    with torch.no_grad():
        stem = lambda inp: bb.maxpool(bb.relu(bb.bn1(bb.conv1(inp))))
        stages.append(("infer: stem (conv1, bn1, maxpool)", timed(lambda: stem(x))))
        conv1 = lambda inp: bb.relu(bb.bn1(bb.conv1(inp)))
        stages.append(("infer: stem conv1 + bn1 + relu (7×7, stride 2)", timed(lambda: conv1(x))))
        c1 = conv1(x)
        stages.append(("infer: stem maxpool (3×3, stride 2)", timed(lambda: bb.maxpool(c1))))
        h = stem(x)
        for name in ["layer1", "layer2", "layer3", "layer4"]:
            layer = getattr(bb, name)
            inp = h
            stages.append((f"infer: {name} ({len(layer)} blocks)", timed(lambda: layer(inp))))
            h = layer(h)
        plus = isinstance(model, Plus)
        feats = model.net.encoder(x) if plus else model.backbone(x)
        layer4 = feats[-1] if plus else feats["out"]
        aspp = model.net.decoder.aspp[0] if plus else model.classifier[0]
        rates = [conv[0].dilation[0] if not plus else conv[0][0].dilation[0] for conv in aspp.convs[1:-1]]
        for i, branch in enumerate(aspp.convs[:-1]):
            what = "1×1" if i == 0 else f"3×3 rate {rates[i - 1]}"
            stages.append((f"infer: ASPP branch {i} ({what})", timed(lambda: branch(layer4))))
        stages.append(("infer: ASPP total", timed(lambda: aspp(layer4))))
        if plus:
            decoder, head = model.net.decoder, model.net.segmentation_head
            stages.append(("infer: DeepLabV3+ decoder (ASPP, separable 3×3, ×4, low-level fusion)",
                           timed(lambda: decoder(feats))))
            logits = head[0](decoder(feats))
            stages.append(("infer: upsample ×4 (matmul bilinear, corners aligned)", timed(lambda: head[1](logits))))
        else:
            stages.append(("infer: DeepLab head (ASPP + 3×3 + 1×1)", timed(lambda: model.classifier(layer4))))
            stages.append(("infer: FCN aux head", timed(lambda: model.aux_classifier(feats["aux"]))))
            logits = model.classifier(layer4)
            size = x.shape[-2:]
            stages.append(("infer: upsample ×8 (matmul bilinear)", timed(
                lambda: nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False))))
        stages.append(("infer: whole forward, BatchNorm not folded", timed(lambda: model(x)["out"])))

    model.train()
    fwd = bwd = adam = 0.0
    for i in range(iters + 1):
        a = t.now()
        opt.zero_grad(set_to_none=True)
        loss = loss_of(crit, model(x), y)
        b = t.now()
        loss.backward()
        c = t.now()
        opt.step()
        d = t.now()
        if i > 0:
            fwd, bwd, adam = fwd + b - a, bwd + c - b, adam + d - c
    per = lambda v: v * 1e3 / iters
    stages += [("train: forward + loss", per(fwd)), ("train: backward", per(bwd)), ("train: Adam step", per(adam))]
    return dict(config=cfg["name"], stages_ms=stages)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default="torch.json")
    a = p.parse_args()
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gpu = device.type == "cuda"
    configs = a.configs or ("r50-512,r50-768,r101-512,r101-640,r101-768" if gpu else "r50-128")
    iters = a.iters or (10 if gpu else 3)
    rows, profiles = [], []
    for spec in configs.split(","):
        cfg = parse(spec)
        row = run(cfg, device, iters, a.warmup)
        rows.append(row)
        print(f"{row['config']:<14} train {row['train_img_per_s']:8.2f} img/s  infer {row['infer_img_per_s']:8.2f} img/s"
              f"  first step {row['first_step_s']:.2f} s" +
              (f"  peak {row['peak_mem_gib']:.2f} GiB" if row["peak_mem_gib"] is not None else ""), flush=True)
        if a.profile:
            prof = profile(cfg, device, max(2, iters))
            profiles.append(prof)
            for stage, ms in prof["stages_ms"]:
                print(f"  {stage:<44} {ms:>10.2f}", flush=True)
    report = dict(date=time.strftime("%Y-%m-%d"), torch=torch.__version__, torchvision=torchvision.__version__,
                  gpu=torch.cuda.get_device_name(0) if gpu else None, cpu=platform.processor() or platform.machine(),
                  cpu_threads=torch.get_num_threads(), iters=iters, warmup=a.warmup, rows=rows, profiles=profiles)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print("written", a.out)


if __name__ == "__main__":
    main()
