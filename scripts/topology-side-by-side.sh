#!/usr/bin/env bash
# The quick preset as it is against the same recipe with a topology-aware loss, in one run on this
# machine: `--loss dice` (the preset), `--loss cldice` and `--loss skeleton-recall`, each trained
# with SEEDS seeds (default 3) on one synthetic set (the main job's: 10 retinas of DRIVE's size,
# generator seed 42), the best-IoU checkpoint evaluated on the test split inside the FOV. Prints
# the CPU, and per loss the mean ± sd over seeds of pixel F1, thin-vessel F1, clDice, the β0
# error and the wall time of training, then the per-run figures.
#
#   bash scripts/topology-side-by-side.sh [SEEDS] [WORK]
#
# Extra `train` flags (e.g. `--epochs 6` for a shorter comparison) go in $TRAIN_FLAGS. WORK
# (default a temporary folder, removed at the end) keeps the runs. Builds the release binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seeds=${1:-3}
work=${2:-}
# CPU-only binary (the runs use `--device cpu`): compiles faster than the default CUDA + wgpu one.
(cd "$root" && cargo build -q --release --no-default-features --bin retina-seg)
bin=$root/target/release/retina-seg
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
[ -d "$work/data" ] || "$bin" synth --out "$work/data" --count 10 --seed 42 >/dev/null

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f)$' | tr '\n' ' ')
echo "# $(date +%F), $cpu ($flags), $(nproc) cores; train --preset quick ${TRAIN_FLAGS:-}"
for seed in $(seq 1 "$seeds"); do
    for loss in dice cldice skeleton-recall; do
        run=$work/$loss-$seed
        if [ ! -f "$run/evaluation-test.json" ]; then
            start=$(date +%s)
            # shellcheck disable=SC2086
            "$bin" train --preset quick --data "$work/data" --loss "$loss" --seed "$seed" \
                --device cpu --report false --out "$run" ${TRAIN_FLAGS:-} >"$run.log" 2>&1
            echo $(( $(date +%s) - start )) >"$run/wall_seconds"
            "$bin" evaluate --checkpoint "$run/checkpoints/best-iou" --data "$work/data" \
                --split test --fov-only --no-report --out "$run/evaluation-test.json" >>"$run.log" 2>&1
        fi
    done
done

python3 - "$work" "$seeds" <<'EOF'
import json, statistics, sys
from pathlib import Path

work, seeds = Path(sys.argv[1]), int(sys.argv[2])
cols = [
    ("pixel F1", lambda r: r["fov"]["f1"]),
    ("thin F1", lambda r: r["widths"]["thin"]["f1"]),
    ("clDice", lambda r: r["topology"]["cldice"]),
    ("β0 error", lambda r: r["topology"]["betti0_error"]),
]
runs = {}
for loss in ("dice", "cldice", "skeleton-recall"):
    for seed in range(1, seeds + 1):
        run = work / f"{loss}-{seed}"
        report = json.loads((run / "evaluation-test.json").read_text())
        wall = float((run / "wall_seconds").read_text())
        runs.setdefault(loss, []).append([f(report) for _, f in cols] + [wall])
names = [c for c, _ in cols] + ["train wall s"]
def cell(values):
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {sd:.3f}" if mean < 10 else f"{mean:.0f} ± {sd:.0f}"
print(f"\n| `--loss` ({seeds} seeds, mean ± sd) | " + " | ".join(names) + " |")
print("|---" * (len(names) + 1) + "|")
for loss, rows in runs.items():
    print(f"| `{loss}` | " + " | ".join(cell([r[i] for r in rows]) for i in range(len(names))) + " |")
print("\nper run:")
for loss, rows in runs.items():
    for seed, r in enumerate(rows, 1):
        print(f"  {loss:16} seed {seed}: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(names, r)))
EOF
