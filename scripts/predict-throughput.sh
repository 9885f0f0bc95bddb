#!/usr/bin/env bash
# `predict` throughput on this machine's CPU, in one run: one image at a time (--workers 0)
# against decoding and writing beside the model (--workers 2), one model input per forward pass
# (--batch 1) against the default batch (whole images, or sliding-window tiles, several per
# forward pass). With a DeepLabV3+ checkpoint and PyTorch + segmentation_models_pytorch importable
# by $PYTHON, also PyTorch + SMP predicting the same images by the same batched sliding windows
# (scripts/torch_predict.py, the checkpoint exported with `retina-seg export`), same threads.
# The images are synthetic fundus photographs at DRIVE's size (565×584).
#
#   bash scripts/predict-throughput.sh [CHECKPOINT] [IMAGES]
#
# CHECKPOINT: any `retina-seg train` checkpoint; by default a DeepLabV3-R50 trained here for one
# epoch at 128×128 (whole-image inference, where decoding and writing are a visible share).
# IMAGES defaults to 40. Builds the CPU-only release binary, unless RETINA_SEG_BIN names a
# `retina-seg` to use. Prints the CPU model and a table of images/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
count=${2:-40}
checkpoint=${1:-}
if [ -n "$checkpoint" ]; then
    [ -e "$checkpoint" ] || { echo "no checkpoint at $checkpoint" >&2; exit 1; }
    checkpoint=$(cd "$(dirname "$checkpoint")" && pwd)/$(basename "$checkpoint")
fi
bin=${RETINA_SEG_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q --release --no-default-features --bin retina-seg)
    bin=$root/target/release/retina-seg
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" synth --out data --count "$count" --width 565 --height 584 >/dev/null
mkdir images
cp data/*_images/*.png images/
if [ -z "$checkpoint" ]; then
    "$bin" train --data data --weights none --device cpu --imgsz 128 --epochs 1 --out run >/dev/null 2>&1
    checkpoint="DeepLabV3-R50 at 128×128 (1 epoch here)"
    ckpt_path=$work/run
else
    ckpt_path=$checkpoint
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512(f|bw|vl|dq|_vnni))$' | tr '\n' ' ' | sed 's/ $//')
echo "$(date +%F), $cpu ($flags), $(nproc) cores, $count images of 565×584, checkpoint $checkpoint"
echo
echo "| mode | img/s | × one at a time |"
echo "|---|---|---|"
base=
last=
for mode in "--workers 0 --batch 1" "--workers 2 --batch 1" "--workers 2"; do
    rm -rf out
    # shellcheck disable=SC2086
    line=$("$bin" predict --checkpoint "$ckpt_path" --input images --out out --device cpu $mode |
        grep '^wrote')
    ips=$(sed -E 's/.* ([0-9.]+) img\/s.*/\1/' <<<"$line")
    base=${base:-$ips}
    last=$ips
    printf '| retina-seg predict %s | %s | %.2f× |\n' "$mode" "$ips" "$(echo "$ips / $base" | bc -l)"
done
python=${PYTHON:-python3}
meta=$(find "$ckpt_path" -name meta.json -path '*best-iou*' | head -1)
[ -n "$meta" ] || meta=$(find "$ckpt_path" -name meta.json | head -1)
if [ -n "$meta" ] && grep -q '"DeepLabV3Plus"\|deeplabv3plus\|DeepLabV3+' "$meta" &&
    "$python" -c "import torch, segmentation_models_pytorch" 2>/dev/null; then
    "$bin" export --checkpoint "$(dirname "$meta")" --out "$work/smp.safetensors" >/dev/null
    tile=$("$python" -c "import json,sys; t=json.load(open(sys.argv[1])).get('tiling'); print(t['tile'] if t else 0)" "$meta")
    overlap=$("$python" -c "import json,sys; t=json.load(open(sys.argv[1])).get('tiling'); print(t['overlap'] if t else 0)" "$meta")
    line=$("$python" "$root/scripts/torch_predict.py" --weights "$work/smp.safetensors" --meta "$meta" \
        --images images --out torch-out --tile "$tile" --overlap "$overlap" --threads "$(nproc)")
    ips=$(sed -E 's/.* ([0-9.]+) img\/s.*/\1/' <<<"$line")
    printf '| PyTorch + SMP, batched %s-px windows, 64 per forward pass | %s | %.2f× |\n' "$tile" "$ips" "$(echo "$ips / $base" | bc -l)"
    printf '\nretina-seg (default batch) ÷ PyTorch + SMP: %.2f×\n' "$(echo "$last / $ips" | bc -l)"
fi
