#!/usr/bin/env bash
# `predict` throughput on this machine's CPU, in one run: one image at a time (--workers 0)
# against decoding and writing beside the model (--workers 2), and with batches of 4.
# The images are synthetic fundus photographs at DRIVE's size (565×584).
#
#   bash scripts/predict-throughput.sh [CHECKPOINT] [IMAGES]
#
# CHECKPOINT defaults to runs/demo (what the README's first command trains); IMAGES to 40.
# Builds the release binary. Prints the CPU model and a table of images/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
checkpoint=${1:-$root/runs/demo}
count=${2:-40}
[ -e "$checkpoint" ] || {
    echo "no checkpoint at $checkpoint: run the README's training command first, or give one" >&2
    exit 1
}
checkpoint=$(cd "$(dirname "$checkpoint")" && pwd)/$(basename "$checkpoint")
(cd "$root" && cargo build -q --release --bin retina-seg)
bin=$root/target/release/retina-seg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" synth --out data --count "$count" --width 565 --height 584 >/dev/null
mkdir images
cp data/*_images/*.png images/

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "$(date +%F), $cpu, $(nproc) cores, $count images of 565×584, checkpoint $checkpoint"
echo
echo "| mode | img/s | × one at a time |"
echo "|---|---|---|"
base=
for mode in "--workers 0" "--workers 2" "--workers 2 --batch 4"; do
    rm -rf out
    # shellcheck disable=SC2086
    line=$("$bin" predict --checkpoint "$checkpoint" --input images --out out --device cpu $mode |
        grep '^wrote')
    ips=$(sed -E 's/.* ([0-9.]+) img\/s.*/\1/' <<<"$line")
    base=${base:-$ips}
    printf '| %s | %s | %.2f× |\n' "$mode" "$ips" "$(echo "$ips / $base" | bc -l)"
done
