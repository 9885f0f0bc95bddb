"""One table from the Burn bench JSON and the PyTorch reference CSV (same card, same run):
config, Burn img/s, PyTorch img/s, ratio, memory both sides. Usage: side_by_side.py burn.json torch.csv"""
import csv, json, sys

burn = json.load(open(sys.argv[1]))
torch = {}
for row in csv.DictReader(line for line in open(sys.argv[2]) if "," in line and not line.startswith("op ")):
    if row.get("model") in ("r50", "r101"):
        key = (f"{row['model']}-{row['imgsz']}-b{row['batch']}", "f32" if row["dtype"] == "fp32" else row["dtype"], row["mode"])
        torch[key] = row

def fmt(v, d=1):
    return "-" if v is None else f"{float(v):.{d}f}"

print(f"GPU: {burn.get('gpu')}, burn {burn.get('burn')}, {burn.get('date')}\n")
print("| config | dtype | Burn train img/s | PyTorch train img/s | ratio | Burn infer img/s | PyTorch infer img/s | Burn mem GiB | PyTorch mem GiB | Burn warm-up s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in burn["rows"]:
    t = torch.get((r["config"], r["dtype"], "train"))
    i = torch.get((r["config"], r["dtype"], "infer"))
    ratio = r["train_img_per_s"] / float(t["img_per_s"]) if t and r["train_img_per_s"] else None
    print(f"| {r['config']} | {r['dtype']} | {fmt(r['train_img_per_s'])} | {fmt(t and t['img_per_s'])} | {fmt(ratio, 2)} "
          f"| {fmt(r['infer_img_per_s'])} | {fmt(i and i['img_per_s'])} | {fmt(r['peak_mem_gib'], 2)} "
          f"| {fmt(t and t['peak_mem_gib'], 2)} | {fmt(r['warmup_s'])} |" + (f" error: {r['error']}" if r.get("error") else ""))
