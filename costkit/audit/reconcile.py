"""The monthly audit (`costkit audit`): the bill reconciled with the priced task history, variances explained.

`build_audit(store, month, ...)` returns ONE model (a dict, `format_version` 1; money as 2-place decimal
strings) that the JSON, CSV and HTML renderings print as given.

**Sides.** Expected: the cost engine (`costkit.history_cost.price_history`, `by="day"`) per UTC+8 day x item,
quantity in the item's base unit (calls, requests, GB, GB-hour) and amount at book prices. Billed: the
month's bill lines mapped to items (`costkit.billmap`), summed per day x item (all storage classes together):
quantity, PretaxGrossAmount, InvoiceDiscount, DeductedByCoupons, DeductedByResourcePackage and
net = gross - the three deductions.

**Money.** One rounding rule (costkit.money): a day x item line is exact, then rounded half-up to 2 decimals;
month and KPI figures are sums of rounded day lines. Each cause of a day's variance is rounded the same way;
a `rounding` cause takes what is left, so the causes of every line add up to its variance exactly.

**Variance and causes.** For `imm.ImageSplicing` the variance is billed net - expected. With Qb/Qe the billed
and expected calls, Pb the billed unit price (ListPrice per ListPriceUnit, else gross / usage) and Pr the
book price of a splice after the cutover, it splits exactly into:

- `price`: Qb x (Pb - Pr) (the bill's unit price is not the book's);
- `discount`, `coupons`, `resource_plan`: minus each deduction;
- the count difference (Qb - Qe) x Pr, assigned in this order:
  `coverage_gap` (days in a coverage gap of the store, or without any collected task: the bill's splices
  above the collected ones), `day_boundary` when the bill's daily counts match UTC days better than UTC+8
  days (the shift between the two), `before_cutover` (splices completing before `usage.imm_billing_start` that the
  bill charges: up to the count of such succeeded tasks that day), `failed_billed` (the surplus matches the
  day's Failed tasks within max(1, 10 %): billed = succeeded + failed), `day_boundary` (a surplus on one day
  and a deficit on the next that cancel: splices attributed to the neighbouring day, e.g. UTC instead of
  UTC+8), and `usage` (what is left: billed count differs from the collected succeeded count);
- `rounding`: the bill's own rounding of line amounts and the engine's rounding to cents.

OSS items (`oss.*`): a bill line covers a whole bucket, so only the splicing share is claimed. The share is
min(Qb, Qe) of the billed usage; its `price` difference and its share of the deductions are claimed, and so
is `usage` when the bill shows less than splicing alone causes (Qb < Qe). The rest of the billed amount is
`not_splicing` (on coverage-gap days: `coverage_gap_unclaimed`): shown, never counted as a variance.

**Tolerance.** An item is within tolerance when |variance| <= max(tolerance x |expected|, floor); the
relative tolerance defaults to 1 % and the absolute floor to 0.05 in the bill's currency (so tiny items
are not failed by a cent). **Anomalies**: a day is anomalous when its attributable cost (expected +
claimed variance, all items) falls outside the band expected +/- max(tolerance x expected, floor).

**Missing book price.** When the price book has no ImageSplicing price for the month (it is unpublished),
the audit prices the expected side at the bill's predominant ListPrice (by calls) and says so in the
warnings; days billed at another price then show as price differences.
"""
from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

from costkit.core.version import __version__
from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.core.money import ZERO, fmt_quantity, round_money
from costkit.prices.book import ITEM_KEYS, ITEMS
from costkit.core.timeutil import SHANGHAI, add_months, parse_month

UTC = timezone.utc
FORMAT_VERSION = 1
DEFAULT_TOLERANCE = Decimal("0.01")
DEFAULT_FLOOR = Decimal("0.05")
SPLICE = "imm.ImageSplicing"
CAUSES = {
    "coverage_gap": "coverage gap: billed splices on days the store did not collect",
    "before_cutover": "charged splices that completed before the ImageSplicing cutover",
    "failed_billed": "failed tasks billed (billed count = succeeded + failed)",
    "day_boundary": "day boundary: splices billed on the neighbouring day (nets to ~0 across the days)",
    "usage": "usage difference: billed count differs from the collected succeeded count",
    "price": "price difference: billed unit price differs from the book price",
    "discount": "invoice discount",
    "coupons": "coupons",
    "resource_plan": "resource plan deduction",
    "rounding": "rounding of bill lines and of the expected amounts",
    "not_splicing": "not splicing: other use of the same buckets (not claimed)",
    "coverage_gap_unclaimed": "OSS usage on coverage-gap days: uncollected splices or other use (not claimed)",
}
UNCLAIMED = ("not_splicing", "coverage_gap_unclaimed")
MAX_LISTED = 200


# ---------------------------------------------------------------------------------------------
# Inputs

