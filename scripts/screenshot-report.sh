#!/usr/bin/env bash
# A PNG of an evaluation report (`report.html`) as a real browser renders it: Debian's
# `chromium --headless --screenshot` (install with `apt-get install chromium`).
#
#   bash scripts/screenshot-report.sh [REPORT_HTML [OUT_PNG [WIDTHxHEIGHT]]]
#
# Without REPORT_HTML, runs the command-line test's steps first (release binary): a synthetic
# DRIVE-layout set of 8 images of 96×100, `train` from scratch for 2 epochs at 64×64 (which
# ends with the report of its best checkpoint on the validation split), `predict` of the test
# images and `evaluate --threshold-from` the validation report; the test split's report is
# taken (RETINA_SEG: a built binary to use instead of building the release one). OUT_PNG
# defaults to report-screenshot.png in the current folder; the window to 1200x1800 CSS pixels,
# drawn at half scale.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${2:-report-screenshot.png}")
size=${3:-1200x1800}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium: apt-get install chromium" >&2; exit 1; }
if [ -n "${1:-}" ]; then
    page=$(realpath "$1")
else
    bin=${RETINA_SEG:-}
    if [ -z "$bin" ]; then
        (cd "$root" && cargo build -q --release --bin retina-seg)
        bin=$root/target/release/retina-seg
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cd "$work"
    "$bin" synth --out data --layout drive --count 8 --width 96 --height 100 >/dev/null
    "$bin" train --data data --holdout 2 --weights none --device cpu --imgsz 64 --epochs 2 \
        --workers 0 --out run >/dev/null
    "$bin" predict --checkpoint run --input data/test/images --out pred --device cpu >/dev/null
    "$bin" evaluate --predictions pred --data data --holdout 2 --split test \
        --threshold-from run/evaluation-valid.json --out eval/evaluation-test.json >/dev/null
    page=$work/eval/evaluation-test/report.html
fi
[ -f "$page" ] || { echo "no report at $page" >&2; exit 1; }
# --no-sandbox: the sandbox refuses to run as root (containers, CI).
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --force-device-scale-factor=0.5 --window-size="${size/x/,}" \
    --screenshot="$out" "file://$page" 2>/dev/null
[ -s "$out" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot of $page: $out ($(stat -c %s "$out") bytes)"
