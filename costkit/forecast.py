"""Compatibility path (costkit < 0.2): the public names now live in costkit.engine.forecast."""
from costkit.engine.forecast import estimate, months_frame  # noqa: F401
