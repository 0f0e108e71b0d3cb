#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests and the GPU benchmark, in one go (< 5 min).
# Assumes the environment from scripts/setup-and-test.sh (or any venv with the project and a
# CUDA build of torch). Prints a table to paste into docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" - <<'PYEOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0))
PYEOF
timeout 240 "$PY" -m pytest -m cuda -q -p no:xvfb tests/core || echo "CUDA TESTS FAILED"
timeout 200 "$PY" tests/benchmarks/bench_weight_map.py --device cuda --repeat 3
