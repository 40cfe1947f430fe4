#!/usr/bin/env bash
# The main job: set up .venv and open the notebook course in JupyterLab.
#
# scripts/setup.sh runs only when .venv is missing or lacks something that pyproject.toml asks
# for (or this checkout's package), so a second start takes seconds and needs no network.
# JupyterLab refuses to run as root without --allow-root ("Running as root is not
# recommended"), yet containers, classroom servers and CI machines often run as root, so root
# gets that flag. Further arguments go to `jupyter lab`, e.g. `bash scripts/lab.sh --no-browser`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv_is_complete() {
    [ -x .venv/bin/python ] && [ -x .venv/bin/jupyter ] || return 1
    # -I: ignore the current folder and PYTHONPATH, so only what is installed in .venv counts.
    .venv/bin/python -I - >/dev/null 2>&1 <<'PYTHON'
import sys
import tomllib
from importlib import metadata, util
from pathlib import Path

from packaging.requirements import Requirement

project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
for line in project["dependencies"] + project["optional-dependencies"]["test"]:
    requirement = Requirement(line)
    if requirement.marker is not None and not requirement.marker.evaluate():
        continue
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        sys.exit(f"{requirement.name} is not installed")
    if not requirement.specifier.contains(installed, prereleases=True):
        sys.exit(f"{requirement.name} {installed} does not satisfy {requirement}")
spec = util.find_spec("ddim_tutorial")  # installed in editable mode from this checkout
if spec is None or Path(spec.origin).resolve().parent != Path("ddim_tutorial").resolve():
    sys.exit("ddim_tutorial is not installed from this checkout")
PYTHON
}

if ! venv_is_complete; then
    bash scripts/setup.sh
fi

extra=()
if [ "$(id -u)" -eq 0 ]; then
    extra+=(--allow-root)
fi
exec .venv/bin/jupyter lab notebooks/ ${extra[@]+"${extra[@]}"} "$@"
