#!/usr/bin/env bash
# CPU speed side by side in one run on this machine: the Burn bench (Flex backend) and, when
# PyTorch + torchvision are importable by $PYTHON (default python3), the PyTorch reference with the
# same number of threads, each configuration in its own process (so that the peak resident set is
# that configuration's); then one table with the ratios, headed by the CPU model and its AVX-512
# support.
#   bash scripts/cpu-side-by-side.sh [configs, comma-separated; default: DeepLabV3 R50 at 128 and
#                                     512, DeepLabV3+ at 64 batch 6 and 512 batch 2]
# THREADS (default: all cores) and ITERS (default 3) override.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=${1:-r50-128,r50-512,r50plus-64-b6,r50plus-512-b2}
threads=${THREADS:-$(nproc)}
iters=${ITERS:-3}
python=${PYTHON:-python3}
out=target/bench
mkdir -p "$out"
export RAYON_NUM_THREADS=$threads
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
if grep -qw avx512f /proc/cpuinfo; then avx512=yes; else avx512=no; fi
header="$cpu; AVX-512: $avx512 ($(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^avx512(f|bw|vl|dq|_vnni)$' | sort | tr '\n' ' ' | sed 's/ $//'))"
echo "$header"
has_torch=false
"$python" -c "import torch, torchvision" 2>/dev/null && has_torch=true
burn_json=() torch_json=()
for config in ${configs//,/ }; do
  # CPU only: the GPU backends are not built.
  cargo bench --no-default-features --bench throughput -- --device cpu --configs "$config" --iters "$iters" --warmup 2 \
    --profile --train-loop --out "$out/burn-cpu-$config.json"
  burn_json+=("$out/burn-cpu-$config.json")
  if $has_torch; then
    "$python" scripts/torch_reference.py --device cpu --configs "$config" --threads "$threads" \
      --iters "$iters" --profile --out "$out/torch-cpu-$config.json"
    torch_json+=("$out/torch-cpu-$config.json")
  fi
done
if $has_torch; then
  echo
  join() { local IFS=,; echo "$*"; }
  { echo "$header"; "$python" scripts/side_by_side.py "$(join "${burn_json[@]}")" "$(join "${torch_json[@]}")"; } \
    | tee "$out/side-by-side-cpu.md"
else
  echo "PyTorch/torchvision not importable by $python: Burn figures only (${burn_json[*]})"
fi