def parse_tolerance(text) -> Decimal:
    """`1%` -> 0.01, `0.5 %` -> 0.005, `0.01` -> 0.01 (a fraction). Must be in [0, 1)."""
    if isinstance(text, Decimal):
        value = text
    else:
        t = str(text).strip()
        pct = t.endswith("%")
        try:
            value = Decimal(t[:-1].strip() if pct else t)
        except Exception:
            raise BadInput(f"expected a percentage like 1% or a fraction like 0.01, got {text!r}",
                           field="--tolerance") from None
        if not value.is_finite():
            raise BadInput(f"not a number: {text!r}", field="--tolerance")
        if pct:
            value = value / 100
    if value < 0 or value >= 1:
        raise BadInput(f"must be at least 0% and below 100%, got {text}", field="--tolerance")
    return value


def parse_floor(text) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except Exception:
        raise BadInput(f"expected an amount like 0.05, got {text!r}", field="--floor") from None
    if not value.is_finite() or value < 0:
        raise BadInput(f"expected a non-negative amount, got {text!r}", field="--floor")
    return value


def _days(month: str) -> list[date]:
    y, m = parse_month(month, field="--month")
    first = date(y, m, 1)
    ny, nm = add_months(y, m, 1)
    return [first + timedelta(days=i) for i in range((date(ny, nm, 1) - first).days)]


def _day_bounds(d: date) -> tuple[datetime, datetime]:
    s = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
    return s, s + timedelta(days=1)


def _money(v) -> str:
    return str(round_money(v))


def _pct(variance: Decimal, expected: Decimal) -> str | None:
    if not expected:
        return None
    return _money(Fraction(variance) / Fraction(expected) * 100)


def _q(v) -> str:
    return fmt_quantity(v if v is not None else 0)


# ---------------------------------------------------------------------------------------------
# Store facts

def _task_days(store, period, imm_start) -> dict:
    """Per UTC+8 day of task completion: tasks, succeeded, failed, succeeded before the cutover."""
    from costkit.engine.history import HOUR_US, _day
    sql = f"""SELECT {_day(f'epoch_us(end_time) // {HOUR_US}')} AS day, count(*),
                     count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed'),
                     count(*) FILTER (WHERE status = 'Succeeded' AND end_time < $imm)
              FROM tasks WHERE status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1
              GROUP BY ALL"""
    with store._lock:
        rows = store._con.execute(sql, {"p0": period.start, "p1": period.end, "imm": imm_start}).fetchall()
    return {r[0]: {"tasks": int(r[1]), "succeeded": int(r[2]), "failed": int(r[3]), "pre_cutover": int(r[4])}
            for r in rows}


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


def _coverage_days(store, days: list[date], task_days: dict, active: set) -> tuple:
    """(calendar rows, gaps inside the month, whether any collection window is recorded, the end of the
    latest collected window). `active`: the (region, project) pairs with tasks in the month."""
    first_s, _ = _day_bounds(days[0])
    _, last_e = _day_bounds(days[-1])
    cov = store.coverage(now=last_e)
    known = bool(len(cov)) and bool((cov["kind"] == "collected").any())
    windows = defaultdict(list)
    gaps = []
    for r in cov.to_dict("records"):
        key = (r["region"], r["project"])
        s = r["start"].to_pydatetime() if r["start"] is not None and str(r["start"]) != "NaT" else None
        e = r["end"].to_pydatetime()
        if r["kind"] == "collected":
            windows[key].append((s, e))
        else:
            s2 = max(s or first_s, first_s)
            e2 = min(e, last_e)
            if s2 < e2 and ((r["region"], r["project"]) in active or r["start"] is not None):
                gaps.append({"region": r["region"], "project": r["project"], "start": s2.isoformat(),
                             "end": e2.isoformat(), "note": r["note"]})
    # projects that matter this month: with tasks in it, or with a collected window overlapping it
    keys = set(active) | {k for k, spans in windows.items() if any(a < last_e and b > first_s for a, b in spans)}
    collected_until = max((b for spans in windows.values() for _, b in spans), default=None)
    rows = []
    for d in days:
        s, e = _day_bounds(d)
        key = d.isoformat()
        info = task_days.get(key, {})
        if known and windows:
            fracs = []
            for key2 in keys:
                spans = windows.get(key2, [])
                covered = sum(max(0.0, (min(e, b) - max(s, a)).total_seconds()) for a, b in spans)
                fracs.append(min(1.0, covered / 86400))
            state = "collected" if all(f >= 0.999999 for f in fracs) else (
                "gap" if all(f <= 0 for f in fracs) else "partial")
            share = min(fracs)
        else:
            state = "collected" if info.get("tasks") else "gap"
            share = 1.0 if info.get("tasks") else 0.0
        if state == "collected" and not info.get("tasks"):
            state = "no tasks"
        rows.append({"day": key, "weekday": d.strftime("%a"), "state": state, "tasks": info.get("tasks", 0),
                     "succeeded": info.get("succeeded", 0), "failed": info.get("failed", 0),
                     "covered_percent": f"{share * 100:.0f}"})
    return rows, gaps, known, None if collected_until is None else collected_until.astimezone(UTC).isoformat()


# ---------------------------------------------------------------------------------------------
# Prices

