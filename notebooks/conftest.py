"""pytest settings for running the lessons under nbval (``pytest --nbval-lax notebooks/``).

* ``00_check_on_colab.ipynb`` is not collected: it clones the course and runs this very suite,
  so running it here would recurse.
* nbval starts each notebook's kernel in this folder, so relative paths in ``DDIM_DATA_DIR`` and
  ``DDIM_CHECKPOINT`` (as typed in the shell, relative to where pytest was started) are made
  absolute first; the kernels inherit the environment.
"""

import os

collect_ignore = ["00_check_on_colab.ipynb"]

for _name in ("DDIM_DATA_DIR", "DDIM_CHECKPOINT"):
    _value = os.environ.get(_name, "").strip()
    if _value and not os.path.isabs(_value):
        os.environ[_name] = os.path.abspath(_value)


# ------------------------------------------------------------------ lesson timings
# Every nbval run ends with the wall time of each lesson (kernel start-up included), so that the
# teacher's guide can quote CI's own figures; DDIM_TIMINGS_FILE also writes them as JSON.
_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    lesson = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".ipynb")
    _seconds[lesson] = _seconds.get(lesson, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    import json

    mode = "fast" if os.environ.get("DDIM_FAST", "").strip().lower() in ("1", "true", "yes", "on") else "full"
    terminalreporter.section(f"lesson times, {mode} mode (s)")
    for lesson, seconds in sorted(_seconds.items()):
        terminalreporter.line(f"{lesson:<24} {seconds:7.0f}")
    terminalreporter.line(f"{'all':<24} {sum(_seconds.values()):7.0f}")
    path = os.environ.get("DDIM_TIMINGS_FILE", "").strip()
    if path:
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"mode": mode, "seconds": {k: round(v, 1) for k, v in sorted(_seconds.items())}}, file, indent=1)
