"""The audited month in context: unit cost per month (expected and billed, per 1,000 splices) and the month's
largest projects and tags by expected cost."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.audit.figures import money_text, qty_text
from costkit.audit.sides import SPLICE
from costkit.core.errors import BadInput


def trend(store, month: str, settings, prices_file, report: dict) -> list[dict]:
    """Unit cost per month in the store (up to the audited month, at most 12): the expected cost per 1,000
    billable splices (all items, and ImageSplicing alone) and, where a bill is stored, the billed
    ImageSplicing net per 1,000 billed splices (OSS bill lines cover whole buckets, so they are left out)."""
    from costkit.engine.period import HOUR_US, parse_period
    from costkit.engine.history import price_history
    from costkit.store.bills import mapped_bill_lines
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
               "billed_splicing_per_1000": None, "note": None}
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
        fr = mapped_bill_lines(store, m)
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
