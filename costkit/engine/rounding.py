"""The one expected figure: a period's cost is the sum of its day x item lines, each computed exactly and
rounded half-up to cents once (costkit.core.money). A view that splits a line further (projects, tags,
storage classes, FOCUS rows) hands out the line's rounded cents to its parts by largest remainder, so the
parts add up to the line exactly; no view re-rounds an exact sum of its own."""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from costkit.core.money import round_money

CENT = Decimal("0.01")


def allocate_cents(total: Decimal, parts: dict) -> dict:
    """{key: Decimal with 2 places} adding up exactly to `total` (a rounded line, in cents), each part's
    share by largest remainder of its exact amount (Fraction) x 100: every part gets its floor in cents,
    the cents left over go to the largest remainders (ties: in key order)."""
    if not parts:
        return {}
    cents = int(total * 100)
    scaled = {k: Fraction(v) * 100 for k, v in parts.items()}
    floors = {k: math.floor(v) for k, v in scaled.items()}
    left = cents - sum(floors.values())
    order = sorted(parts, key=lambda k: (-(scaled[k] - floors[k]), _order_key(k)))
    if left < 0:      # cannot happen for a half-up rounded sum; kept exact anyway
        order = list(reversed(order))
    for i in range(abs(left)):
        floors[order[i % len(order)]] += 1 if left > 0 else -1
    return {k: Decimal(n) * CENT for k, n in floors.items()}


def _order_key(k):
    return tuple(str(x) for x in k) if isinstance(k, tuple) else str(k)


def day_item_figures(exact: dict) -> tuple[dict, dict]:
    """From exact amounts {(day, group, item): Fraction}: (the rounded day x item lines {(day, item):
    Decimal}, each part's allocated cents {(day, group, item): Decimal}); see the module doc."""
    lines: dict = {}
    parts: dict = {}
    for (day, group, item), v in exact.items():
        lines[(day, item)] = lines.get((day, item), Fraction(0)) + v
        parts.setdefault((day, item), {})[group] = v
    rounded = {k: round_money(v) for k, v in lines.items()}
    alloc = {}
    for (day, item), groups in parts.items():
        for g, cents in allocate_cents(rounded[(day, item)], groups).items():
            alloc[(day, g, item)] = cents
    return rounded, alloc


__all__ = ["allocate_cents", "day_item_figures", "CENT"]
