#!/usr/bin/env bash
# Create (or update) the project's virtual environment .venv with the package and its
# notebook and test tools. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# DDIM_NEWEST=1 (the weekly CI job): the newest releases of what Colab upgrades under a course.
if [ "${DDIM_NEWEST:-0}" = "1" ]; then
    .venv/bin/python -m pip install -q --upgrade keras tensorflow ipywidgets
    echo "DDIM_NEWEST=1: $(.venv/bin/python -m pip list 2>/dev/null | grep -iE '^(keras|tensorflow|ipywidgets) ' | tr -s ' ' | paste -sd, -)"
fi
echo "ready: $(.venv/bin/python -c 'import keras, tensorflow as tf; print("keras", keras.__version__, "tensorflow", tf.__version__)' 2>/dev/null)"
