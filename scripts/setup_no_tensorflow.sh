#!/usr/bin/env bash
# A second environment, .venv-notf, WITHOUT TensorFlow: Keras with JAX and PyTorch (CPU),
# to prove that the package trains and samples where only those are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-notf/bin/python ]; then
    "$PYTHON" -m venv .venv-notf
fi
# torch==2.13.0 is a CPU build; a bare "torch" would pull a CUDA build of several GB.
.venv-notf/bin/python -m pip install -q "keras>=3.3" jax "torch==2.13.0" "numpy>=1.23" "matplotlib>=3.5" \
    "ipywidgets>=7.6" "pillow>=9.0" "pytest>=7" "hypothesis>=6"
.venv-notf/bin/python -m pip install -q --no-deps -e .
if [ "${DDIM_NEWEST:-0}" = "1" ]; then  # the weekly CI job: the newest Keras and ipywidgets
    .venv-notf/bin/python -m pip install -q --upgrade keras ipywidgets
fi
if .venv-notf/bin/python -c "import tensorflow" 2>/dev/null; then
    echo "error: tensorflow is installed in .venv-notf; this environment must not have it" >&2
    exit 1
fi
echo "ready: .venv-notf without TensorFlow"
