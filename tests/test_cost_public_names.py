"""The history engine's public names (costkit.history_cost and the lazy names of costkit) stay the engine's own."""
import costkit
import costkit.history_cost as history_cost
from costkit.engine.history import cost_frames, price_history
from costkit.engine.period import parse_period


def test_history_cost_and_package_names_are_the_engine_functions():
    for name, fn in (("cost_frames", cost_frames), ("price_history", price_history), ("parse_period", parse_period)):
        assert getattr(history_cost, name) is fn
        assert getattr(costkit, name) is fn


def test_public_parse_period_reads_a_month_in_shanghai_time():
    p = costkit.parse_period("2025-09")
    assert (p.start.isoformat(), p.end.isoformat(), p.label) == (
        "2025-09-01T00:00:00+08:00", "2025-10-01T00:00:00+08:00", "2025-09")
