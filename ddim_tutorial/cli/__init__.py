"""``python -m ddim_tutorial {train,sample,kid,models,export}``: the parser (``parser``) and what
each command does (``commands``)."""

from ddim_tutorial.cli.parser import build_parser, main

__all__ = ["main", "build_parser"]
