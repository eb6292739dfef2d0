"""Why a day x item line's billed net differs from the expected amount: the causes (see costkit.audit.reconcile),
each rounded to cents, with `rounding` taking the rest so that the causes of a line add up to its variance."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from costkit.audit.figures import qty_text
from costkit.audit.sides import SPLICE, Line
from costkit.core.money import ZERO, round_money
from costkit.core.timeutil import SHANGHAI

CAUSES = {
    "coverage_gap": "coverage gap: billed splices on days the store did not collect",
    "before_cutover": "charged splices that completed before the ImageSplicing cutover",
    "failed_billed": "failed tasks billed (billed count = succeeded + failed)",
    "day_boundary": "day boundary: splices billed on the neighbouring day (nets to ~0 across the days)",
    "usage": "usage difference: billed count differs from the collected succeeded count",
    "price": "price difference: billed unit price differs from the book price",
    "discount": "invoice discount",
    "coupons": "coupons",
    "vouchers": "vouchers",
    "savings_plan": "savings plan",
    "other_deduction": "other deduction (gross - stated deductions - payable)",
    "resource_plan": "covered by resource plan (usage the plan deducted, at the book price)",
    "rounding": "rounding of bill lines and of the expected amounts",
    "not_splicing": "not splicing: other use of the same buckets (not claimed)",
    "coverage_gap_unclaimed": "OSS usage on coverage-gap days: uncollected splices or other use (not claimed)",
}
UNCLAIMED = ("not_splicing", "coverage_gap_unclaimed")


def explain_lines(store, period, lines: dict, tasks: dict, gap_days: set, imm_start, warnings: list) -> None:
    """Set the causes, claimed `variance` and `unclaimed` amount of every line (exact, then rounded);
    warns when the bill counts splices per UTC day."""
    cut_day = imm_start.astimezone(SHANGHAI).date().isoformat()
    utc_counts = _utc_day_splices(store, period, imm_start)
    utc_days = _bill_uses_utc_days(lines, utc_counts, gap_days)
    if utc_days:
        warnings.append("The bill's daily ImageSplicing counts match UTC days (08:00 to 08:00 UTC+8) better than "
                        "UTC+8 billing days: the shift is shown as the day boundary.")
    _splice_counts(lines, tasks, gap_days, cut_day, utc_counts if utc_days else None)
    for ln in lines.values():
        _explain(ln, gap_days)


def _utc_day_splices(store, period, imm_start) -> dict:
    """Billable splices (Succeeded, at or after the cutover) per UTC day of completion, for the days of the
    period (a UTC day runs 08:00 to 08:00 UTC+8, so the next month's first 8 hours belong to the last one)."""
    sql = """SELECT strftime(DATE '1970-01-01' + CAST(epoch_us(end_time) // 86400000000 AS INTEGER), '%Y-%m-%d'),
                    count(*)
             FROM tasks WHERE status = 'Succeeded' AND end_time >= $imm AND end_time >= $p0 AND end_time < $p1
             GROUP BY ALL"""
    with store._lock:
        rows = store._con.execute(sql, {"p0": period.start, "p1": period.end + timedelta(hours=8),
                                        "imm": imm_start}).fetchall()
    return {d: int(n) for d, n in rows}


def _bill_uses_utc_days(lines: dict, utc_counts: dict, gap_days: set) -> bool:
    """True when the bill's daily ImageSplicing counts match UTC days better than UTC+8 days."""
    local = utc = 0
    for (day, item), ln in lines.items():
        if item != SPLICE or day in gap_days or not ln.has_bill:
            continue
        local += abs(ln.qb - ln.qe)
        utc += abs(ln.qb - utc_counts.get(day, 0))
    return local > 0 and utc < local / 2


def _splice_counts(lines: dict, task_days: dict, gap_days: set, cutover_day: str | None,
                   utc_counts: dict | None = None):
    """Assign each ImageSplicing day's count difference to its causes (see costkit.audit.reconcile). With
    `utc_counts` (the bill uses UTC days), the shift between UTC and UTC+8 days is the day boundary."""
    resid = {}
    for (day, item), ln in lines.items():
        if item != SPLICE:
            continue
        r = ln.qb - ln.qe               # the plan-covered part is the resource_plan cause (see _explain)
        info = task_days.get(day, {})
        c = ln.counts
        if r > 0 and (day in gap_days or not info.get("tasks")):
            c["coverage_gap"] = r
            r = 0
        if utc_counts is not None and r:
            shift = utc_counts.get(day, 0) - ln.qe
            if shift * r > 0:
                k = shift if abs(shift) <= abs(r) else r
                c["day_boundary"] = k
                r -= k
        pre = info.get("pre_cutover", 0)
        if r > 0 and pre and (cutover_day is None or day <= cutover_day):
            k = min(r, Fraction(pre))
            c["before_cutover"] = k
            r -= k
        f = info.get("failed", 0)
        if r > 0 and f and abs(r - f) <= max(1, Fraction(f, 10)):
            k = min(r, Fraction(f))
            c["failed_billed"] = k
            r -= k
        resid[day] = r
    _neighbour_days(lines, resid)
    for day, r in resid.items():
        if r:
            lines[(day, SPLICE)].counts["usage"] = r


def _neighbour_days(lines: dict, resid: dict) -> None:
    """A surplus on one day and a deficit on the next cancel: both are the day boundary."""
    days = sorted(resid)
    for a, b in zip(days, days[1:]):
        if (date.fromisoformat(b) - date.fromisoformat(a)).days != 1:
            continue
        ra, rb = resid[a], resid[b]
        if ra * rb < 0:
            k = min(abs(ra), abs(rb))
            sa, sb = (1 if ra > 0 else -1), (1 if rb > 0 else -1)
            for d, s in ((a, sa), (b, sb)):
                lines[(d, SPLICE)].counts["day_boundary"] = lines[(d, SPLICE)].counts.get("day_boundary", 0) + s * k
                resid[d] -= s * k


def _explain(ln: Line, gap_days: set) -> None:
    """Rounded causes of one line; `ln.variance` (claimed) and `ln.unclaimed` set."""
    net = round_money(ln.net)
    variance_all = net - ln.expected
    causes: dict = {}
    pr = ln.pr if ln.pr is not None else (Fraction(ln.expected) / ln.qe if ln.qe else Fraction(0))
    if ln.item == SPLICE:
        for name, n in ln.counts.items():
            causes[name] = round_money(n * pr)
        causes["price"] = round_money(ln.price_term)
        for name, v in _deductions(ln, Fraction(1)):
            causes[name] = v
        causes["resource_plan"] = -round_money(ln.qp_free * pr + ln.plan_money)
        claimed = variance_all
        unclaimed = ZERO
    else:
        # OSS: claim the splicing share of the billed line (all of it when the bill shows no more usage
        # than splicing causes); the rest of the bucket's charge is not claimed.
        share = ln.qe / ln.qb if ln.qb > ln.qe else Fraction(1)
        causes["price"] = round_money(ln.price_term * share)
        for name, v in _deductions(ln, share):
            causes[name] = v
        causes["resource_plan"] = -round_money((ln.qp_free * pr + ln.plan_money) * share)
        if ln.qb < ln.qe:
            causes["usage"] = round_money((ln.qb - ln.qe) * pr)
        claimed = round_money(ln.net * share) - ln.expected
        unclaimed = variance_all - claimed
        if unclaimed:
            causes["coverage_gap_unclaimed" if ln.day in gap_days else "not_splicing"] = unclaimed
    named = sum((v for k, v in causes.items() if k not in UNCLAIMED), ZERO)
    causes["rounding"] = claimed - named
    ln.causes = {k: v for k, v in causes.items() if v}
    ln.variance = claimed
    ln.unclaimed = unclaimed


def _deductions(ln: Line, share: Fraction) -> list:
    """The money deductions of a line as causes (negative, rounded), `share` of each."""
    return [(name, -round_money(v * share)) for name, v in (
        ("discount", ln.disc), ("coupons", ln.coup), ("vouchers", ln.vouch), ("savings_plan", ln.saving),
        ("other_deduction", ln.other))]


def cause_list(causes: dict, counts: dict | None = None) -> list[dict]:
    """The model's cause rows, in CAUSES order: amount (2-place text), claimed, quantity (base unit), text."""
    order = list(CAUSES)
    out = []
    for k in sorted(causes, key=order.index):
        out.append({"cause": k, "amount": str(causes[k]), "claimed": k not in UNCLAIMED,
                    "quantity": None if not counts or k not in counts else qty_text(counts[k]),
                    "text": CAUSES[k]})
    return out


def explanation(item_causes: list[dict], unit: str, currency: str) -> str:
    """One sentence of an item's claimed causes, rounding included, that add up to its variance (stated at
    the end as "= Δ"); unclaimed amounts follow in brackets; "matches" when there are none."""
    parts, unclaimed = [], []
    total = ZERO
    for c in item_causes:
        q = f" ({c['quantity']} {unit})" if c.get("quantity") else ""
        text = f"{c['text']}{q}: {c['amount']} {currency}"
        if c["claimed"]:
            parts.append(text)
            total += Decimal(c["amount"])
        else:
            unclaimed.append(text)
    out = "; ".join(parts) + (f" (= Δ {total} {currency})" if parts else "")
    if unclaimed:
        out += (" " if out else "") + "[not claimed: " + "; ".join(unclaimed) + "]"
    return out or "matches"
