"""The audit's tolerance: a relative share of the expected amount with an absolute floor (the bill's currency)."""
from __future__ import annotations

from decimal import Decimal

from costkit.core.errors import BadInput

DEFAULT_TOLERANCE = Decimal("0.01")
DEFAULT_FLOOR = Decimal("0.05")


def parse_tolerance(text) -> Decimal:
    """`1%` -> 0.01, `0.5 %` -> 0.005, `0.01` -> 0.01 (a fraction). Must be in [0, 1)."""
    if isinstance(text, Decimal):
        value = text
    else:
        t = str(text).strip()
        pct = t.endswith("%")
        try:
            value = Decimal(t[:-1].strip() if pct else t)
        except Exception:
            raise BadInput(f"expected a percentage like 1% or a fraction like 0.01, got {text!r}",
                           field="--tolerance") from None
        if not value.is_finite():
            raise BadInput(f"not a number: {text!r}", field="--tolerance")
        if pct:
            value = value / 100
    if value < 0 or value >= 1:
        raise BadInput(f"must be at least 0% and below 100%, got {text}", field="--tolerance")
    return value


def parse_floor(text) -> Decimal:
    """The absolute tolerance floor as a Decimal amount (the bill's currency); at least 0."""
    try:
        value = Decimal(str(text).strip())
    except Exception:
        raise BadInput(f"expected an amount like 0.05, got {text!r}", field="--floor") from None
    if not value.is_finite() or value < 0:
        raise BadInput(f"expected a non-negative amount, got {text!r}", field="--floor")
    return value