def with_bill_price(settings, frame, period, model, book, month, warnings):
    """Settings with an ImageSplicing entry at the bill's predominant price when the book has none."""
    from costkit.prices.learn import line_price

    at = max(period.start, model.imm_start)
    if at >= period.end or book.resolve(SPLICE, {}, at)[0] is not None:
        return settings
    weights: dict = defaultdict(Fraction)
    for rec in frame[frame["mapped"]].to_dict("records") if len(frame) else []:
        if rec["item"] != SPLICE:
            continue
        price, _how = line_price(rec)
        if price is not None:
            weights[price] += Fraction(rec.get("quantity") or 0) or Fraction(1)
    if not weights:
        return settings   # the engine will name the missing price (exit 2)
    price = max(weights.items(), key=lambda kv: (kv[1], kv[0]))[0]
    from costkit.sources.bills.mapping import to_decimal
    text = format(to_decimal(price * 1000, 12), "f")
    entry = {"item": SPLICE, "unit": "1000 calls", "price": text, "currency": book.currency,
             "effective_from": at.isoformat(), "confidence": "bill",
             "source": f"predominant ListPrice of the {month} bill (no book price for ImageSplicing)"}
    warnings.append(f"The price book has no {SPLICE} price for {month}: the expected side uses the bill's "
                    f"predominant price {text} {book.currency} per 1000 calls; supply the contract price with "
                    "--prices to audit the price itself.")
    splice = replace(settings.splice, prices=list(settings.splice.prices or []) + [entry])
    return replace(settings, splice=splice)


# ---------------------------------------------------------------------------------------------
# Reconciliation

class _Line:
    """One day x item: exact figures and the causes (exact Fractions)."""

    def __init__(self, day: str, item: str):
        self.day, self.item = day, item
        self.qb = Fraction(0)
        self.qe = Fraction(0)
        self.has_bill = False
        self.gross = Fraction(0)
        self.disc = Fraction(0)
        self.coup = Fraction(0)
        self.plan = Fraction(0)
        self.expected = ZERO
        self.price_term = Fraction(0)
        self.pr_weighted = Fraction(0)   # sum of Qb_i x Pr_i
        self.pr = None                   # reference (book) price per base unit
        self.list_prices = set()
        self.line_nos = []
        self.counts: dict = {}           # count causes (ImageSplicing): name -> count
        self.causes: dict = {}           # name -> Decimal (rounded)

    @property
    def net(self):
        return self.gross - self.disc - self.coup - self.plan


def _reference_price(book, item, selectors, day: date, imm_start):
    s, e = _day_bounds(day)
    at = s
    if item == SPLICE:
        at = max(s, imm_start) if e > imm_start else imm_start
    entry, _ = book.resolve(item, selectors, at)
    return None if entry is None or entry.price is None else entry.per_base_unit()


def _bill_lines(frame, lines, book, imm_start, days_set):
    from costkit.prices.learn import line_price
    mapped = frame[frame["mapped"]] if len(frame) else frame
    for rec in mapped.to_dict("records"):
        day = rec["billing_date"]
        key = (day.isoformat(), rec["item"])
        ln = lines.get(key) or lines.setdefault(key, _Line(*key))
        ln.has_bill = True
        q = Fraction(rec["quantity"]) if rec.get("quantity") is not None else Fraction(0)
        gross = rec.get("pretax_gross_amount")
        if gross is None:
            gross = rec.get("pretax_amount") or Decimal(0)
        ln.qb += q
        ln.gross += Fraction(gross)
        ln.disc += Fraction(rec.get("invoice_discount") or 0)
        ln.coup += Fraction(rec.get("deducted_by_coupons") or 0)
        ln.plan += Fraction(rec.get("deducted_by_resource_package") or 0)
        ln.line_nos.append(int(rec["line_no"]))
        if rec.get("list_price") is not None:
            from costkit.sources.bills.bills import decimal_text
            ln.list_prices.add(f"{decimal_text(rec['list_price'])} {rec.get('list_price_unit') or ''}".strip())
        pb, _how = line_price(rec)
        pr = _reference_price(book, rec["item"], rec.get("selectors") or {}, day, imm_start)
        if pr is None:
            pr = pb
        if pb is not None and pr is not None:
            ln.price_term += q * (pb - pr)
        if pr is not None:
            ln.pr_weighted += q * pr
            if ln.pr is None:
                ln.pr = pr


def _splice_counts(lines: dict, task_days: dict, gap_days: set, cutover_day: str | None,
                   utc_counts: dict | None = None):
    """Assign each ImageSplicing day's count difference to its causes (see the module doc). With
    `utc_counts` (the bill uses UTC days), the shift between UTC and UTC+8 days is the day boundary."""
    resid = {}
    for (day, item), ln in lines.items():
        if item != SPLICE:
            continue
        r = ln.qb - ln.qe
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
    for day, r in resid.items():
        if r:
            lines[(day, SPLICE)].counts["usage"] = r


