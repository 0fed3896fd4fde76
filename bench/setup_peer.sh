#!/usr/bin/env bash
# Creates bench/.venv with a current PyTorch 2.x and numpy from the Python package index, for the
# benchmarks and fixture generators only: luagan and its tests never need it. Idempotent: a venv
# that already imports torch>=2 is kept. Prints torch's version and build configuration (which
# BLAS / oneDNN it calls), which BENCHMARKS.md quotes beside every ratio.
# Usage: bash bench/setup_peer.sh        (PYTHON=/path/to/python3 picks the interpreter)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import sys, torch; sys.exit(0 if int(torch.__version__.split(".")[0]) >= 2 else 1)' 2>/dev/null; then
  "$venv/bin/python" -m pip install --upgrade pip
  # The index's Linux wheel brings CUDA libraries; they are never loaded here (CPU only).
  "$venv/bin/python" -m pip install torch numpy
fi
"$venv/bin/python" - <<'PY'
import torch, numpy
print("torch", torch.__version__, "numpy", numpy.__version__)
print("threads", torch.get_num_threads(), "mkldnn", torch.backends.mkldnn.is_available(),
      "mkl", torch.backends.mkl.is_available())
print(torch.__config__.show())
PY
