"""The audit's figures from the explained lines: a row per day x item and per item for the month (with the
tolerance verdict), the month's KPIs, and the daily totals against the tolerance band (anomalies)."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from costkit.audit.causes import cause_list, explanation
from costkit.audit.figures import money_text, pct_text, qty_text
from costkit.audit.sides import SPLICE
from costkit.core.catalog import ITEM_KEYS, ITEMS
from costkit.core.money import ZERO, fmt_quantity, round_money

_DEDUCTIONS = ("invoice_discount", "deducted_by_coupons", "deducted_by_cash_coupons", "deducted_by_savings_plan",
               "deducted_by_resource_package", "other_deduction")
_SUMMED = ("billed_gross", *_DEDUCTIONS, "billed_net", "expected", "variance", "not_splicing")


def _money(ln) -> dict:
    """A line's money figures, each rounded half-up to cents (exact Fractions in)."""
    return {"billed_gross": ln.gross, "invoice_discount": ln.disc, "deducted_by_coupons": ln.coup,
            "deducted_by_cash_coupons": ln.vouch, "deducted_by_savings_plan": ln.saving,
            "deducted_by_resource_package": ln.plan_money,
            "other_deduction": ln.other}


def item_rows(lines: dict, report: dict, tolerance, floor, currency: str) -> tuple[list, list, list]:
    """(day rows, item rows, items out of tolerance); money as 2-place text in `currency`."""
    day_rows, rows, out_of_tolerance = [], [], []
    for item in [k for k in ITEM_KEYS if any(item == k for (_, item) in lines)]:
        row = _item_row(item, sorted((k, ln) for k, ln in lines.items() if k[1] == item), day_rows, report,
                        tolerance, floor, currency)
        if not row["within_tolerance"]:
            out_of_tolerance.append(item)
        rows.append(row)
    return day_rows, rows, out_of_tolerance


def _day_row(ln, unit: str) -> dict:
    return {"day": ln.day, "item": ln.item, "unit": unit, "billed_quantity": qty_text(ln.qb),
            "expected_quantity": qty_text(ln.qe), "quantity_delta": qty_text(ln.qb - ln.qe),
            **{k: money_text(v) for k, v in _money(ln).items()},
            "covered_by_resource_plan": qty_text(ln.qp), "billed_net": str(round_money(ln.net)), "expected": str(ln.expected), "variance": str(ln.variance),
            "variance_pct": pct_text(ln.variance, ln.expected), "not_splicing": str(ln.unclaimed),
            "has_bill_line": ln.has_bill, "list_prices": sorted(ln.list_prices),
            "causes": cause_list(ln.causes, ln.counts)}


def _item_row(item: str, item_lines: list, day_rows: list, report: dict, tolerance, floor, currency) -> dict:
    """The month's row of one item (appending its day rows to `day_rows`)."""
    unit = ITEMS[item][0]
    agg = defaultdict(lambda: ZERO)
    counts = defaultdict(Fraction)
    qb = qe = qp = Fraction(0)
    prices, lnos = set(), []
    bill_days = 0
    for _key, ln in item_lines:
        day_rows.append(_day_row(ln, unit))
        qb += ln.qb
        qe += ln.qe
        bill_days += ln.has_bill
        prices |= ln.list_prices
        lnos += ln.line_nos
        qp += ln.qp
        for k, v in (*((k, round_money(v)) for k, v in _money(ln).items()), ("billed_net", round_money(ln.net)),
                     ("expected", ln.expected), ("variance", ln.variance), ("not_splicing", ln.unclaimed)):
            agg[k] += v
        for k, v in ln.causes.items():
            agg["cause:" + k] += v
        for k, v in ln.counts.items():
            counts[k] += v if k != "day_boundary" else max(v, 0)   # splices moved to the next/previous day
    causes = {k[6:]: v for k, v in agg.items() if k.startswith("cause:") and v}
    if counts.get("day_boundary"):
        causes["day_boundary"] = agg["cause:day_boundary"]     # nets to ~0 over the month: still shown
    limit = max(tolerance * abs(agg["expected"]), floor)
    ok = abs(agg["variance"]) <= limit
    cl = cause_list(causes, {k: v for k, v in counts.items() if v})
    book_entry = None
    for p in report["prices"]:
        if p["item"] == item or (item == "oss.EarlyDeletion" and p["item"] == "oss.Storage"):
            book_entry = book_entry or p
    return {
        "item": item, "unit": unit, "description": ITEMS[item][2], "claim": "all" if item == SPLICE
        else "splicing share", "billed_quantity": qty_text(qb), "expected_quantity": qty_text(qe),
        "quantity_delta": qty_text(qb - qe), "covered_by_resource_plan": qty_text(qp),
        "list_prices": sorted(prices), "book_price": None if book_entry is None else
        f"{book_entry['price']} {book_entry['currency']}/{book_entry['unit']}",
        **{k: str(agg[k]) for k in _SUMMED},
        "variance_pct": pct_text(agg["variance"], agg["expected"]),
        "limit": str(round_money(limit)), "status": "within tolerance" if ok else "out of tolerance",
        "within_tolerance": ok, "bill_days": bill_days, "bill_lines": len(lnos),
        "causes": cl, "explanation": explanation(cl, unit, currency)}


