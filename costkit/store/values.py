"""Values between Python and the store: aware UTC datetimes, missing values, quiet cleanup."""
from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pandas as pd

from costkit.core.timeutil import SHANGHAI, parse_instant, parse_instant_or_date

UTC = timezone.utc


def aware(value, name: str) -> datetime | None:
    """`value` (an aware datetime, or None) in UTC; raises ValueError for anything else."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def instant_arg(value, name: str) -> datetime:
    """An aware UTC datetime from an API argument, as the CLI reads times: an aware datetime, ISO 8601 text
    with an offset, or a date (`datetime.date` or `YYYY-MM-DD`) meaning 00:00 Asia/Shanghai."""
    from datetime import date
    if isinstance(value, str):
        return parse_instant_or_date(value, field=name).astimezone(UTC)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=SHANGHAI).astimezone(UTC)
    return aware(value, name)


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


def py_dt(value) -> datetime | None:
    """A DuckDB TIMESTAMPTZ value as an aware UTC datetime (None stays None)."""
    if value is None or value is pd.NaT:
        return None
    return value.astimezone(UTC)


def present(value) -> bool:
    """False for None, NaN and pd.NA (what a missing value becomes in a DataFrame)."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and value != value)


def none_for_missing(col: pd.Series) -> pd.Series:
    """An object column with None where the value is missing (not NaN or pd.NA)."""
    return pd.Series([v if present(v) else None for v in col], index=col.index, dtype=object)


def quietly(fn, *args) -> None:
    # Cleanup after a failed statement must not hide the error that caused it.
    try:
        fn(*args)
    except duckdb.Error:
        pass
