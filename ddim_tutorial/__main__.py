"""``python -m ddim_tutorial {train,sample,kid,models,export}``: the command line (``ddim_tutorial.cli``)."""

from ddim_tutorial.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
