#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests and the GPU benchmarks, in one go (< 5 min).
# Assumes the environment from scripts/setup-and-test.sh (or any venv with the project and a
# CUDA build of torch; PY=... to choose the interpreter). Prints tables to paste into
# docs/performance.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
"$PY" - <<'PYEOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0))
PYEOF
# the CUDA tests, and the torch kernel against the definition (run on the CPU there too)
timeout 150 "$PY" -m pytest -q -p no:xvfb -p no:randomly -m cuda tests/core || echo "CUDA TESTS FAILED"
timeout 60 "$PY" -m pytest -q -p no:xvfb -p no:randomly tests/core/test_two_nearest_kernels.py \
    -k torch || echo "TORCH KERNEL TESTS FAILED"
# GPU times of the transform and the weight map, and their difference from the CPU result
timeout 60 "$PY" tests/benchmarks/bench_gpu.py --repeat 10 || echo "GPU BENCHMARK FAILED"
# loss maps on the GPU against the plain torch expression (the float64 sums' chunked path)
timeout 90 "$PY" tests/benchmarks/bench_weight_map.py --losses-only --device cuda \
    || echo "LOSS MAP BENCHMARK FAILED"
