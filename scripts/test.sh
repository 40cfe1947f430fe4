#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: environments, package tests on three Keras
# backends, the notebooks under nbval in fast and in full mode, the widgets in headless Chromium,
# the workflows under actionlint, and the course website built and opened in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
start=$SECONDS
stamp() { echo "== [$((SECONDS - start))s] $*"; }

stamp "setting up .venv (TensorFlow, Keras, TFDS, JupyterLab, nbval)"
bash scripts/setup.sh
stamp "setting up .venv-notf (Keras with JAX and PyTorch, no TensorFlow)"
bash scripts/setup_no_tensorflow.sh
if [ -f .ci/browser_setup.sh ]; then
    stamp "installing Chromium and Playwright for the browser tests"
    bash .ci/browser_setup.sh .venv/bin/python
fi

stamp "GitHub Actions workflows under actionlint"
bash scripts/actionlint.sh

# Offline real photographs for the notebooks' fast mode, when they lie beside the repo.
if [ -z "${DDIM_DATA_DIR:-}" ] && [ -d ../shared/data/flowers12 ]; then
    export DDIM_DATA_DIR="$(cd ../shared/data/flowers12 && pwd)"
fi

stamp "ruff (pyproject.toml: pycodestyle, pyflakes, bugbear, import order)"
.venv/bin/python -m ruff check .

stamp "package tests, TensorFlow backend"
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest tests --ignore=tests/browser -p no:cacheprovider

stamp "notebooks under nbval, fast mode"
sanitize=()
[ -f notebooks/nbval_sanitize.cfg ] && sanitize=(--nbval-sanitize-with notebooks/nbval_sanitize.cfg)
DDIM_FAST=1 KERAS_BACKEND=tensorflow .venv/bin/python -m pytest --nbval-lax --nbval-current-env \
    "${sanitize[@]}" notebooks/ -p no:cacheprovider

# Full mode is what a laptop, a classroom server and Colab give a student: every lesson again, on
# the CPU, with the real code paths (the CPU-sized training runs, the bundled 64x64 model, KID with
# the ImageNet weights where they can be had, else the one-line fallback a user would see).
stamp "notebooks under nbval, full mode on the CPU"
DDIM_FAST=0 KERAS_BACKEND=tensorflow .venv/bin/python -m pytest --nbval-lax --nbval-current-env \
    "${sanitize[@]}" notebooks/ -p no:cacheprovider

if [ -d tests/browser ]; then
    stamp "widgets in JupyterLab, headless Chromium"
    DDIM_FAST=1 DDIM_BROWSER_REQUIRED=1 .venv/bin/python -m pytest tests/browser -p no:cacheprovider \
        --ignore=tests/browser/test_site.py
fi

# The course website from scratch: the lessons executed in fast mode, rendered by Sphinx, then
# every page opened in headless Chromium (images, math, links, the two static explorers).
stamp "the course website: bash scripts/site.sh"
rm -rf build/site/src build/site/html
bash scripts/site.sh
stamp "the course website in headless Chromium"
DDIM_BROWSER_REQUIRED=1 .venv/bin/python -m pytest tests/browser/test_site.py -p no:cacheprovider

# The tests that depend on the backend, once per backend, where TensorFlow is absent.
backend_tests=()
for file in tests/runtime/test_no_tensorflow.py tests/runtime/test_random.py tests/runtime/test_ema.py \
            tests/core/test_network.py tests/core/test_model.py tests/core/test_model_entry_points.py \
            tests/core/test_sampling.py tests/core/test_samplers.py tests/core/test_sampler_errors.py tests/core/test_compiled_sampling.py \
            tests/core/test_conditioning.py tests/core/test_flow_matching.py tests/metrics/test_kid.py \
            tests/metrics/test_evaluation.py tests/metrics/test_memorization.py tests/data/test_datasets.py \
            tests/training/test_checkpoints.py tests/pretrained/test_pretrained.py; do
    [ -f "$file" ] && backend_tests+=("$file")
done
# JAX and PyTorch run side by side: these tests use tiny networks, so each process keeps
# about one core busy, and two of them finish in a little more than the time of one.
stamp "backend tests, jax and torch side by side, without TensorFlow"
logs=$(mktemp -d)
declare -A pids
for backend in jax torch; do
    KERAS_BACKEND=$backend .venv-notf/bin/python -m pytest "${backend_tests[@]}" -p no:cacheprovider \
        > "$logs/$backend.log" 2>&1 &
    pids[$backend]=$!
done
failed=()
for backend in jax torch; do
    wait "${pids[$backend]}" || failed+=("$backend")
    echo "---- backend tests, $backend ----"
    cat "$logs/$backend.log"
done
if [ ${#failed[@]} -gt 0 ]; then
    stamp "backend tests failed on: ${failed[*]}"
    exit 1
fi
stamp "all green"
