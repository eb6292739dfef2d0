"""What the rules share: evidence tables with examples, and times shown in +08:00."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

from costkit.advise.context import EXAMPLES
from costkit.core.timeutil import SHANGHAI
from costkit.model.usage import GB, KB


def hour_text(h) -> str:
    """An hour index (hours since the epoch) as an ISO 8601 instant in +08:00; '' for None."""
    if h is None:
        return ""
    return datetime.fromtimestamp(int(h) * 3600, timezone.utc).astimezone(SHANGHAI).isoformat()


def instant_text(t) -> str:
    """An aware datetime in +08:00 (seconds), '' for None."""
    return "" if t is None else t.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


def kb(size) -> str:
    """Bytes as KB with up to 1 decimal (for evidence tables)."""
    if size is None:
        return ""
    q = size * 10 // KB
    return f"{q // 10}.{q % 10}" if q % 10 else str(q // 10)


def gb(units: int) -> Fraction:
    """Bytes (or byte-hours) as exact GB (or GB-hours), the engine's base unit for sizes."""
    return Fraction(units, GB)


def evidence(*, tasks: int, objects: int, buckets, columns: list, rows: list, summary: str) -> dict:
    """The evidence of a finding: counts, the buckets, and the first EXAMPLES rows (cells as text)."""
    return {"tasks": tasks, "objects": objects, "buckets": sorted(set(buckets)), "summary": summary,
            "columns": columns, "examples": [[("" if v is None else str(v)) for v in r] for r in rows[:EXAMPLES]],
            "more": max(0, len(rows) - EXAMPLES)}


__all__ = ["hour_text", "instant_text", "kb", "gb", "evidence"]