def kpis(item_rows: list, report: dict, unmapped) -> dict:
    """The month's headline figures: billed (gross, deductions, net, attributable), expected, variance, splice
    counts, failure rate and unit costs (per splice: 6 places; per 1,000: 2), the unmapped lines' gross."""
    def tot(key):
        return sum((Decimal(r[key]) for r in item_rows), ZERO)

    expected, variance, billed_net = tot("expected"), tot("variance"), tot("billed_net")
    attributable = expected + variance
    splice_row = next((r for r in item_rows if r["item"] == SPLICE), None)
    billed_splices = Fraction(Decimal(splice_row["billed_quantity"])) if splice_row else Fraction(0)
    finished = report["succeeded"] + report["failed"]
    return {
        "billed_gross": str(tot("billed_gross")),
        "deductions": {k: str(tot(k)) for k in _DEDUCTIONS},
        "billed_net": str(billed_net), "billed_attributable": str(attributable), "not_splicing": str(tot("not_splicing")),
        "expected": str(expected), "variance": str(variance), "variance_pct": pct_text(variance, expected),
        "direction": "none" if not variance else ("unfavourable" if variance > 0 else "favourable"),
        "billed_splices": qty_text(billed_splices), "billable_splices": report["billable_splices"],
        "tasks": report["tasks"], "succeeded": report["succeeded"], "failed": report["failed"],
        "failure_rate_pct": None if not finished else fmt_quantity(Fraction(report["failed"] * 100, finished), 2),
        "cost_per_splice": None if not billed_splices else fmt_quantity(Fraction(attributable) / billed_splices, 6),
        "cost_per_1000_splices": None if not billed_splices else
        money_text(Fraction(attributable) / billed_splices * 1000),
        "expected_per_1000_splices": None if not report["billable_splices"] else
        money_text(Fraction(expected) / report["billable_splices"] * 1000),
        "unmapped_gross": money_text(sum((Fraction(v or 0) for v in unmapped["pretax_gross_amount"]), Fraction(0)))
        if len(unmapped) else "0.00",
    }


def daily_band(day_rows: list, days: list, tolerance, floor) -> tuple[list, list]:
    """(a row per day of the month: expected, billed net, attributable, the band; the anomalous days with
    their claimed causes)."""
    daily, anomalies = [], []
    by_day = defaultdict(list)
    for r in day_rows:
        by_day[r["day"]].append(r)
    for d in days:
        key = d.isoformat()
        rows = by_day.get(key, [])
        e = sum((Decimal(r["expected"]) for r in rows), ZERO)
        v = sum((Decimal(r["variance"]) for r in rows), ZERO)
        b = sum((Decimal(r["billed_net"]) for r in rows), ZERO)
        width = round_money(max(tolerance * e, floor))
        low, high = (max(ZERO, e - width) if e >= 0 else e - width), e + width
        att = e + v
        row = {"day": key, "expected": str(e), "billed_net": str(b), "attributable": str(att), "variance": str(v),
               "band_low": str(low), "band_high": str(high), "anomaly": not (low <= att <= high)}
        daily.append(row)
        if row["anomaly"]:
            causes = defaultdict(lambda: ZERO)
            for r in rows:
                for c in r["causes"]:
                    if c["claimed"]:
                        causes[c["cause"]] += Decimal(c["amount"])
            anomalies.append({**row, "direction": "above" if att > high else "below",
                              "causes": cause_list({k: v for k, v in causes.items() if v})})
    return daily, anomalies
