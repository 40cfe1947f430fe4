"""``python -m ddim_tutorial {train,sample,kid}``; see ``ddim_tutorial.cli``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