def _explain(ln: _Line, gap_days: set) -> None:
    """Rounded causes of one line; `ln.variance` (claimed) and `ln.unclaimed` set."""
    net = round_money(ln.net)
    variance_all = net - ln.expected
    causes: dict = {}
    pr = ln.pr if ln.pr is not None else (Fraction(ln.expected) / ln.qe if ln.qe else Fraction(0))
    if ln.item == SPLICE:
        for name, n in ln.counts.items():
            causes[name] = round_money(n * pr)
        causes["price"] = round_money(ln.price_term)
        causes["discount"] = -round_money(ln.disc)
        causes["coupons"] = -round_money(ln.coup)
        causes["resource_plan"] = -round_money(ln.plan)
        claimed = variance_all
        unclaimed = ZERO
    else:
        # OSS: claim the splicing share of the billed line (all of it when the bill shows no more usage
        # than splicing causes); the rest of the bucket's charge is not claimed.
        share = ln.qe / ln.qb if ln.qb > ln.qe else Fraction(1)
        causes["price"] = round_money(ln.price_term * share)
        causes["discount"] = -round_money(ln.disc * share)
        causes["coupons"] = -round_money(ln.coup * share)
        causes["resource_plan"] = -round_money(ln.plan * share)
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


def _cause_list(causes: dict, counts: dict | None = None) -> list[dict]:
    order = list(CAUSES)
    out = []
    for k in sorted(causes, key=order.index):
        out.append({"cause": k, "amount": str(causes[k]), "claimed": k not in UNCLAIMED,
                    "quantity": None if not counts or k not in counts else _q(counts[k]),
                    "text": CAUSES[k]})
    return out


def _explanation(item_causes: list[dict], unit: str, currency: str) -> str:
    parts = []
    for c in item_causes:
        if c["cause"] == "rounding" and abs(Decimal(c["amount"])) <= Decimal("0.05"):
            continue
        q = f" ({c['quantity']} {unit})" if c.get("quantity") else ""
        parts.append(f"{c['text']}{q}: {c['amount']} {currency}")
    return "; ".join(parts) or "matches"


# ---------------------------------------------------------------------------------------------
# The model

