#!/usr/bin/env bash
# On a machine with a GPU, in one go: tests/test_gpu.py (the gpu-marked tests and the host-sync
# test that runs anywhere), then the precision benchmark at the GPU target's settings
# (1920x1080, GoogLeNet inception_4c/output, 4 octaves x 10 iterations: under 1 s in the
# fast mode on an H100/H200). DEVICE=cpu runs the same on the CPU (smaller: SIZE, ITERATIONS).
#   bash bench/gpu.sh                       # DEVICE=cuda
#   DEVICE=cpu SIZE=512x288 ITERATIONS=2 bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-$(test -x .venv/bin/python && echo .venv/bin/python || echo python3)}"
DEVICE="${DEVICE:-cuda}"
export DREAMZOO_SHARED="${DREAMZOO_SHARED:-../shared}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA:", torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
"$PY" -m pytest -q -rs tests/test_gpu.py
"$PY" bench/precision.py --device "$DEVICE" --size "${SIZE:-1920x1080}" --octaves 4 \
    --iterations "${ITERATIONS:-10}"
