#!/usr/bin/env bash
# Builds everything the GPU measurements need into .gpu/ (git-ignored), so that they can run on a
# GPU machine without a Rust toolchain:
#   .gpu/retina-seg            the CLI (CUDA, wgpu and CPU)
#   .gpu/throughput            the throughput bench (cargo bench --bench throughput)
#   .gpu/parity_cuda           deeplab's torchvision parity test on Autodiff<Cuda>
#   .gpu/fixtures/             the tiny torchvision fixture (crates/deeplab/tests/fixtures)
#   .gpu/torch_reference.py    the PyTorch reference (scripts/torch_reference.py)
#   .gpu/side_by_side.py       merges both into one table
#   .gpu/autotune.tar          kept if present: the autotune cache of an earlier GPU run
# Then, on the GPU machine, from a copy of the repository with .gpu/: bash scripts/gpu-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/fixtures

executable() { # $1 = target name; stdin = cargo's JSON messages
  python3 -c "
import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get('reason') == 'compiler-artifact' and m.get('executable') and m['target']['name'] == '$1':
        print(m['executable'])"
}

cargo build --release --bin retina-seg
cp target/release/retina-seg .gpu/
bench=$(cargo bench --no-run --bench throughput --message-format=json | executable throughput | tail -n1)
cp "$bench" .gpu/throughput
parity=$(cargo test --release -p deeplab --features cuda --test parity_cuda --no-run --message-format=json | executable parity_cuda | tail -n1)
cp "$parity" .gpu/parity_cuda
cp crates/deeplab/tests/fixtures/tiny_deeplabv3.json crates/deeplab/tests/fixtures/tiny_deeplabv3.pth \
   crates/deeplab/tests/fixtures/tiny_deeplabv3_io.safetensors .gpu/fixtures/
cp scripts/torch_reference.py scripts/side_by_side.py .gpu/
ls -la .gpu
echo "ready: .gpu/ holds the binaries; on the GPU machine run: bash scripts/gpu-run.sh [stages]"