def build_audit(store, month: str, *, tolerance=DEFAULT_TOLERANCE, floor=DEFAULT_FLOOR, prices_file=None,
                settings=None, source: str | None = None, mapping=None) -> dict:
    """The audit model of `month` (YYYY-MM, Asia/Shanghai): see the module doc."""
    from costkit.sources.bills.mapping import mapped_bill
    from costkit.sources.bills.bills import bill_sources
    from costkit.engine.history import _context, parse_period, price_history
    from costkit.model.settings import load_settings

    tolerance = parse_tolerance(tolerance)
    floor = parse_floor(floor)
    period = parse_period(month)
    days = _days(month)
    warnings: list[str] = []
    frame = mapped_bill(store, month, source=source, mapping=mapping)
    if frame.empty:
        raise BadInput(f"no bill lines stored for {month}; run `costkit import-bill FILE` or `costkit fetch-bill "
                       f"--month {month}` first", field="--month")
    settings = settings or load_settings(None)
    settings, book, model, _ = _context(store, period, settings, prices_file)
    settings = with_bill_price(settings, frame, period, model, book, month, warnings)
    settings, book, model, _ = _context(store, period, settings, prices_file)
    report = price_history(store, period, by="day", settings=settings, prices_file=prices_file)
    currency = report["currency"]
    bill_currencies = sorted({c for c in frame["currency"] if c})
    if bill_currencies and bill_currencies != [currency]:
        raise BadInput(f"the {month} bill is in {', '.join(bill_currencies)} but the price book (site "
                       f"{settings.site}) is in {currency}; use --site/settings for the bill's site",
                       field="--month")
    task_days = _task_days(store, period, model.imm_start)
    with store._lock:
        active = set(store._con.execute("SELECT DISTINCT region, project FROM tasks WHERE end_time >= ? AND "
                                        "end_time < ?", [period.start, period.end]).fetchall())
    calendar, gaps, coverage_known, collected_until = _coverage_days(store, days, task_days, active)
    if not coverage_known:
        warnings.append("No collection run or import window is recorded: coverage is unknown, so only days "
                        "without any collected task count as coverage gaps.")
    gap_days = {c["day"] for c in calendar if c["state"] in ("gap", "partial")}
    gap_days |= {d.isoformat() for d in days if not task_days.get(d.isoformat(), {}).get("tasks")}

    lines: dict = {}
    for g in report["groups"]:
        for item in ITEM_KEYS:
            amount = Decimal(g["items"][item])
            qty = Fraction(Decimal(g["quantities"][item]))
            if amount or qty:
                ln = lines.setdefault((g["group"], item), _Line(g["group"], item))
                ln.expected = amount
                ln.qe = qty
    # A product the bill does not contain at all (fetched with --product-code, say) cannot be audited.
    present = {str(x).strip().lower() for x in frame["product_code"] if x} | \
        {i.split(".")[0] for i in frame.loc[frame["mapped"], "item"] if i}
    not_audited: dict = {}
    for key in [k for k in lines if k[1].split(".")[0] not in present]:
        ln = lines.pop(key)
        na = not_audited.setdefault(ln.item, {"item": ln.item, "expected": ZERO, "expected_quantity": Fraction(0)})
        na["expected"] += ln.expected
        na["expected_quantity"] += ln.qe
    for na in not_audited.values():
        na["expected"], na["expected_quantity"] = str(na["expected"]), _q(na["expected_quantity"])
        na["reason"] = f"the {month} bill has no {na['item'].split('.')[0]} lines at all"
        warnings.append(f"Not audited: {na['item']} (expected {na['expected']} {currency}): {na['reason']} "
                        "(was it fetched or exported for one product only?).")
    _bill_lines(frame, lines, book, model.imm_start, {d.isoformat() for d in days})
    cut_day = model.imm_start.astimezone(SHANGHAI).date().isoformat()
    utc_counts = _utc_day_splices(store, period, model.imm_start)
    utc_days = _bill_uses_utc_days(lines, utc_counts, gap_days)
    if utc_days:
        warnings.append("The bill's daily ImageSplicing counts match UTC days (08:00 to 08:00 UTC+8) better than "
                        "UTC+8 billing days: the shift is shown as the day boundary.")
    _splice_counts(lines, task_days, gap_days, cut_day, utc_counts if utc_days else None)
    for ln in lines.values():
        _explain(ln, gap_days)

    # --- per item (month) --------------------------------------------------------------------
    items_present = [k for k in ITEM_KEYS if any(item == k for (_, item) in lines)]
    day_rows, item_rows = [], []
    out_of_tolerance = []
    for item in items_present:
        unit = ITEMS[item][0]
        agg = defaultdict(lambda: ZERO)
        counts = defaultdict(Fraction)
        qb = qe = Fraction(0)
        prices, lnos = set(), []
        bill_days = 0
        for (day, it), ln in sorted(lines.items()):
            if it != item:
                continue
            net = round_money(ln.net)
            row = {"day": day, "item": item, "unit": unit, "billed_quantity": _q(ln.qb),
                   "expected_quantity": _q(ln.qe), "quantity_delta": _q(ln.qb - ln.qe),
                   "billed_gross": _money(ln.gross), "invoice_discount": _money(ln.disc),
                   "deducted_by_coupons": _money(ln.coup), "deducted_by_resource_package": _money(ln.plan),
                   "billed_net": str(net), "expected": str(ln.expected), "variance": str(ln.variance),
                   "variance_pct": _pct(ln.variance, ln.expected), "not_splicing": str(ln.unclaimed),
                   "has_bill_line": ln.has_bill, "list_prices": sorted(ln.list_prices),
                   "causes": _cause_list(ln.causes, ln.counts)}
            day_rows.append(row)
            qb += ln.qb
            qe += ln.qe
            bill_days += ln.has_bill
            prices |= ln.list_prices
            lnos += ln.line_nos
            for k, v in (("billed_gross", round_money(ln.gross)), ("invoice_discount", round_money(ln.disc)),
                         ("deducted_by_coupons", round_money(ln.coup)),
                         ("deducted_by_resource_package", round_money(ln.plan)), ("billed_net", net),
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
        if not ok:
            out_of_tolerance.append(item)
        cl = _cause_list(causes, {k: v for k, v in counts.items() if v})
        book_entry = None
        for p in report["prices"]:
            if p["item"] == item or (item == "oss.EarlyDeletion" and p["item"] == "oss.Storage"):
                book_entry = book_entry or p
        item_rows.append({
            "item": item, "unit": unit, "description": ITEMS[item][2], "claim": "all" if item == SPLICE
            else "splicing share", "billed_quantity": _q(qb), "expected_quantity": _q(qe),
            "quantity_delta": _q(qb - qe),
            "list_prices": sorted(prices), "book_price": None if book_entry is None else
            f"{book_entry['price']} {book_entry['currency']}/{book_entry['unit']}",
            **{k: str(agg[k]) for k in ("billed_gross", "invoice_discount", "deducted_by_coupons",
                                        "deducted_by_resource_package", "billed_net", "expected", "variance",
                                        "not_splicing")},
            "variance_pct": _pct(agg["variance"], agg["expected"]),
            "limit": str(round_money(limit)), "status": "within tolerance" if ok else "out of tolerance",
            "within_tolerance": ok, "bill_days": bill_days, "bill_lines": len(lnos),
            "causes": cl, "explanation": _explanation(cl, unit, currency)})

    # --- totals and KPIs ---------------------------------------------------------------------
    def tot(key):
        return sum((Decimal(r[key]) for r in item_rows), ZERO)

    expected, variance, billed_net = tot("expected"), tot("variance"), tot("billed_net")
    attributable = expected + variance
    splice_row = next((r for r in item_rows if r["item"] == SPLICE), None)
    billed_splices = Fraction(Decimal(splice_row["billed_quantity"])) if splice_row else Fraction(0)
    finished = report["succeeded"] + report["failed"]
    unmapped = frame[~frame["mapped"]]
    kpis = {
        "billed_gross": str(tot("billed_gross")),
        "deductions": {"invoice_discount": str(tot("invoice_discount")),
                       "deducted_by_coupons": str(tot("deducted_by_coupons")),
                       "deducted_by_resource_package": str(tot("deducted_by_resource_package"))},
        "billed_net": str(billed_net), "billed_attributable": str(attributable), "not_splicing": str(tot("not_splicing")),
        "expected": str(expected), "variance": str(variance), "variance_pct": _pct(variance, expected),
        "direction": "none" if not variance else ("unfavourable" if variance > 0 else "favourable"),
        "billed_splices": _q(billed_splices), "billable_splices": report["billable_splices"],
        "tasks": report["tasks"], "succeeded": report["succeeded"], "failed": report["failed"],
        "failure_rate_pct": None if not finished else fmt_quantity(Fraction(report["failed"] * 100, finished), 2),
        "cost_per_splice": None if not billed_splices else fmt_quantity(Fraction(attributable) / billed_splices, 6),
        "cost_per_1000_splices": None if not billed_splices else
        _money(Fraction(attributable) / billed_splices * 1000),
        "expected_per_1000_splices": None if not report["billable_splices"] else
        _money(Fraction(expected) / report["billable_splices"] * 1000),
        "unmapped_gross": _money(sum((Fraction(v or 0) for v in unmapped["pretax_gross_amount"]), Fraction(0)))
        if len(unmapped) else "0.00",
    }

    # --- daily totals, band, anomalies --------------------------------------------------------
    daily = []
    anomalies = []
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
                              "causes": _cause_list({k: v for k, v in causes.items() if v})})

    # --- unmatched ---------------------------------------------------------------------------
    from costkit.sources.bills.bills import decimal_text
    bill_no_tasks = []
    for r in unmapped.to_dict("records"):
        bill_no_tasks.append({"kind": "unmapped bill line", "day": r["billing_date"].isoformat(),
                              "line_no": int(r["line_no"]), "product": r.get("product_name") or r.get("product_code"),
                              "billing_item": r.get("billing_item") or r.get("billing_item_code"),
                              "instance_id": r.get("instance_id"), "usage": decimal_text(r.get("usage")),
                              "usage_unit": r.get("usage_unit"),
                              "gross": decimal_text(r.get("pretax_gross_amount")), "note": r.get("note")})
    for r in day_rows:
        if r["has_bill_line"] and Decimal(r["expected_quantity"]) == 0 and Decimal(r["billed_quantity"]) > 0:
            bill_no_tasks.append({"kind": "no collected task", "day": r["day"], "line_no": None,
                                  "product": None, "billing_item": r["item"], "instance_id": None,
                                  "usage": r["billed_quantity"], "usage_unit": r["unit"], "gross": r["billed_gross"],
                                  "note": "the store has no task priced for this day and item"})
    tasks_no_bill = [{"day": r["day"], "item": r["item"], "expected_quantity": r["expected_quantity"],
                      "unit": r["unit"], "expected": r["expected"]}
                     for r in day_rows if not r["has_bill_line"] and Decimal(r["expected_quantity"]) > 0]
    samples = _sample_tasks(store, sorted({r["day"] for r in tasks_no_bill}))

    # --- header, sources, prices ------------------------------------------------------------
    srcs = bill_sources(store, month)
    used = srcs[srcs["source"] == frame["source"].iloc[0]]
    bill_info = [{"source": s["source"], "kind": s["kind"], "origin": s["origin"], "lines": int(s["line_count"]),
                  "imported_at": _iso(s["imported_at"]), "account_id": s.get("account_id"),
                  "encoding": s.get("encoding"), "header_language": s.get("header_language"),
                  "used": s["source"] == frame["source"].iloc[0]} for s in srcs.to_dict("records")]
    runs = _runs(store, period)
    cutoff_tasks = collected_until
    cutoff_bill = _iso(used.iloc[0]["imported_at"]) if len(used) else None
    y, m = parse_month(month)
    ny, nm = add_months(y, m, 1)
    final_at = datetime(ny, nm, 3, 12, tzinfo=SHANGHAI)
    if cutoff_bill and datetime.fromisoformat(cutoff_bill) < final_at:
        warnings.append(f"The bill was read at {cutoff_bill}, before it is final ({final_at.isoformat()}): "
                        "late lines may still change it.")
    if out_of_tolerance:
        warnings.insert(0, f"Out of tolerance: {', '.join(out_of_tolerance)}.")
    warnings += report["warnings"]
    row_counts = _row_counts(store, month, period)
    row_counts.update({"bill_lines": len(frame), "bill_lines_mapped": int(frame["mapped"].sum()),
                       "bill_lines_unmapped": len(unmapped)})
    return {
        "format_version": FORMAT_VERSION,
        "kind": "costkit audit",
        "month": month,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": "Asia/Shanghai"},
        "site": report["site"], "currency": currency,
        "price_book": {"name": book.name, "version": book.version},
        "costkit_version": __version__,
        "data_cutoff": {"tasks": cutoff_tasks, "bill": cutoff_bill},
        "tolerance": {"relative": str(tolerance), "relative_pct": fmt_quantity(Fraction(tolerance) * 100, 4),
                      "floor": str(floor),
                      "rule": "within tolerance when |variance| <= max(relative x |expected|, floor)"},
        "status": "out of tolerance" if out_of_tolerance else "within tolerance",
        "out_of_tolerance": out_of_tolerance,
        "not_audited": list(not_audited.values()),
        "kpis": kpis,
        "items": item_rows,
        "days": day_rows,
        "daily": daily,
        "band": {"rule": "expected +/- max(relative tolerance x expected, floor), per day, all items; a day is an "
                         "anomaly when its attributable cost (expected + claimed variance) is outside"},
        "anomalies": anomalies,
        "coverage": {"known": coverage_known, "calendar": calendar, "gaps": gaps},
        "unmatched": {"bill_lines_without_tasks": bill_no_tasks[:MAX_LISTED],
                      "bill_lines_without_tasks_total": len(bill_no_tasks),
                      "tasks_without_bill_line": tasks_no_bill[:MAX_LISTED],
                      "tasks_without_bill_line_total": len(tasks_no_bill), "sample_tasks": samples},
        "trend": _trend(store, month, settings, prices_file, report),
        "top": _top(store, period, settings, prices_file),
        "sources": {"bills": bill_info, "runs": runs[-MAX_LISTED:], "runs_total": len(runs),
                    "row_counts": row_counts, "mapping": None if mapping is None else str(mapping),
                    "settings_file": settings.path, "prices_file": None if prices_file is None else str(prices_file)},
        "prices": report["prices"],
        "billed_prices": sorted({p for r in item_rows for p in r["list_prices"]}),
        "assumptions": report["assumptions"],
        "warnings": warnings,
    }


