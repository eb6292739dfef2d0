"""Compatibility path (costkit < 0.2): the public names now live in costkit.engine.history and .period."""
from costkit.engine.history import cost_frames, price_history  # noqa: F401
from costkit.engine.period import parse_period  # noqa: F401
