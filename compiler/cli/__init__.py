"""The `skewless` command: a thin layer over `FeatureStore`."""

from .main import cli, main

__all__ = ["cli", "main"]