def _iso(v) -> str | None:
    if v is None or str(v) == "NaT":
        return None
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return v.astimezone(UTC).isoformat()


def _runs(store, period) -> list[dict]:
    df = store.runs_frame()
    out = []
    for r in df.to_dict("records"):
        ws, we = _iso(r.get("window_start")), _iso(r.get("window_end"))
        if we is not None and ws is not None and (datetime.fromisoformat(we) < period.start
                                                  or datetime.fromisoformat(ws) >= period.end + timedelta(days=2)):
            continue
        out.append({"id": int(r["id"]), "kind": r["kind"], "region": r["region"], "project": r["project"],
                    "started_at": _iso(r.get("started_at")), "window_start": ws, "window_end": we,
                    "pages": None if r.get("pages") is None or r.get("pages") != r.get("pages") else int(r["pages"]),
                    "new": _int(r.get("new")), "updated": _int(r.get("updated")),
                    "unchanged": _int(r.get("unchanged")), "ok": bool(r.get("ok")),
                    "errors": len(r.get("errors") or [])})
    return out


def _int(v):
    try:
        return None if v is None or v != v else int(v)
    except (TypeError, ValueError):
        return None


def _row_counts(store, month, period) -> dict:
    with store._lock:
        con = store._con
        total = con.execute("SELECT count(*) FROM tasks").fetchone()[0]
        in_month = con.execute("SELECT count(*) FROM tasks WHERE end_time >= ? AND end_time < ?",
                               [period.start, period.end]).fetchone()[0]
        objects = con.execute("SELECT count(*) FROM objects").fetchone()[0]
        buckets = con.execute("SELECT count(*) FROM buckets").fetchone()[0]
        imports = con.execute("SELECT count(*) FROM imports").fetchone()[0]
    return {"tasks_total": int(total), "tasks_in_month": int(in_month), "objects": int(objects),
            "buckets": int(buckets), "task_imports": int(imports)}


