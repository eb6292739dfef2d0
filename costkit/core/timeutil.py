"""Explicit time: every timestamp is timezone-aware; billing hours and months are Asia/Shanghai."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from costkit.core.errors import BadInput

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# Every time costkit reads lies in these years (Asia/Shanghai and UTC): earlier or later is a typo, and
# Python's datetime cannot step past year 1 or 9999.
YEAR_MIN, YEAR_MAX = 2000, 2100


def check_year(dt: datetime, *, field: str = "timestamp", path=None, line=None, raw=None) -> datetime:
    """`dt` when it lies in years YEAR_MIN..YEAR_MAX (UTC and UTC+8); else BadInput naming the field."""
    try:
        years = (dt.year, dt.astimezone(UTC).year, dt.astimezone(SHANGHAI).year) if dt.tzinfo else (dt.year,)
    except (OverflowError, ValueError):
        years = (0,)
    if not all(YEAR_MIN <= y <= YEAR_MAX for y in years):
        shown = raw if raw is not None else dt.isoformat()
        raise BadInput(f"{shown!r} is outside the years {YEAR_MIN}..{YEAR_MAX}", path=path, line=line, field=field)
    return dt


def parse_instant(value, *, field: str = "timestamp", path=None, line=None) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset (or Z); return an aware datetime.

    A naive timestamp is rejected: billing depends on which day and hour in UTC+8 it is.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise BadInput(f"not an ISO 8601 timestamp: {value!r}", path=path, line=line, field=field)
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise BadInput(f"timestamp has no UTC offset: {value!r} (write e.g. 2025-07-28T11:00:00+08:00)",
                       path=path, line=line, field=field)
    return check_year(dt, field=field, path=path, line=line, raw=value)


def parse_month(value, *, field: str = "month", path=None, line=None) -> tuple[int, int]:
    """Parse `YYYY-MM`; return (year, month)."""
    m = _MONTH.match(str(value).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise BadInput(f"expected YYYY-MM, got {value!r}", path=path, line=line, field=field)
    if not YEAR_MIN <= int(m.group(1)) <= YEAR_MAX:
        raise BadInput(f"{value!r} is outside the years {YEAR_MIN}..{YEAR_MAX}", path=path, line=line, field=field)
    return int(m.group(1)), int(m.group(2))


def month_start(year: int, month: int) -> datetime:
    """The first instant of a billing month (Asia/Shanghai)."""
    return datetime(year, month, 1, tzinfo=SHANGHAI)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + n
    return idx // 12, idx % 12 + 1


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def billing_month(instant: datetime) -> str:
    """The Asia/Shanghai billing month (`YYYY-MM`) that an aware instant falls in."""
    local = instant.astimezone(SHANGHAI)
    return month_label(local.year, local.month)


def hours_between(a: datetime, b: datetime) -> int:
    """Whole hours from a to b (both aware); Asia/Shanghai has no DST, so days are 24 h."""
    return int((b - a) // timedelta(hours=1))


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return None if dt is None else dt.isoformat()


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant_or_date(value, *, field: str = "timestamp") -> datetime:
    """An option's time: ISO 8601 with an offset, or a date `YYYY-MM-DD` meaning 00:00 Asia/Shanghai
    (the start of that billing day)."""
    text = str(value).strip()
    if _DATE.match(text):
        try:
            dt = datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
        except ValueError:
            raise BadInput(f"not a date: {value!r}", field=field) from None
        return check_year(dt, field=field, raw=value)
    return parse_instant(text, field=field)


def show_time(value) -> str:
    """An aware instant (datetime or pandas Timestamp) as a person reads it: Asia/Shanghai, whole seconds,
    `2025-09-10 08:30:05+08:00`; "" for None/NaT. JSON keeps full ISO instants (`iso`)."""
    if value is None or value != value:   # NaT is not equal to itself
        return ""
    return value.astimezone(SHANGHAI).replace(microsecond=0).isoformat(sep=" ")
