"""Exact money. One rounding rule for the whole project:

each charge line's amount is computed exactly (as a Fraction), then rounded half-up to 2 decimals
(ROUND_HALF_UP, away from zero on a tie); a total is the sum of its rounded lines.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_fraction(value) -> Fraction:
    """An exact Fraction from a Decimal, int, Fraction or decimal string (never a float)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        raise TypeError("binary floats are not accepted for money or quantities")
    if isinstance(value, (int, Decimal)):
        return Fraction(value)
    return Fraction(Decimal(str(value).strip()))


def parse_decimal(text) -> Decimal | None:
    """A Decimal from a decimal string or int, or None when the text is not a plain decimal."""
    if isinstance(text, bool) or isinstance(text, float):
        return None
    try:
        d = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return d


def round_money(value) -> Decimal:
    """Round an exact amount half-up to 2 decimals; returns a Decimal with exactly 2 places."""
    f = to_fraction(value)
    sign = -1 if f < 0 else 1
    f = abs(f)
    cents, rem = divmod(f.numerator * 100, f.denominator)
    if 2 * rem >= f.denominator:
        cents += 1
    return (Decimal(sign * cents) / 100).quantize(CENT)


def round_half_up_int(value) -> int:
    """Round an exact non-negative number half-up to a whole number."""
    f = to_fraction(value)
    q, r = divmod(f.numerator, f.denominator)
    return q + (1 if 2 * r >= f.denominator else 0)


def fmt_quantity(value, places: int = 6) -> str:
    """A quantity as a decimal string, rounded half-up to `places` decimals, trailing zeros kept off."""
    f = to_fraction(value)
    scaled = round_half_up_int(abs(f) * 10**places) * (-1 if f < 0 else 1)
    d = (Decimal(scaled) / (10**places)).quantize(Decimal(1).scaleb(-places))
    text = format(d.normalize(), "f")
    return text if text != "-0" else "0"
