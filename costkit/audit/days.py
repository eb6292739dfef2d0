"""The audited month's billing days (Asia/Shanghai) and their bounds."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from costkit.core.timeutil import SHANGHAI, add_months, parse_month

UTC = timezone.utc


def month_days(month: str) -> list[date]:
    """Every UTC+8 calendar day of `month` (YYYY-MM), in order."""
    y, m = parse_month(month, field="--month")
    first = date(y, m, 1)
    ny, nm = add_months(y, m, 1)
    return [first + timedelta(days=i) for i in range((date(ny, nm, 1) - first).days)]


def day_bounds(d: date) -> tuple[datetime, datetime]:
    """[start, end) of the billing day `d`: aware datetimes at 00:00 Asia/Shanghai."""
    s = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
    return s, s + timedelta(days=1)


def iso_utc(v) -> str | None:
    """An instant (datetime or pandas Timestamp; naive means UTC) as ISO 8601 UTC text, None for none/NaT."""
    if v is None or str(v) == "NaT":
        return None
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return v.astimezone(UTC).isoformat()
