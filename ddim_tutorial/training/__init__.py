"""Training runs: the ``train`` driver, its callbacks, checkpoints and clean interrupts."""

from ddim_tutorial.training.driver import train

__all__ = ["train"]
