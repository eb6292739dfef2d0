"""The forecast for notebooks: its month x item table as a numeric DataFrame, and scenario dicts read as
their YAML is (costkit.engine.forecast re-exports both)."""
from __future__ import annotations

from decimal import Decimal


def typed_numbers(value):
    """A scenario dict with each float as the decimal it was typed as (its shortest repr: 0.03 -> "0.03"),
    so that `estimate({"monthly_growth": 0.03, ...})` reads like the YAML; never used for arithmetic."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: typed_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [typed_numbers(v) for v in value]
    return value


def months_frame(model: dict):
    """The month x item table of a forecast model as a pandas DataFrame, ready to sum and plot.

    Columns: `month` (monthly Period, Asia/Shanghai billing months), `tasks` (int64), `billable_splices`
    and one column per item plus `total`, all exact Arrow decimals (money: decimal128(38, 2) in the model's
    currency; an item whose price is needed in a month is <NA> there)."""
    import pandas as pd

    from costkit.core.frames import decimal_series, money_series, month_periods
    months = model["months"]
    df = pd.DataFrame({"month": month_periods([m["month"] for m in months])})
    tasks = [Decimal(str(m["tasks"])) for m in months]
    df["tasks"] = (pd.Series([int(t) for t in tasks], dtype="int64") if all(t == t.to_integral() for t in tasks)
                   else decimal_series(tasks))
    df["billable_splices"] = decimal_series([m["billable_splices"] for m in months])
    for k in model["item_keys"]:
        df[k] = money_series([m["items"].get(k) for m in months])
    df["total"] = money_series([m["total"] for m in months])
    return df


__all__ = ["months_frame", "typed_numbers"]
