"""Billing periods and how they are cut: `[start, end)` on whole hours (Asia/Shanghai labels), the report
grouping, the hours at which a price changes (segments), and the Asia/Shanghai day of an hour, in Python and
as SQL expressions over hour indexes (hours since the Unix epoch)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI, add_months, month_label, month_start, parse_instant_or_date, parse_month
from costkit.prices.book import ITEM_KEYS

HOUR_US = 3_600_000_000   # microseconds per hour (DuckDB epoch_us)


@dataclass(frozen=True)
class Period:
    """A billing period `[start, end)` on whole hours; `h0`, `h1` are its bounds as hour indexes (hours since
    the Unix epoch), `label` the `YYYY-MM` month or the `since/until` instants in +08:00."""

    start: datetime
    end: datetime
    label: str

    @property
    def h0(self) -> int:
        return int(self.start.timestamp()) // 3600

    @property
    def h1(self) -> int:
        return int(self.end.timestamp()) // 3600


def parse_period(month=None, since=None, until=None) -> Period:
    """`--month YYYY-MM`, or `--since` and `--until` (ISO 8601 with offset, or YYYY-MM-DD in Asia/Shanghai)."""
    if month and (since or until):
        raise BadInput("give either --month or --since/--until, not both", field="--month")
    if month:
        y, m = parse_month(month, field="--month")
        return Period(month_start(y, m), month_start(*add_months(y, m, 1)), month_label(y, m))
    if not since or not until:
        raise BadInput("give --month YYYY-MM, or both --since and --until", field="--month")
    a, b = parse_instant_or_date(since, field="--since"), parse_instant_or_date(until, field="--until")
    for t, name in ((a, "--since"), (b, "--until")):
        if t.timestamp() % 3600:
            raise BadInput(f"must be on a whole hour (billing is hourly): {t.isoformat()}", field=name)
    if b <= a:
        raise BadInput("--until must be after --since", field="--until")
    return Period(a, b, f"{a.astimezone(SHANGHAI).isoformat()}/{b.astimezone(SHANGHAI).isoformat()}")


def parse_by(by: str | None) -> str:
    """The report grouping `--by`: item, day, project or tag:KEY (BadInput otherwise)."""
    by = (by or "item").strip()
    if by in ("item", "day", "project"):
        return by
    if by.startswith("tag:") and len(by) > 4:
        return by
    raise BadInput(f"expected item, day, project or tag:KEY, got {by!r}", field="--by")


# ---------------------------------------------------------------------------------------------
# Price segments and slices of a period

def price_segments(book, imm_start: datetime, period: Period) -> list[int]:
    """Hour indexes inside the period at which some price of `book` (or the ImageSplicing start) changes."""
    pts = set()
    for item in ITEM_KEYS:
        for t in book.boundaries(item):
            pts.add(-(-int(t.timestamp()) // 3600))
    pts.add(-(-int(imm_start.timestamp()) // 3600))
    return sorted(p for p in pts if period.h0 < p < period.h1)


def segment_sql(col: str, bounds: list[int]) -> str:
    """SQL: the price segment (0, 1, ...) of the hour index in `col`, given the segment bounds."""
    if not bounds:
        return "0"
    return "(" + " + ".join(f"({col} >= {b})::INTEGER" for b in bounds) + ")"


def period_cuts(period: Period, bounds: list[int], by_day: bool) -> list[tuple[int, int, int, str]]:
    """(start hour, end hour, segment, day label) slices of the period."""
    pts = {period.h0, period.h1, *bounds}
    if by_day:
        h = period.h0
        while h < period.h1:
            h = (h + 8) // 24 * 24 + 24 - 8
            if h < period.h1:
                pts.add(h)
    pts = sorted(pts)
    out = []
    for a, b in zip(pts, pts[1:]):
        seg = sum(1 for x in bounds if a >= x)
        out.append((a, b, seg, _day_label((a + 8) // 24)))
    return out


def _day_label(day_index: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(days=day_index)).strftime("%Y-%m-%d")


def day_sql(hour_col: str) -> str:
    """SQL: the Asia/Shanghai day (YYYY-MM-DD) of the hour index in `hour_col`."""
    return f"strftime(DATE '1970-01-01' + CAST(({hour_col} + 8) // 24 AS INTEGER), '%Y-%m-%d')"


_day = day_sql   # the name audit.reconcile imports

__all__ = ["HOUR_US", "Period", "parse_period", "parse_by", "price_segments", "segment_sql", "period_cuts",
           "day_sql"]
