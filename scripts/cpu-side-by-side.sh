#!/usr/bin/env bash
# CPU speed side by side in one run on this machine: the Burn bench (Flex backend) and, when
# PyTorch + torchvision are importable by $PYTHON (default python3), the PyTorch reference with the
# same number of threads, each configuration in its own process (so that the peak resident set is
# that configuration's); then one table with the ratios, headed by the CPU model and its AVX-512
# support.
#   bash scripts/cpu-side-by-side.sh [configs, comma-separated; default: DeepLabV3 R50 at 128 and
#                                     512, DeepLabV3+ at 64 batch 6 and 512 batch 2]
# THREADS (default: all cores) and ITERS (default 3) override.
# ISA=avx2 on a CPU with AVX-512 measures both sides on their AVX2 code paths: the bench built
# from the committed tree (HEAD) without gemm's AVX-512 kernels (its `x86-v4` feature off, in a
# copy under target/isa-avx2), PyTorch with ATEN_CPU_CAPABILITY=avx2 and
# ONEDNN_MAX_CPU_ISA=AVX2. Flex's own element-wise operations still dispatch to AVX-512 at run
# time. On an AVX2-only CPU the default run is already that machine's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=${1:-r50-128,r50-512,r50plus-64-b6,r50plus-512-b2}
threads=${THREADS:-$(nproc)}
iters=${ITERS:-3}
python=${PYTHON:-python3}
isa=${ISA:-native}
out=target/bench
mkdir -p "$out"
export RAYON_NUM_THREADS=$threads
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
if grep -qw avx512f /proc/cpuinfo; then avx512=yes; else avx512=no; fi
header="$cpu; AVX-512: $avx512 ($(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^avx512(f|bw|vl|dq|_vnni)$' | sort | tr '\n' ' ' | sed 's/ $//'))"
manifest=Cargo.toml suffix=
case $isa in
  native) ;;
  avx2)
    # A copy of HEAD whose gemm has no AVX-512 kernels; its own target folder.
    copy=target/isa-avx2/src
    rm -rf "$copy" && mkdir -p "$copy"
    git archive HEAD | tar -x -C "$copy"
    sed -i 's/features = \["std", "rayon", "x86-v4"\]/features = ["std", "rayon"]/' "$copy/Cargo.toml"
    grep -q '"x86-v4"' "$copy/Cargo.toml" && { echo "could not turn gemm's x86-v4 off in $copy/Cargo.toml" >&2; exit 1; }
    manifest=$copy/Cargo.toml suffix=-avx2
    export CARGO_TARGET_DIR=$PWD/target/isa-avx2/target ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
    header="$header; measured on AVX2 code paths only (ISA=avx2: gemm without AVX-512 kernels, PyTorch ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)"
    ;;
  *) echo "ISA must be native or avx2, not $isa" >&2; exit 1 ;;
esac
echo "$header"
has_torch=false
"$python" -c "import torch, torchvision" 2>/dev/null && has_torch=true
burn_json=() torch_json=()
for config in ${configs//,/ }; do
  # CPU only: the GPU backends are not built.
  cargo bench --manifest-path "$manifest" --no-default-features --bench throughput -- --device cpu \
    --configs "$config" --iters "$iters" --warmup 2 --profile --train-loop \
    --out "$PWD/$out/burn-cpu-$config$suffix.json"
  burn_json+=("$out/burn-cpu-$config$suffix.json")
  if $has_torch; then
    "$python" scripts/torch_reference.py --device cpu --configs "$config" --threads "$threads" \
      --iters "$iters" --profile --out "$out/torch-cpu-$config$suffix.json"
    torch_json+=("$out/torch-cpu-$config$suffix.json")
  fi
done
if $has_torch; then
  echo
  join() { local IFS=,; echo "$*"; }
  { echo "$header"; "$python" scripts/side_by_side.py "$(join "${burn_json[@]}")" "$(join "${torch_json[@]}")"; } \
    | tee "$out/side-by-side-cpu$suffix.md"
else
  echo "PyTorch/torchvision not importable by $python: Burn figures only (${burn_json[*]})"
fi
