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
