"""Layer 9, cli: the click group and its commands, a thin layer over the library."""
from costkit.cli.main import main

__all__ = ["main"]
