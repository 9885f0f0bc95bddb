#!/usr/bin/env bash
# CPU speed side by side in one run on this machine: the Burn bench (Flex backend) and, when
# PyTorch + torchvision are importable by $PYTHON (default python3), the PyTorch reference with the
# same number of threads; then one table with the ratios.
#   bash scripts/cpu-side-by-side.sh [configs, default r50-128]
# THREADS (default: all cores) and ITERS (default 3) override.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=${1:-r50-128}
threads=${THREADS:-$(nproc)}
iters=${ITERS:-3}
python=${PYTHON:-python3}
out=target/bench
mkdir -p "$out"
export RAYON_NUM_THREADS=$threads
cargo bench --bench throughput -- --device cpu --configs "$configs" --iters "$iters" --warmup 2 \
  --profile --train-loop --out "$out/burn-cpu.json"
if "$python" -c "import torch, torchvision" 2>/dev/null; then
  "$python" scripts/torch_reference.py --device cpu --configs "$configs" --threads "$threads" \
    --iters "$iters" --profile --out "$out/torch-cpu.json"
  echo
  "$python" scripts/side_by_side.py "$out/burn-cpu.json" "$out/torch-cpu.json" | tee "$out/side-by-side-cpu.md"
else
  echo "PyTorch/torchvision not importable by $python: Burn figures only ($out/burn-cpu.json)"
fi
