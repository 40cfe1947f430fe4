"""The README's main command opens the course: JupyterLab answers over HTTP on localhost.

The test reads the command from README.md and starts it as it is, with only extra arguments for
`jupyter lab` (no browser, a free port, a known token) and Jupyter's per-user state in a temporary
folder. It runs as whatever user runs the tests, root included, which JupyterLab refuses unless told
otherwise. It needs a complete .venv (``bash scripts/setup.sh``), since the command must not set one
up again, and stops the server's whole process group at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
LESSON = "01_diffusion_schedule.ipynb"


def readme_main_command() -> list[str]:
    """The first command of the README's "Two commands on a fresh machine": the one that opens the course."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    _, found, section = readme.partition("## Two commands on a fresh machine")
    assert found, "README.md lost its 'Two commands on a fresh machine' section"
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "no bash block in the README's 'Two commands' section"
    lines = [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) == 1, f"the main command should be one line, not {lines}"
    return shlex.split(lines[0])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def stop(process: subprocess.Popen) -> None:
    """End the command and everything it started: it runs in a session of its own."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def test_readme_main_command_is_the_lab_script():
    command = readme_main_command()
    assert command == ["bash", "scripts/lab.sh"]
    assert (REPO / command[1]).is_file()


def test_readme_main_command_serves_the_course_over_http_on_localhost(tmp_path):
    if not (REPO / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("no .venv with JupyterLab: run `bash scripts/setup.sh` first")
    port, token = free_port(), secrets.token_hex(16)
    command = readme_main_command() + [
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
    ]
    env = dict(os.environ)
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    log_path = tmp_path / "lab.log"
    base = f"http://127.0.0.1:{port}/"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline, status = time.monotonic() + START_TIMEOUT_S, None
            while status != 200:
                if process.poll() is not None:
                    pytest.fail(f"`{shlex.join(command[:2])}` exited with code {process.returncode}:\n"
                                f"{log_path.read_text(errors='replace')[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within {START_TIMEOUT_S} s:\n"
                                f"{log_path.read_text(errors='replace')[-3000:]}")
                try:
                    status, _ = get(f"{base}api/status?token={token}")
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.5)

            status, page = get(f"{base}lab?token={token}")
            assert status == 200 and b"JupyterLab" in page
            status, body = get(f"{base}api/contents?token={token}")
            names = {item["name"] for item in json.loads(body)["content"]}
            assert status == 200 and LESSON in names, f"the server does not serve notebooks/: {sorted(names)}"
        finally:
            stop(process)
    output = log_path.read_text(errors="replace")
    assert "Running as root is not recommended" not in output
    assert "ready: keras" not in output, "the command set up .venv again although it was complete"
