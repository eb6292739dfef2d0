"""The findings model of `costkit advise` (a dict; money as decimal strings, `format_version` 1): one finding
per proposal priced by the engine, sorted by saving, and the month's possible saving (all counted changes
replayed together, so overlapping findings are not counted twice)."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.core.money import ZERO, round_money
from costkit.engine.profile import CONFIDENT
from costkit.prices.book import ITEM_KEYS

FORMAT_VERSION = 1
HOURS_PER_MONTH = 730     # 8760 / 12: scales a --since/--until period to a month
HOURS_PER_YEAR = 8760


def scaled(ctx, saving: Decimal) -> dict:
    """The saving of the period, per month and per year (a calendar month counts as one month; another
    period is scaled by its hours). Decimal strings, rounded half-up to 2 decimals."""
    if ctx.period.label.count("-") == 1 and "/" not in ctx.period.label:
        month, year = saving, saving * 12
    else:
        hours = ctx.period.h1 - ctx.period.h0
        month = round_money(Fraction(saving) * HOURS_PER_MONTH / hours)
        year = round_money(Fraction(saving) * HOURS_PER_YEAR / hours)
    return {"period": str(saving), "month": str(round_money(month)), "year": str(round_money(year))}


def confidence(entries) -> dict:
    """The prices a figure rests on and one level: `settled` when every priced entry has a confidence costkit
    takes as settled (official, contract, bill, ...), else `confirm`."""
    seen, prices = set(), []
    for e in entries:
        key = (e.item, e.selectors, e.effective_from, e.layer)
        if key in seen or not e.price:
            continue
        seen.add(key)
        prices.append({"item": e.item, "selectors": dict(e.selectors), "price": str(e.price), "unit": e.unit,
                       "currency": e.currency, "confidence": e.confidence, "source": e.source})
    low = sorted({p["confidence"] for p in prices if p["confidence"] not in CONFIDENT})
    return {"level": "confirm" if low else "settled", "low": low, "prices": prices}


def finding(ctx, p, *, title: str, today_items: dict, after_items: dict | None, items: list, spill: Decimal, one_time: list,
            entries: list) -> dict:
    """One finding: the proposal's text and evidence with the engine's figures of its affected tasks."""
    adj = [{"label": a.label, "amount": str(round_money(a.amount))} for a in p.adjustments]
    today = sum((today_items[k] for k in items), ZERO)
    saving = after = None
    if after_items is not None:
        after = sum((after_items[k] for k in items), ZERO)
        saving = today - after + spill + sum((Decimal(a["amount"]) for a in adj), ZERO)
    ot_total = sum((Decimal(x["amount"]) for x in one_time), ZERO)
    return {
        "rule": p.rule, "title": title, "change": p.change, "evidence": p.evidence,
        "items": [{"item": k, "today": str(today_items[k]),
                   "after": None if after_items is None else str(after_items[k])} for k in items],
        "today": str(today), "after": None if after is None else str(after),
        "other_tasks_change": str(spill),
        "adjustments": adj,
        "saving": None if saving is None else scaled(ctx, saving),
        "one_time": {"total": str(ot_total), "lines": one_time},
        "risk": p.risk, "confidence": confidence(entries), "needs": list(p.needs),
        "counts_in_total": bool(p.counts and saving is not None), "note": p.note,
    }


def sort_key(f: dict):
    s = f["saving"]
    return (s is None, -Decimal(s["period"]) if s else 0, f["rule"])


def build_report(ctx, findings: list, possible: Decimal) -> dict:
    """The advice model of the period: header figures, the findings sorted by saving, the possible saving."""
    findings = sorted(findings, key=sort_key)
    counted = [f["rule"] for f in findings if f["counts_in_total"]]
    return {
        "format_version": FORMAT_VERSION,
        "period": {"label": ctx.period.label, "start": ctx.period.start.isoformat(),
                   "end": ctx.period.end.isoformat()},
        "site": ctx.settings.site, "currency": ctx.book.currency,
        "month_total": ctx.today["total"], "tasks": ctx.today["tasks"],
        "items": ctx.today["items"],
        "findings": findings,
        "possible_saving": {**scaled(ctx, possible), "findings": counted,
                            "not_counted": [f["rule"] for f in findings if not f["counts_in_total"]]},
        "settings": {"advise": {k: str(v) for k, v in ctx.settings.advise.items()},
                     "settings_file": ctx.settings.path},
        "warnings": list(ctx.today["warnings"]),
    }


def item_order(keys) -> list:
    """Item keys in the catalogue's order."""
    return [k for k in ITEM_KEYS if k in set(keys)]


__all__ = ["FORMAT_VERSION", "finding", "build_report", "confidence", "scaled", "item_order"]
