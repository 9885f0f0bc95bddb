#!/usr/bin/env bash
# The same recipe trained with `retina-seg train` and in PyTorch (scripts/torch_train.py), on the
# same data folder, SEEDS seeds each, one after the other on this machine; both frameworks'
# best-IoU models scored by one scorer (`retina-seg evaluate`, test split, inside the FOV). Prints
# the CPU and, per recipe and framework, the mean ± sd over seeds of the best-checkpoint
# validation F1 (FOV), test F1, AUC and thin-vessel F1, the training wall time and steps; then
# the difference of the mean test F1 (retina-seg − PyTorch), its standard error and whether it is
# within max(0.02, 2·SE).
#
#   bash scripts/learn-side-by-side.sh [--recipes quick,deeplabv3] [--seeds 3] [--data DIR]
#        [--work DIR] [--epochs N] [--crops-per-image K] [--imgsz-deeplabv3 128]
#
# Recipes (see scripts/torch_train.py for every setting):
#   quick      `train --preset quick` (19 epochs) against SMP's DeepLabV3Plus("resnet50") trained
#              the same way
#   deeplabv3  `train --preset r50-512 --weights none --imgsz 128 --batch 2 --epochs 60` against
#              torchvision's deeplabv3_resnet50 from scratch, trained the same way (the seed's
#              recipe at a CPU's size: 4–6 minutes a run on 2 cores)
# --epochs, --crops-per-image (crop recipes) and --imgsz-deeplabv3 change both frameworks' runs
# (a shorter comparison, or CI's one-epoch check).
# --data: any dataset folder `retina-seg` reads (DRIVE, STARE, ... ; its split and hold-out as
# `check-data` reports them); default: the main job's synthetic set (10 retinas, seed 42).
# WORK (default: a temporary folder, removed at the end) keeps every run: <recipe>/retina-seg-<seed>
# and <recipe>/pytorch-<seed> are run folders that `retina-seg compare` overlays; runs whose
# evaluation-test.json exists are not trained again. PYTHON: the Python with torch and SMP
# (default: scripts/python-env.sh's). Builds the CPU-only release binary, unless RETINA_SEG_BIN
# names a `retina-seg` to use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipes=quick,deeplabv3
seeds=3
data=
work=
epochs=
crops=
imgsz_deeplabv3=128
while [ $# -gt 0 ]; do
    case $1 in
        --recipes) recipes=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --crops-per-image) crops=$2; shift 2 ;;
        --imgsz-deeplabv3) imgsz_deeplabv3=$2; shift 2 ;;
        *) echo "unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-$(bash "$root/scripts/python-env.sh")}
bin=${RETINA_SEG_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q --release --no-default-features --bin retina-seg)
    bin=$root/target/release/retina-seg
fi
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
if [ -z "$data" ]; then
    data=$work/data
    [ -d "$data" ] || "$bin" synth --out "$data" --count 10 --seed 42 >/dev/null
fi
"$bin" check-data --data "$data" --export "$work/split" >"$work/check-data.txt"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f)$' | tr '\n' ' ')
torch_version=$("$python" -c 'import torch, segmentation_models_pytorch as s, torchvision as v; print(f"PyTorch {torch.__version__}, torchvision {v.__version__}, SMP {s.__version__}")')
echo "# $(date +%F), $cpu ($flags), $(nproc) cores, $torch_version; data $data"

# The options both frameworks' commands share.
shared_flags() {
    case $1 in
        quick) echo "${epochs:+--epochs $epochs} ${crops:+--crops-per-image $crops}" ;;
        deeplabv3) echo "--epochs ${epochs:-60} --imgsz $imgsz_deeplabv3 --batch 2" ;;
    esac
}
ours_flags() {
    case $1 in
        quick) echo "--preset quick $(shared_flags quick)" ;;
        deeplabv3) echo "--preset r50-512 --weights none $(shared_flags deeplabv3)" ;;
        *) echo "unknown recipe $1 (quick or deeplabv3)" >&2; exit 2 ;;
    esac
}
torch_flags() {
    echo "--recipe $1 $(shared_flags "$1")"
}

for recipe in ${recipes//,/ }; do
    mkdir -p "$work/$recipe"
    for seed in $(seq 1 "$seeds"); do
        run=$work/$recipe/retina-seg-$seed
        if [ ! -f "$run/evaluation-test.json" ]; then
            start=$(date +%s)
            # shellcheck disable=SC2046
            "$bin" train $(ours_flags "$recipe") --data "$data" --seed "$seed" --device cpu \
                --report false --out "$run" >"$run.log" 2>&1
            echo $(( $(date +%s) - start )) >"$run/wall_seconds"
            "$bin" evaluate --checkpoint "$run/checkpoints/best-iou" --data "$data" \
                --split test --fov-only --no-report --out "$run/evaluation-test.json" >>"$run.log" 2>&1
        fi
        run=$work/$recipe/pytorch-$seed
        if [ ! -f "$run/evaluation-test.json" ]; then
            mkdir -p "$run"
            start=$(date +%s)
            # shellcheck disable=SC2046
            "$python" "$root/scripts/torch_train.py" --split "$work/split/split.json" \
                $(torch_flags "$recipe") --seed "$seed" --out "$run" >"$run.log" 2>&1
            echo $(( $(date +%s) - start )) >"$run/wall_seconds"
            "$bin" evaluate --predictions "$run/predictions-test" --data "$data" \
                --split test --fov-only --no-report --out "$run/evaluation-test.json" >>"$run.log" 2>&1
        fi
    done
done

python3 "$root/scripts/learn_table.py" "$work" "$seeds" ${recipes//,/ }
