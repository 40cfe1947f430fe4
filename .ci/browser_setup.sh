#!/usr/bin/env bash
# Install what tests/browser needs on a fresh Debian machine (run as root, or with sudo at hand):
#   - Debian's `chromium` package and fonts: Playwright drives this system browser through
#     executable_path, so no browser is ever downloaded (never run `playwright install`);
#   - Playwright's Python package, into the Python given as $1 (default: the active python3).
# Safe to run again: it installs only what is missing, then proves Chromium starts headless.
# Usage: bash .ci/browser_setup.sh [path/to/python]
set -euo pipefail

PYTHON=${1:-$(command -v python3 || command -v python || true)}
if [ -z "$PYTHON" ] || ! "$PYTHON" -c "" 2>/dev/null; then
    echo "browser_setup: no usable Python (got '${PYTHON}'); pass one as the first argument." >&2
    exit 2
fi

APT_PACKAGES=(chromium fonts-dejavu-core fonts-liberation)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "browser_setup: apt-get not found; install ${missing[*]} by hand (Debian's chromium)." >&2
        exit 2
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "browser_setup: installing ${missing[*]} needs root (or sudo)." >&2
            exit 2
        fi
    fi
    echo "browser_setup: apt-get install ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if ! "$PYTHON" -c "import playwright.sync_api" 2>/dev/null; then
    echo "browser_setup: pip install playwright into $PYTHON"
    "$PYTHON" -m pip install -q playwright
fi

# Prove the pair works the way the tests use it (same flags as tests/browser/conftest.py).
CHROMIUM=${DDIM_CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
"$PYTHON" - "$CHROMIUM" <<'EOF'
import sys

from playwright.sync_api import sync_playwright

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=sys.argv[1],
        headless=True,
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        timeout=60_000,
    )
    page = browser.new_page()
    page.set_content("<p id='ok'>ok</p>")
    assert page.inner_text("#ok") == "ok"
    print(f"browser_setup: Chromium {browser.version} at {sys.argv[1]} starts headless under Playwright")
    browser.close()
EOF

"$PYTHON" -c "import jupyterlab_widgets" 2>/dev/null \
    || echo "browser_setup: warning: jupyterlab_widgets missing in $PYTHON; widgets will not render (pip install 'ipywidgets>=8')." >&2
