"""Units on bill lines: a usage or price unit read as (dimension, base units per unit), exactly.

`parse_unit("万次")` is ("count", 10000), `parse_unit("GB/月")` is ("GB-hour", 720); `item_quantity_factor`
converts a line's usage unit into the base unit of a costkit item (calls, requests, GB, GB-hour), and
`split_price_unit` reads the currency off a ListPriceUnit (`CNY/万次`). Factors are Fractions, never floats.
"""
from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from costkit.core.catalog import ITEMS

# item dimension (pricebook ITEMS) -> the unit dimension a bill's usage unit must have
_DIMENSION = {"calls": "count", "requests": "count", "GB": "GB", "GB-hour": "GB-hour"}
BASE_UNIT = {"calls": "calls", "requests": "requests", "GB": "GB", "GB-hour": "GB-hour"}

# --- units -----------------------------------------------------------------------------------------

_COUNT = {"次", "次数", "个", "请求", "请求次数", "call", "calls", "request", "requests", "req", "time", "times",
          "count", "counts", "query", "queries", "次调用", "调用"}
_CJK_MULT = {"十": 10, "百": 100, "千": 1000, "万": 10000, "十万": 100000, "百万": 1000000, "千万": 10**7,
             "亿": 10**8}
_GiB = Fraction(1, 1024**3)
_DATA = {"b": _GiB, "byte": _GiB, "bytes": _GiB, "字节": _GiB, "kb": _GiB * 1024, "kib": _GiB * 1024,
         "mb": Fraction(1, 1024), "mib": Fraction(1, 1024), "gb": Fraction(1), "gib": Fraction(1),
         "g": Fraction(1), "tb": Fraction(1024), "tib": Fraction(1024), "pb": Fraction(1024**2)}
_TIME = {"小时": 1, "时": 1, "hour": 1, "hours": 1, "h": 1, "hr": 1, "hrs": 1, "天": 24, "日": 24, "day": 24,
         "days": 24, "月": 720, "month": 720, "months": 720}
_NUM = re.compile(r"^(\d[\d,]*(?:\.\d+)?)(k|m)?$")


def parse_unit(text) -> tuple[str, Fraction] | None:
    """A bill unit as (dimension, base units per unit): `次` -> ("count", 1), `万次` -> ("count", 10000),
    `1000 calls` -> ("count", 1000), `GB` -> ("GB", 1), `MB` -> ("GB", 1/1024), `GB*小时` / `GB-hour` /
    `GB/小时` -> ("GB-hour", 1), `GB/月` -> ("GB-hour", 720). None when the text is not understood."""
    if text is None:
        return None
    t = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    if not t:
        return None
    t = re.sub(r"(?<=[0-9a-z])(?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff])(?=[0-9a-z])", " ", t)
    tokens = [x for x in re.split(r"[\s*×·/\-]+", t) if x]
    mult = Fraction(1)
    count = False
    data = None
    hours = None
    for tok in tokens:
        m = _NUM.match(tok)
        if m:
            mult *= Fraction(Decimal(m.group(1).replace(",", ""))) * {None: 1, "k": 1000, "m": 10**6}[m.group(2)]
            continue
        if tok in _COUNT:
            count = True
            continue
        prefix = next((p for p in sorted(_CJK_MULT, key=len, reverse=True) if tok.startswith(p)), None)
        if prefix is not None and (tok[len(prefix):] in _COUNT or tok[len(prefix):] == ""):
            mult *= _CJK_MULT[prefix]
            count = count or tok[len(prefix):] in _COUNT
            continue
        if tok in _DATA and data is None:
            data = _DATA[tok]
            continue
        if tok in _TIME and hours is None:
            hours = _TIME[tok]
            continue
        if tok in ("per", "每"):
            continue
        return None
    if data is not None:
        if count:
            return None
        return ("GB-hour", mult * data * hours) if hours is not None else ("GB", mult * data)
    if hours is not None:
        return None
    if count or mult != 1:
        return ("count", mult)
    return None


_PRICE_CURRENCY = re.compile(r"^\s*(CNY|RMB|USD|JPY|US\$|\$|¥|￥|元|美元|人民币)\s*(/|per\b)?\s*", re.I)


def split_price_unit(text) -> tuple[str | None, str | None]:
    """(currency, quantity unit) from a ListPriceUnit: `CNY/万次` -> ("CNY", "万次"), `元/GB/小时` ->
    ("CNY", "GB/小时"), `CNY` -> ("CNY", None: per usage unit)."""
    if text is None:
        return None, None
    t = unicodedata.normalize("NFKC", str(text)).strip()
    m = _PRICE_CURRENCY.match(t)
    if not m:
        return None, t or None
    cur = m.group(1).upper()
    cur = {"RMB": "CNY", "¥": "CNY", "元": "CNY", "人民币": "CNY", "US$": "USD", "$": "USD", "美元": "USD"}.get(
        cur, cur)
    rest = t[m.end():].strip()
    return cur, rest or None


def to_decimal(f: Fraction, places: int = 18) -> Decimal:
    """A Fraction as a Decimal: exact when it terminates within `places` decimals, else rounded half-up."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(f.numerator) / Decimal(f.denominator)
        q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    n = q.normalize()
    return n.quantize(Decimal(1)) if n == n.to_integral() else n


def item_quantity_factor(item: str, usage_unit) -> tuple[Fraction | None, str | None]:
    """(base units of `item` per usage unit, note). For storage items a pure data unit (GB) counts as
    GB-hours: the bill's Usage sums the hourly bills (1 GB stored all day = 24 GB)."""
    dim = ITEMS[item][0]
    want = _DIMENSION[dim]
    parsed = parse_unit(usage_unit)
    if parsed is None:
        if usage_unit in (None, "") and want == "count":
            return Fraction(1), "no usage unit: read as a count"
        return None, f"usage unit {usage_unit!r} not understood"
    udim, mult = parsed
    if udim == want:
        return mult, None
    if want == "GB-hour" and udim == "GB":
        return mult, "storage usage in GB read as GB-hours (the sum of the hourly bills)"
    return None, f"usage unit {usage_unit!r} does not measure {item} ({dim})"
