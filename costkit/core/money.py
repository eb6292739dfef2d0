"""Exact money. One rounding rule for the whole project:

each charge line's amount is computed exactly (as a Fraction), then rounded half-up to 2 decimals
(ROUND_HALF_UP, away from zero on a tie); a total is the sum of its rounded lines.
"""
from __future__ import annotations

import decimal
import re
from contextlib import contextmanager
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


# The one written form of a number in YAML input: decimal digits, an optional sign and fraction.
_PLAIN = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)")


def parse_decimal(text) -> Decimal | None:
    """A Decimal from an int or a plain decimal string (`12`, `-0.5`), or None for anything else:
    exponents (`1e5`), leading zeros (`010`), hex, base-60 (`1:30`), underscores, inf and nan
    (see `number_hint` for the message)."""
    if isinstance(text, bool) or isinstance(text, float):
        return None
    if isinstance(text, int):
        return Decimal(text)
    if isinstance(text, Decimal):
        return text if text.is_finite() else None
    if not isinstance(text, str) or not _PLAIN.fullmatch(text.strip()):
        return None
    return Decimal(text.strip())


def number_hint(text) -> str:
    """Why `text` is not a plain decimal, with the form to write instead (for bad-input messages)."""
    t = str(text).strip()
    sign = "-" if t.startswith("-") else ""
    body = t.lstrip("+-")
    try:
        if re.fullmatch(r"0[0-9]+(\.[0-9]*)?", body):
            plain = body.lstrip("0")
            plain = "0" + plain if plain.startswith(".") or not plain else plain
            return f"write {sign}{plain}, not {t} (a leading zero reads as octal in YAML)"
        if re.fullmatch(r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+", body):
            return f"write {sign}{int(body.replace('_', ''), 0)}, not {t} (only decimal digits)"
        if "_" in body and re.fullmatch(r"[0-9_]+(\.[0-9_]*)?", body):
            return f"write {sign}{body.replace('_', '')}, not {t} (no underscores)"
        if re.fullmatch(r"[0-9]+(:[0-5]?[0-9])+(\.[0-9]*)?", body):
            return f"{t} is a base-60 number in YAML 1.1; write the number in decimal digits (quote text)"
        if re.fullmatch(r"([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+", body):
            d = Decimal(body)
            if abs(d.adjusted()) <= 30:
                return f"write {sign}{format(d, 'f')}, not {t} (no exponents)"
            return f"{t} has an exponent; write the number in plain decimal digits"
    except (ValueError, InvalidOperation):
        pass
    return "write a plain decimal number such as 12 or 0.5"


def round_money(value) -> Decimal:
    """Round an exact amount half-up to 2 decimals; returns a Decimal with exactly 2 places."""
    f = to_fraction(value)
    sign = -1 if f < 0 else 1
    f = abs(f)
    cents, rem = divmod(f.numerator * 100, f.denominator)
    if 2 * rem >= f.denominator:
        cents += 1
    return _scaled_decimal(sign * cents, 2)


def _scaled_decimal(scaled: int, places: int) -> Decimal:
    """`scaled` / 10**places as a Decimal with exactly `places` decimals, built from digits (exact at any
    magnitude: no decimal context takes part)."""
    sign, digits = ("-" if scaled < 0 else ""), str(abs(scaled)).rjust(places + 1, "0")
    if not places:
        return Decimal(sign + digits)
    return Decimal(f"{sign}{digits[:-places]}.{digits[-places:]}")


def sum_money(values) -> Decimal:
    """The exact sum of 2-place amounts (Decimal strings or Decimals), as a 2-place Decimal; unlike `sum()`
    of Decimals it never rounds to the decimal context's 28 digits."""
    total = sum((to_fraction(v) for v in values), Fraction(0))
    return round_money(total)


def round_half_up_int(value) -> int:
    """Round an exact non-negative number half-up to a whole number."""
    f = to_fraction(value)
    q, r = divmod(f.numerator, f.denominator)
    return q + (1 if 2 * r >= f.denominator else 0)


def fmt_quantity(value, places: int = 6) -> str:
    """A quantity as a decimal string, rounded half-up to `places` decimals, trailing zeros kept off."""
    f = to_fraction(value)
    scaled = round_half_up_int(abs(f) * 10**places) * (-1 if f < 0 else 1)
    text = format(_scaled_decimal(scaled, places), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


@contextmanager
def exact_decimals():
    """A decimal context in which + - * of Decimals are exact at any magnitude (the default context rounds
    to 28 digits). Division stays in Fractions: under this context a non-terminating quotient fails."""
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = decimal.MAX_PREC, decimal.MAX_EMAX, decimal.MIN_EMIN
        ctx.traps[decimal.Inexact] = True
        yield ctx
