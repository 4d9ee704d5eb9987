"""Reusable code of the early-exit reproduction suite: data, hashes, models, FLOPs, training."""

__version__ = "0.1.0"
