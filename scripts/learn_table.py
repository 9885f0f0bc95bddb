"""The table of scripts/learn-side-by-side.sh: per recipe and framework, the mean ± sd over seeds
of the best-checkpoint validation F1 (FOV, from metrics.csv), test F1, AUC, thin-vessel F1 (from
`retina-seg evaluate`'s evaluation-test.json), wall time and steps, then the difference of the
mean test F1 (retina-seg − PyTorch) with its standard error.

    python3 scripts/learn_table.py WORK SEEDS RECIPE [RECIPE ...]
"""
import csv
import json
import math
import statistics
import sys
from pathlib import Path

FRAMEWORKS = (("retina-seg", "retina-seg"), ("pytorch", "PyTorch"))


def best_valid_f1(run):
    """F1 inside the FOV of the validation epoch with the highest vessel IoU (the first such
    epoch: the best-iou checkpoint's)."""
    best = None
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row["split"] != "valid":
                continue
            tp, fp, fn = (int(float(row[f"fov_{c}"])) for c in ("tp", "fp", "fn"))
            iou = tp / (tp + fp + fn) if tp + fp + fn else 0.0
            f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
            if best is None or iou > best[0]:
                best = (iou, f1)
    return best[1] if best else float("nan")


def steps(run):
    summary = run / "summary.json"
    if summary.is_file():
        return json.loads(summary.read_text())["steps"]
    # retina-seg: the learning-rate scheduler's iterations (one per optimizer step) at the end.
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    return meta["scheduler_iteration"]


def figures(run):
    report = json.loads((run / "evaluation-test.json").read_text())
    thin = (report.get("widths") or {}).get("thin", {}).get("f1")
    return [best_valid_f1(run), report["fov"]["f1"], report["fov"].get("auc"),
            thin, float((run / "wall_seconds").read_text()), steps(run)]


def fmt(v, column):
    if v is None:
        return "–"
    return f"{v:.4f}" if column < 4 else f"{v:.0f}"


def cell(values, digits=3):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def main():
    work, seeds, recipes = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    names = ["best valid F1", "test F1", "test AUC", "test thin F1", "train wall s", "steps"]
    print(f"\n| recipe | framework ({seeds} seed{'s' if seeds > 1 else ''}, mean ± sd) | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 2) + "|")
    per_run, verdicts = [], []
    for recipe in recipes:
        test_f1 = {}
        for key, label in FRAMEWORKS:
            rows = [figures(work / recipe / f"{key}-{s}") for s in range(1, seeds + 1)]
            test_f1[key] = [r[1] for r in rows]
            cells = [cell([r[i] for r in rows], 3 if i < 4 else 0) for i in range(len(names))]
            print(f"| {recipe} | {label} | " + " | ".join(cells) + " |")
            per_run += [f"  {recipe:9} {label:10} seed {s}: " +
                        ", ".join(f"{n} {fmt(v, i)}" for i, (n, v) in enumerate(zip(names, r)))
                        for s, r in enumerate(rows, 1)]
        a, b = test_f1["retina-seg"], test_f1["pytorch"]
        diff = statistics.fmean(a) - statistics.fmean(b)
        var = lambda x: statistics.variance(x) if len(x) > 1 else 0.0  # noqa: E731
        se = math.sqrt(var(a) / len(a) + var(b) / len(b))
        bound = max(0.02, 2 * se)
        verdicts.append(f"{recipe}: mean test F1 retina-seg − PyTorch = {diff:+.3f}, standard "
                        f"error {se:.3f}; |difference| {'≤' if abs(diff) <= bound else '>'} "
                        f"max(0.02, 2·SE) = {bound:.3f}")
    print()
    print("\n".join(verdicts))
    print("\nper run:")
    print("\n".join(per_run))


if __name__ == "__main__":
    main()
