"""DataFrame columns for the Python API: exact money as Arrow decimals, months as Periods, aware times.

Money is never a binary float: a decimal column is `pd.ArrowDtype(pa.decimal128(38, scale))`, numeric for
pandas (sum, groupby, plot) and exact. Missing values are pd.NA.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation


def _places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def _decimal(v) -> Decimal | None:
    """A Decimal, or None for a missing value or a text that is not a number (e.g. "price needed")."""
    if v is None or isinstance(v, float):   # floats are never money: only NaN (missing) reaches here
        return None
    if isinstance(v, Decimal):
        return v if v.is_finite() else None
    try:
        return Decimal(str(v).strip())
    except InvalidOperation:
        return None


def decimal_series(values, scale: int | None = None, *, index=None, name=None):
    """`values` (Decimals, ints, decimal strings, Fractions-free; None for missing) as an exact Arrow decimal
    Series with `scale` places (default: the most places any value has; at most 18, beyond is rounded
    half-up at the 18th place)."""
    import pandas as pd
    import pyarrow as pa
    vals = [_decimal(v) for v in values]
    if scale is None:
        scale = min(18, max([_places(v) for v in vals if v is not None] or [0]))
    q = Decimal(1).scaleb(-scale)
    vals = [None if v is None else v.quantize(q, rounding="ROUND_HALF_UP") for v in vals]
    arr = pa.array(vals, type=pa.decimal128(38, scale))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index, name=name)


def money_series(values, *, index=None, name=None):
    """Money amounts (2 places, already rounded by the one rule) as an Arrow decimal128(38, 2) Series."""
    return decimal_series(values, 2, index=index, name=name)


def decimal_columns(table):
    """A pyarrow Table as a DataFrame with Arrow decimal columns kept exact (`pd.ArrowDtype`), timestamps as
    tz-aware datetime64 and everything else as pandas' defaults."""
    import pandas as pd
    import pyarrow as pa

    def mapper(t):
        return pd.ArrowDtype(t) if pa.types.is_decimal(t) else None
    return table.to_pandas(types_mapper=mapper)


def month_periods(labels, *, index=None, name=None):
    """`YYYY-MM` labels as a monthly `Period` Series (Asia/Shanghai billing months)."""
    import pandas as pd
    return pd.Series(pd.PeriodIndex(list(labels), freq="M"), index=index, name=name)


__all__ = ["decimal_series", "money_series", "decimal_columns", "month_periods"]
