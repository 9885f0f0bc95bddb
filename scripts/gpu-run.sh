#!/usr/bin/env bash
# Runs the GPU measurements on an NVIDIA GPU machine, from the repository root with .gpu/ built by
# scripts/gpu-prepare.sh (no Rust toolchain needed; PyTorch + torchvision for the reference).
# Stages, in the order given (default: all):
#   parity  deeplab's torchvision parity on Autodiff<Cuda>, forward and backward
#   bench   Burn throughput (train/infer img/s, memory, first step, warm-up, the real training
#           loop); CONFIGS, ITERS override
#   profile per-stage times of R50 @512 (stem, layer1..4, ASPP branches, heads, upsample; forward,
#           backward, Adam); PROFILE_CONFIGS overrides
#   torch   the PyTorch reference on the same card, same configurations, with its profile
#   train   `retina-seg train --preset r50-512 --weights none` on a synthetic set (EPOCHS)
# Results go to $OUT (default /tmp/gpu-out), written as each stage runs: logs, burn.json,
# torch.json, side_by_side.md, and autotune.tar (cubecl's autotune cache; put it at
# .gpu/autotune.tar for the next run: a cold autotune costs 30–60 s per convolution shape).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
stages=${*:-parity bench profile torch train}
configs=${CONFIGS:-r50-512,r50-768,r101-512,r101-640,r101-768}
[ -f .gpu/autotune.tar ] && tar xf .gpu/autotune.tar
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
save_cache() { [ -d target/autotune ] && tar cf "$OUT/autotune.tar" target/autotune; }

for stage in $stages; do
  start=$(date +%s)
  case $stage in
    parity)
      DEEPLAB_PARITY_FIXTURE=.gpu/fixtures/tiny_deeplabv3 .gpu/parity_cuda --ignored --nocapture --test-threads 1 \
        2>&1 | tee "$OUT/parity.txt" ;;
    bench)
      .gpu/throughput --device cuda --configs "$configs" --dtypes f32 --iters "${ITERS:-10}" --warmup 3 \
        --train-loop --out "$OUT/burn.json" 2>&1 | tee "$OUT/bench.txt" ;;
    profile)
      .gpu/throughput --device cuda --configs "${PROFILE_CONFIGS:-r50-512}" --dtypes f32 --iters 5 --warmup 2 \
        --profile --out "$OUT/profile.json" 2>&1 | tee "$OUT/profile.txt" ;;
    torch)
      python3 .gpu/torch_reference.py --device cuda --configs "$configs" --profile --out "$OUT/torch.json" \
        2>&1 | tee "$OUT/torch.txt" ;;
    train)
      .gpu/retina-seg train --preset r50-512 --weights none --synthetic 20 --epochs "${EPOCHS:-2}" --device cuda \
        --out "$OUT/train" 2>&1 | tail -n 40 | tee "$OUT/train.txt" ;;
    *) echo "unknown stage $stage" ;;
  esac
  echo "stage $stage: $(( $(date +%s) - start )) s" | tee -a "$OUT/stages.txt"
  save_cache
done
[ -f "$OUT/burn.json" ] && [ -f "$OUT/torch.json" ] && \
  python3 .gpu/side_by_side.py "$OUT/burn.json" "$OUT/torch.json" | tee "$OUT/side_by_side.md"
exit 0
