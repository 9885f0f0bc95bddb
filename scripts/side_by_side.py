"""One table from the Burn bench JSON and the PyTorch reference JSON measured in the same run on the
same machine: per configuration the images/s of both, their ratio, memory, first-step time, the real
training loop against the bare step, and (with --profile on both sides) the stage-by-stage times.

Usage: side_by_side.py BURN_JSON[,BURN_JSON...] TORCH_JSON[,TORCH_JSON...]
(several files per side: one per configuration, each measured in its own process, merged in order)"""
import json
import sys


def load(paths):
    """The reports of a comma-separated list of files, merged: the first one's header, all rows
    and profiles."""
    reports = [json.load(open(p)) for p in paths.split(",")]
    merged = dict(reports[0])
    merged["rows"] = [r for rep in reports for r in rep.get("rows", [])]
    merged["profiles"] = [p for rep in reports for p in rep.get("profiles", [])]
    return merged


burn = load(sys.argv[1])
torch = load(sys.argv[2])
ref = {r["config"]: r for r in torch["rows"]}


def fmt(v, d=2):
    return "-" if v is None else f"{float(v):.{d}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


device = burn.get("gpu") or f"CPU, {burn.get('cpu_threads')} threads"
print(f"{device}; burn {burn.get('burn')}, torch {torch.get('torch')}; {burn.get('date')}\n")
gpu = burn.get("gpu") is not None
mem = "mem GiB" if gpu else "peak RSS GiB"
print("| config | Burn train img/s | PyTorch train img/s | ratio | Burn infer img/s | PyTorch infer img/s | ratio "
      f"| Burn {mem} | PyTorch {mem} | ratio | Burn 1st step s | train loop img/s (× bare step) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in burn["rows"]:
    t = ref.get(r["config"], {})
    loop = r.get("loop_img_per_s")
    loop_cell = "-" if loop is None else f"{loop:.2f} ({ratio(loop, r['train_img_per_s']):.2f}×)"
    print(f"| {r['config']} | {fmt(r['train_img_per_s'])} | {fmt(t.get('train_img_per_s'))} "
          f"| {fmt(ratio(r['train_img_per_s'], t.get('train_img_per_s')))}× "
          f"| {fmt(r['infer_img_per_s'])} | {fmt(t.get('infer_img_per_s'))} "
          f"| {fmt(ratio(r['infer_img_per_s'], t.get('infer_img_per_s')))}× "
          f"| {fmt(r['peak_mem_gib'])} | {fmt(t.get('peak_mem_gib'))} "
          f"| {fmt(ratio(r['peak_mem_gib'], t.get('peak_mem_gib')))}× | {fmt(r['first_step_s'], 1)} | {loop_cell} |"
          + (f" error: {r['error']}" if r.get("error") else ""))

print("\nMemory: " + ("device memory (nvidia-smi for Burn, max allocated for PyTorch)." if gpu else
      "the process's peak resident set after the training steps (model, optimiser state, activations; "
      "one process per configuration)."))

torch_profiles = {p["config"]: dict(p["stages_ms"]) for p in torch.get("profiles", [])}
for p in burn.get("profiles", []):
    theirs = torch_profiles.get(p["config"], {})
    print(f"\n{p['config']}: ms per call (Burn / PyTorch)\n")
    print("| stage | Burn | PyTorch | ratio |")
    print("|---|---|---|---|")
    for stage, ms in p["stages_ms"]:
        t = theirs.get(stage)
        print(f"| {stage} | {ms:.1f} | {fmt(t, 1)} | {fmt(ratio(ms, t))}× |")
