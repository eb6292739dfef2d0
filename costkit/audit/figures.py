"""How the audit model writes its figures: money as 2-place decimal strings, quantities as plain decimals."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.core.money import fmt_quantity, round_money


def money_text(v) -> str:
    """An exact amount rounded half-up to 2 decimals, as text (the bill's currency)."""
    return str(round_money(v))


def pct_text(variance: Decimal, expected: Decimal) -> str | None:
    """variance / expected in percent (2 decimals, text); None when nothing is expected."""
    if not expected:
        return None
    return money_text(Fraction(variance) / Fraction(expected) * 100)


def qty_text(v) -> str:
    """A quantity in its base unit as plain decimal text (None counts as 0)."""
    return fmt_quantity(v if v is not None else 0)
