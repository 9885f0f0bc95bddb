#!/usr/bin/env bash
# Creates (once) and prints the path of the Python the project's scripts and CI use: a virtual
# environment with the pinned reference stack of scripts/python-requirements.txt (PyTorch,
# torchvision, segmentation_models_pytorch 0.6.0, safetensors, scikit-image). PyPI's Linux torch
# wheels carry CUDA libraries (about 5.7 GB installed), so the environment lives outside the clone
# and is reused by every later run: $RETINA_SEG_VENV, default ~/.cache/retina-seg/venv-<hash of
# the requirements>. A changed requirements file gives a new environment.
#   python=$(bash scripts/python-env.sh)      # installs on first use (minutes), then instant
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/python-requirements.txt
hash=$(sha256sum "$req" | cut -c1-12)
venv=${RETINA_SEG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/retina-seg/venv-$hash}
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "installing the Python reference stack into $venv (once; about 6 GB)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
