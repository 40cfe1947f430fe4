"""``python -m ddim_tutorial {train,sample,kid}``; see ``ddim_tutorial.cli``."""

from ddim_tutorial.cli.parser import main

if __name__ == "__main__":
    raise SystemExit(main())
