#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, with .gpu/ carried
# (scripts/gpu-prepare.sh makes it). Stages, in the order given (default: all):
#   parity  deeplab's torchvision parity on Autodiff<Cuda>, forward and backward
#   bench   Burn throughput (train/infer img/s, memory, warm-up); CONFIGS, DTYPES, ITERS override
#   profile per-stage times of R50 @512 (stem, layer1..4, ASPP branches, heads, upsample; forward,
#           backward, Adam) — where the time goes; PROFILE_CONFIGS overrides
#   torch   the PyTorch reference on the same card
#   train   `retina-seg train --preset r50-512` on a synthetic set for a few epochs (EPOCHS)
# Results go to $OUT (the device tool's output folder): logs, burn.json, torch.csv,
# side_by_side.md, and autotune.tar — carry it back as .gpu/autotune.tar next time: autotuning
# costs 30–60 s per new convolution shape on a cold cache, ~4 s once cached.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
stages=${*:-parity bench profile torch train}
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
[ -f .gpu/autotune.tar ] && tar xf .gpu/autotune.tar
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

for stage in $stages; do
  start=$(date +%s)
  case $stage in
    parity)
      DEEPLAB_PARITY_FIXTURE=.gpu/fixtures/tiny_deeplabv3 .gpu/parity_cuda --ignored --nocapture --test-threads 1 \
        2>&1 | tee "$OUT/parity.txt" ;;
    bench)
      .gpu/throughput --device cuda --configs "${CONFIGS:-r50-512,r50-768,r101-512,r101-640,r101-768}" \
        --dtypes "${DTYPES:-f32}" --iters "${ITERS:-10}" --warmup 3 --out "$OUT/burn.json" 2>&1 | tee "$OUT/bench.txt" ;;
    profile)
      .gpu/throughput --device cuda --configs "${PROFILE_CONFIGS:-r50-512}" --dtypes f32 --iters 5 --warmup 2 \
        --profile --out "$OUT/profile.json" 2>&1 | tee "$OUT/profile.txt" ;;
    torch)
      python3 .gpu/torch_baseline.py 2>&1 | tee "$OUT/torch.csv" ;;
    train)
      .gpu/retina-seg train --preset r50-512 --synthetic 20 --epochs "${EPOCHS:-3}" --device cuda --out "$OUT/train" \
        2>&1 | tail -n 40 | tee "$OUT/train.txt" ;;
    *) echo "unknown stage $stage" ;;
  esac
  echo "stage $stage: $(( $(date +%s) - start )) s" | tee -a "$OUT/stages.txt"
done
[ -f "$OUT/burn.json" ] && [ -f "$OUT/torch.csv" ] && python3 .gpu/side_by_side.py "$OUT/burn.json" "$OUT/torch.csv" | tee "$OUT/side_by_side.md"
[ -d target/autotune ] && tar cf "$OUT/autotune.tar" target/autotune
exit 0
