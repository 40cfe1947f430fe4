#!/usr/bin/env bash
# Build the course website into build/site/html (git-ignored): the lessons executed in fast mode
# with the bundled models (site/build.py), rendered by Sphinx with myst-nb and the book theme.
# Installs what it needs: .venv (scripts/setup.sh) if absent, the renderer into .venv-site
# (versions pinned in site/requirements.txt) and MathJax from npm into build/site-tools.
# Look at the result with: python -m http.server -d build/site/html
# Environment: DDIM_SITE_PYTHON (the Python that executes the lessons, default .venv/bin/python),
# DDIM_DATA_DIR (offline photographs; ../shared/data/flowers12 when it lies beside the repo),
# DDIM_SITE_LESSONS=01,06 (a subset, for a quick look while editing the site).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# The lessons import this checkout's package, whatever the environment's editable install points at.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
MATHJAX_VERSION=3.2.2
start=$SECONDS
stamp() { echo "== site [$((SECONDS - start))s] $*"; }

PYTHON=${DDIM_SITE_PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    stamp "no $PYTHON: creating .venv with scripts/setup.sh"
    bash scripts/setup.sh
    PYTHON=.venv/bin/python
fi
"$PYTHON" -c "import nbclient, ddim_tutorial" \
    || { echo "site.sh: $PYTHON lacks nbclient or ddim_tutorial (run scripts/setup.sh)" >&2; exit 1; }

stamp "the renderer (Sphinx, myst-nb, sphinx-book-theme) in .venv-site"
if [ ! -x .venv-site/bin/python ]; then
    python3 -m venv .venv-site
fi
.venv-site/bin/python -m pip install -q --disable-pip-version-check -r site/requirements.txt

stamp "MathJax $MATHJAX_VERSION from npm, so the math renders without a CDN"
tools=build/site-tools
if [ ! -f "$tools/node_modules/mathjax/es5/tex-svg.js" ] \
   || ! grep -q "\"version\": \"$MATHJAX_VERSION\"" "$tools/node_modules/mathjax/package.json"; then
    command -v npm >/dev/null || { echo "site.sh: npm not found (Node.js 18 or newer is needed)" >&2; exit 1; }
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error "mathjax@$MATHJAX_VERSION"
fi

if [ -z "${DDIM_DATA_DIR:-}" ] && [ -d ../shared/data/flowers12 ]; then
    export DDIM_DATA_DIR="$(cd ../shared/data/flowers12 && pwd)"
fi

stamp "executing the lessons (fast mode) and drawing the sampler frames"
"$PYTHON" site/build.py build/site/src
mkdir -p build/site/src/_static/mathjax
cp "$tools/node_modules/mathjax/es5/tex-svg.js" build/site/src/_static/mathjax/

stamp "rendering with Sphinx"
rm -rf build/site/html build/site/doctrees
# -W: any warning (a broken reference, a missing picture) fails the build.
.venv-site/bin/python -m sphinx -b html -W --keep-going -q -d build/site/doctrees build/site/src build/site/html
touch build/site/html/.nojekyll
stamp "site built: build/site/html/index.html"