def _sample_tasks(store, days: list[str], per_day: int = 3) -> list[dict]:
    """A few stored tasks of the days that have expected charges but no bill line (escaped in the report)."""
    out = []
    for d in days[:20]:
        s, e = _day_bounds(date.fromisoformat(d))
        with store._lock:
            rows = store._con.execute(
                "SELECT project, task_id, status, target_uri, tags, user_data FROM tasks WHERE end_time >= ? "
                "AND end_time < ? ORDER BY end_time, task_id LIMIT ?", [s, e, per_day]).fetchall()
        for p, t, st, uri, tags, ud in rows:
            out.append({"day": d, "project": p, "task_id": t, "status": st, "target_uri": uri, "tags": tags,
                        "user_data": ud})
    return out


def _trend(store, month: str, settings, prices_file, report: dict) -> list[dict]:
    """Unit cost per month in the store (up to the audited month, at most 12): the expected cost per 1,000
    billable splices (all items, and ImageSplicing alone) and, where a bill is stored, the billed
    ImageSplicing net per 1,000 billed splices (OSS bill lines cover whole buckets, so they are left out)."""
    from costkit.sources.bills.mapping import mapped_bill
    from costkit.engine.history import HOUR_US, parse_period, price_history
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
                row["expected_per_1000"] = _money(Fraction(Decimal(rep["total"])) / n * 1000)
                row["expected_splicing_per_1000"] = _money(Fraction(Decimal(rep["items"][SPLICE])) / n * 1000)
        except BadInput as e:
            row["note"] = f"not priced: {str(e)[:160]}"
        fr = mapped_bill(store, m)
        if len(fr):
            mp = fr[fr["mapped"] & (fr["item"] == SPLICE)]
            net = sum((Fraction(v) for v in mp["net_amount"] if v is not None), Fraction(0))
            calls = sum((Fraction(q) for q in mp["quantity"] if q is not None), Fraction(0))
            row.update(billed_splicing_net=_money(net), billed_splices=_q(calls))
            if calls:
                row["billed_splicing_per_1000"] = _money(net / calls * 1000)
        out.append(row)
    return out


