"""Compatibility path (costkit < 0.2): the public names now live in costkit.engine.history."""
from costkit.engine.history import cost_frames, price_history, parse_period  # noqa: F401
