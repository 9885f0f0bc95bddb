#!/usr/bin/env bash
# Builds what the GPU machine runs (it has no Rust toolchain) and gathers it in .gpu/ (git-ignored):
#   .gpu/retina-seg          the CLI (CUDA + CPU)
#   .gpu/throughput          the throughput bench (cargo bench --bench throughput)
#   .gpu/parity_cuda         deeplab's torchvision parity test on Autodiff<Cuda>
#   .gpu/fixtures/           the tiny torchvision fixture (../shared does not travel)
#   .gpu/torch_baseline.py   the PyTorch reference (../shared/reference)
#   .gpu/autotune.tar        kept if present: the autotune cache of an earlier GPU run
# Then, with the device tool: run `bash scripts/gpu-run.sh [stages]` with carry [".gpu"].
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared
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
cp "$shared"/fixtures/torchvision/tiny_deeplabv3.json "$shared"/fixtures/torchvision/tiny_deeplabv3.pth \
   "$shared"/fixtures/torchvision/tiny_deeplabv3_io.safetensors .gpu/fixtures/
cp "$shared"/reference/torch_baseline.py .gpu/
cp scripts/side_by_side.py .gpu/
ls -la .gpu
echo "ready: carry [\".gpu\"] and run: bash scripts/gpu-run.sh parity bench profile torch train"