def _top(store, period, settings, prices_file, n: int = 10) -> dict:
    """Expected cost of the month by project and by tag (key=value), largest first."""
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


# ---------------------------------------------------------------------------------------------
# Renderings

CSV_COLUMNS = ["scope", "day", "item", "unit", "billed_quantity", "expected_quantity", "quantity_delta",
               "billed_gross", "invoice_discount", "deducted_by_coupons", "deducted_by_resource_package",
               "billed_net", "expected", "variance", "variance_pct", "not_splicing", "status", "causes"]


def audit_csv(model: dict) -> str:
    """One row per item for the month (scope=month) and per day x item (scope=day); causes as k=amount."""
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def causes(r):
        return "; ".join(f"{c['cause']}={c['amount']}" for c in r["causes"])

    for r in model["items"]:
        w.writerow(["month", model["month"], r["item"], r["unit"], *[r[k] for k in CSV_COLUMNS[4:16]],
                    r["status"], causes(r)])
    for r in model["days"]:
        w.writerow(["day", r["day"], r["item"], r["unit"], *["" if r[k] is None else r[k] for k in CSV_COLUMNS[4:16]],
                    "", causes(r)])
    return buf.getvalue()


def _f(text) -> float:
    """A decimal string as a float, for chart geometry only."""
    return float(Decimal(text)) if text not in (None, "") else 0.0


def audit_charts(model: dict) -> dict:
    """PNG data URIs: daily expected vs billed, the unit-cost trend, top projects and tags."""
    from costkit.outputs import charts
    cur = model["currency"]
    days = [d["day"][5:] for d in model["daily"]]
    daily = charts.line_chart(days, {
        "expected": [_f(d["expected"]) for d in model["daily"]],
        "billed, attributable to splicing": [_f(d["attributable"]) for d in model["daily"]],
        "billed net (whole lines)": [_f(d["billed_net"]) for d in model["daily"]],
    }, ylabel=f"Cost per day ({cur})") if days else None
    tr = model["trend"]
    series = {"expected, all items": "expected_per_1000", "expected, ImageSplicing": "expected_splicing_per_1000",
              "billed, ImageSplicing net": "billed_splicing_per_1000"}
    trend = charts.line_chart([t["month"] for t in tr], {
        label: [None if t[key] is None else _f(t[key]) for t in tr] for label, key in series.items()
    }, ylabel=f"Cost per 1,000 splices ({cur})") if tr else None
    top = {}
    for key in ("projects", "tags"):
        rows = model["top"][key]
        top[key] = charts.stacked_bars([r["label"] for r in rows], {"expected cost": [_f(r["amount"]) for r in rows]},
                                       ylabel=f"Expected cost ({cur})") if rows else None
    return {"daily": daily, "trend": trend, "projects": top["projects"], "tags": top["tags"]}


def render_audit_html(model: dict, *, generated_at: str | None = None) -> str:
    """The audit report: one self-contained HTML file (inline CSS and PNG charts; everything escaped)."""
    from costkit.outputs.html import _stylesheet, generated_at_now, render_html
    weeks, week = [], []
    calendar = model["coverage"]["calendar"]
    if calendar:
        lead = date.fromisoformat(calendar[0]["day"]).weekday()
        week = [None] * lead
        for c in calendar:
            week.append(c)
            if len(week) == 7:
                weeks.append(week)
                week = []
        if week:
            weeks.append(week + [None] * (7 - len(week)))
    context = {"css": _stylesheet("audit.css"), "model": model, "m": model, "k": model["kpis"], "cur": model["currency"],
               "charts": audit_charts(model), "weeks": weeks,
               "generated_at": generated_at or generated_at_now(), "costkit_version": model["costkit_version"]}
    return render_html("audit.html.j2", context)


def render_audit(model: dict, fmt: str, *, generated_at: str | None = None) -> str:
    from costkit.outputs.text import to_json
    if fmt == "json":
        return to_json(model)
    if fmt == "csv":
        return audit_csv(model)
    if fmt == "html":
        return render_audit_html(model, generated_at=generated_at)
    raise BadInput(f"unknown format {fmt!r} (html, json or csv)", field="--format")


__all__ = ["build_audit", "render_audit", "render_audit_html", "audit_csv", "parse_tolerance", "parse_floor", "FORMAT_VERSION",
           "CAUSES", "DEFAULT_TOLERANCE", "DEFAULT_FLOOR"]
