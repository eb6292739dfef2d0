"""The audited month in context: unit cost per month (expected and billed, per 1,000 splices) and the month's
largest projects and tags by expected cost."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.audit.figures import money_text, qty_text
from costkit.audit.sides import SPLICE
from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI


def month_span(store, month: str) -> dict:
    """How much of `month` (UTC+8) the store's tasks cover: `first_task` and `last_task` (completion, ISO
    +08:00, None without tasks), `task_days` (days with a finished task), `days`, and `partial`: True when
    the tasks start more than a day after the month begins or end more than a day before it ends (a month
    holding 6 hours of tasks is not a full month)."""
    from datetime import datetime, timedelta, timezone

    from costkit.engine.period import HOUR_US, parse_period
    p = parse_period(month)
    with store._lock:
        first, last, n = store._con.execute(
            f"SELECT min(epoch_us(end_time)), max(epoch_us(end_time)), count(DISTINCT (epoch_us(end_time) // {HOUR_US}"
            " + 8) // 24) FROM tasks WHERE end_time >= ? AND end_time < ?", [p.start, p.end]).fetchone()
    first, last = (None if t is None else datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(t)) for t in (first, last))
    days = (p.end - p.start).days
    day = timedelta(days=1)
    partial = first is None or first - p.start > day or p.end - last > day

    def local(t):
        return None if t is None else t.astimezone(SHANGHAI).replace(microsecond=0).isoformat()
    return {"first_task": local(first), "last_task": local(last), "task_days": int(n), "days": days,
            "partial": bool(partial)}


def trend(store, month: str, settings, prices_file, report: dict) -> list[dict]:
    """Unit cost per month in the store (up to the audited month, at most 12): the expected cost per 1,000
    billable splices (all items, and ImageSplicing alone) and, where a bill is stored, the billed
    ImageSplicing net per 1,000 billed splices (OSS bill lines cover whole buckets, so they are left out)."""
    from costkit.engine.period import HOUR_US, parse_period
    from costkit.engine.history import price_history
    from costkit.store.bills import mapped_bill
    with store._lock:
        rows = store._con.execute(
            f"SELECT DISTINCT strftime(DATE '1970-01-01' + CAST((epoch_us(end_time) // {HOUR_US} + 8) // 24 AS "
            "INTEGER), '%Y-%m') FROM tasks WHERE end_time IS NOT NULL").fetchall()
        billed_months = store._con.execute("SELECT DISTINCT month FROM bill_lines").fetchall()
    months = sorted({r[0] for r in rows} | {r[0] for r in billed_months} | {month})
    months = [m for m in months if m <= month][-12:]
    out = []
    for m in months:
        row = {"month": m, "expected": None, "billable_splices": None, "expected_per_1000": None,
               "expected_splicing_per_1000": None, "billed_splicing_net": None, "billed_splices": None,
               "billed_splicing_per_1000": None, "note": None, **month_span(store, m)}
        try:
            rep = report if m == month else price_history(store, parse_period(m), settings=settings,
                                                          prices_file=prices_file)
            n = rep["billable_splices"]
            row.update(expected=rep["total"], billable_splices=n)
            if n:
                row["expected_per_1000"] = money_text(Fraction(Decimal(rep["total"])) / n * 1000)
                row["expected_splicing_per_1000"] = money_text(Fraction(Decimal(rep["items"][SPLICE])) / n * 1000)
        except BadInput as e:
            row["note"] = f"not priced: {str(e)[:160]}"
        fr = mapped_bill(store, m)
        if len(fr):
            mp = fr[fr["mapped"] & (fr["item"] == SPLICE)]
            net = sum((Fraction(v) for v in mp["net_amount"] if v is not None), Fraction(0))
            calls = sum((Fraction(q) for q in mp["quantity"] if q is not None), Fraction(0))
            row.update(billed_splicing_net=money_text(net), billed_splices=qty_text(calls))
            if calls:
                row["billed_splicing_per_1000"] = money_text(net / calls * 1000)
        out.append(row)
    return out


def top(store, period, settings, prices_file, n: int = 10) -> dict:
    """Expected cost of the month by project and by tag (key=value), largest first (at most `n` each)."""
    from costkit.engine.history import price_history
    rep = price_history(store, period, by="project", settings=settings, prices_file=prices_file)
    projects = sorted(({"label": g["group"], "amount": g["total"]} for g in rep["groups"]),
                      key=lambda r: (-Decimal(r["amount"]), r["label"]))[:n]
    with store._lock:
        keys = [r[0] for r in store._con.execute(
            "SELECT k, count(*) FROM (SELECT unnest(json_keys(tags)) AS k FROM tasks WHERE end_time >= ? AND "
            "end_time < ? AND tags IS NOT NULL) GROUP BY k ORDER BY count(*) DESC, k LIMIT 5",
            [period.start, period.end]).fetchall()]
    tags = []
    for k in keys:
        rep = price_history(store, period, by=f"tag:{k}", settings=settings, prices_file=prices_file)
        for g in rep["groups"]:
            tags.append({"label": f"{k}={g['group']}", "amount": g["total"]})
    tags.sort(key=lambda r: (-Decimal(r["amount"]), r["label"]))
    return {"projects": projects, "tags": tags[:n]}
