#!/usr/bin/env bash
# The GPU checks in one go, for a CUDA machine (the device tool runs this): every test marked
# `gpu` (tiny Qwen-Image, open_clip and SAM-2 on CUDA, and the tiny end-to-end model run with
# every model on CUDA), then P1 of the benchmarks on the GPU (pipeline renders/s over a bare
# pipe() loop, tiny Qwen-Image at 1328x1328, 50 steps; its JSON goes to $OUT when set).
# Install first with scripts/install-dev.sh (torch 2.14.1 there is a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"
"$PYTHON" -m pytest -q -rs -m gpu --durations=5 tests/backends tests/runner/test_model_backends.py
RAY_AUTH_MODE=disabled "$PYTHON" benchmarks/gpu_duty.py --json "${OUT:-.}/gpu_duty.json"
