"""Budget forecasts: a scenario priced month by month (Asia/Shanghai months, hourly price changes).

`build_forecast(scenario, book)` returns one model (a plain dict, `FORMAT_VERSION`); the table, JSON,
CSV and HTML renderings all come from it. Money in the model is decimal strings with 2 places.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from costkit.core.version import __version__
from costkit.core.money import ZERO, exact_decimals, fmt_quantity, round_half_up_int, round_money, to_fraction
from costkit.prices.book import ITEM_KEYS, ITEMS, PriceBook, load_price_book
from costkit.prices.pricer import Pricer
from costkit.model.scenario import FIELDS, REQUEST_DEFAULTS, USAGE_DEFAULTS, Scenario
from costkit.core.timeutil import add_months, hours_between, month_label, month_start
from costkit.model.usage import splice_usage
from costkit.engine.profile import CONFIDENT, kind_profiles, plain, splice_profile

FORMAT_VERSION = 1


class _Horizon:
    """Hour arithmetic over the horizon: month offsets and integer prefix sums of the hourly weights."""

    def __init__(self, scn: Scenario):
        y, m = scn.start
        self.t0 = month_start(y, m)
        self.labels, self.bounds = [], [0]
        for i in range(scn.months):
            yy, mm = add_months(y, m, i)
            self.labels.append(month_label(yy, mm))
            self.bounds.append(hours_between(self.t0, month_start(*add_months(y, m, i + 1))))
        self.hours = self.bounds[-1]
        if scn.daily_profile:
            scale = 10 ** max(-w.as_tuple().exponent if w.as_tuple().exponent < 0 else 0 for w in scn.daily_profile)
            day = [int(w * scale) for w in scn.daily_profile]
        else:
            day = [1] * 24
        w1, w2 = [0], [0]
        for k in range(self.hours):  # the horizon starts at 00:00, so hour k is hour-of-day k % 24
            w2.append(w2[-1] + w1[-1])
            w1.append(w1[-1] + day[k % 24])
        w2.append(w2[-1] + w1[-1])
        self.w1, self.w2 = w1, w2

    def instant(self, k: int):
        return self.t0 + timedelta(hours=k)

    def hour_index(self, t) -> int:
        """The first hour whose start is at or after instant t."""
        return math.ceil((t - self.t0) / timedelta(hours=1))


class _Tasks:
    """Cumulative tasks completing over the horizon (exact), for a per-month task count."""

    def __init__(self, hz: _Horizon, counts: list[int]):
        self.hz = hz
        self.rate, self.before = [], [Fraction(0)]
        for i, n in enumerate(counts):
            weight = hz.w1[hz.bounds[i + 1]] - hz.w1[hz.bounds[i]]
            self.rate.append(Fraction(n, weight))
            self.before.append(self.before[-1] + n)

    def _month(self, k):
        lo, hi = 0, len(self.rate) - 1
        b = self.hz.bounds
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if b[mid] <= k:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def cum(self, k: int) -> Fraction:
        """Tasks completing in hours [0, k)."""
        if k <= 0:
            return Fraction(0)
        if k >= self.hz.hours:
            return self.before[-1]
        i = self._month(k)
        a = self.hz.bounds[i]
        return self.before[i] + self.rate[i] * (self.hz.w1[k] - self.hz.w1[a])

    def between(self, x: int, y: int) -> Fraction:
        return self.cum(y) - self.cum(x)

    def sum_cum(self, p: int, q: int) -> Fraction:
        """Sum of cum(k) for k in [p, q)."""
        total = Fraction(0)
        hz = self.hz
        if p < 0:
            p = min(0, q) if q < 0 else 0
        if q > hz.hours:
            total += (q - max(p, hz.hours)) * self.before[-1]
            q = hz.hours
        k = p
        while k < q:
            i = self._month(k)
            a, b = hz.bounds[i], hz.bounds[i + 1]
            end = min(q, b)
            base = self.before[i] - self.rate[i] * hz.w1[a]
            total += (end - k) * base + self.rate[i] * (hz.w2[end] - hz.w2[k])
            k = end
        return total


def task_counts(first, growth, months: int) -> list[int]:
    """Tasks per month: the first month's count grown by `growth` compounded, rounded half-up."""
    g = 1 + to_fraction(growth)
    return [round_half_up_int(to_fraction(first) * g**i) for i in range(months)]


def _price_months(scn: Scenario, book: PriceBook, hz: _Horizon, **over):
    """Exact amounts and quantities per (month, item); returns (amounts, quantities, splices, pricer, usage)."""
    counts = over.get("counts")
    if counts is None:
        counts = task_counts(over.get("tasks_per_month", scn.tasks_per_month),
                             over.get("monthly_growth", scn.monthly_growth), scn.months)
    kinds, ok, usage = _kinds(scn, hz, counts, over)
    cutover = hz.hour_index(scn.imm_billing_start)
    pricer = Pricer(book)
    n = scn.months
    amounts = [{k: Fraction(0) for k in ITEM_KEYS} for _ in range(n)]
    qty = [{k: Fraction(0) for k in ITEM_KEYS} for _ in range(n)]
    splices = [Fraction(0)] * n
    cut_points = {item: sorted({hz.hour_index(t) for t in book.boundaries(item)} | {cutover}) for item in ITEM_KEYS}

    def segments(i, item):
        a, b = hz.bounds[i], hz.bounds[i + 1]
        pts = [a] + [p for p in cut_points[item] if a < p < b] + [b]
        return zip(pts, pts[1:])

    def add(i, item, selectors, x, q):
        qty[i][item] += q
        amounts[i][item] += pricer.amount(item, selectors, hz.instant(x), q)

    for i in range(n):
        for tasks, sources, kusage, kok, splice_share in kinds:
            L = kusage.retention_hours
            for item, (sel, per) in sources:
                for x, y in segments(i, item):
                    add(i, item, sel, x, per * tasks.between(x, y))
            for item, (sel, per) in kusage.per_succeeded.items():
                for x, y in segments(i, item):
                    add(i, item, sel, x, per * kok * tasks.between(x, y))
            for x, y in segments(i, "imm.ImageSplicing"):
                if x >= cutover:
                    q = splice_share * tasks.between(x, y)
                    splices[i] += q
                    add(i, "imm.ImageSplicing", {}, x, q)
            gb = kusage.target_gb * kok
            for x, y in segments(i, "oss.Storage"):
                alive = tasks.sum_cum(x + 1, y + 1)
                if L is not None:
                    alive -= tasks.sum_cum(x + 1 - L, y + 1 - L)
                add(i, "oss.Storage", kusage.target_selectors, x, gb * alive)
            if kusage.early_deletion_hours:
                for x, y in segments(i, "oss.EarlyDeletion"):
                    deleted = tasks.between(x - L, y - L)
                    add(i, "oss.EarlyDeletion", kusage.target_selectors, x,
                        gb * kusage.early_deletion_hours * deleted)
    return counts, ok, amounts, qty, splices, pricer, usage


def _kinds(scn: Scenario, hz: _Horizon, counts, over):
    """What `_price_months` prices: [(tasks, per-task source items, usage, succeeded share, billed splice
    share)], one entry without `mix:`, one per kind with it (its share of every month's count); plus the
    overall succeeded share and a usage whose warnings are every kind's."""
    if not scn.mix:
        usage = splice_usage(splice_profile(scn, **over))
        fail = min(to_fraction(over.get("failure_rate", scn.failure_rate)), Fraction(1))
        ok = (1 - fail) if usage.tasks_can_succeed else Fraction(0)
        splice_share = ok if usage.splice_item_on_success else Fraction(1)
        return [(_Tasks(hz, counts), list(usage.per_task.items()), usage, ok, splice_share)], ok, usage
    kinds, total_ok, warnings = [], Fraction(0), []
    for share, profiles, fail in kind_profiles(scn, **over):
        usages = [splice_usage(p) for p in profiles]
        usage = usages[0]
        can = all(u.tasks_can_succeed for u in usages)
        ok = (1 - min(fail, Fraction(1))) if can else Fraction(0)
        splice_share = ok if usage.splice_item_on_success else Fraction(1)
        sources = [kv for u in usages for kv in u.per_task.items()]
        kinds.append((_Tasks(hz, [c * share for c in counts]), sources, usage, ok, splice_share))
        total_ok += share * ok
        warnings += [w for u in usages for w in u.warnings if w not in warnings]
    return kinds, total_ok, replace(kinds[0][2], warnings=warnings)


def _assumptions(scn: Scenario) -> list[dict]:
    out = []
    for key, (_, _, _, desc) in FIELDS.items():
        if key in ("prices", "usage", "requests", "name", "mix", "calibration"):
            continue
        value = getattr(scn, key)
        if key == "start":
            value = month_label(*value)
        out.append({"key": key, "value": plain(value), "defaulted": key not in scn.given, "description": desc})
    out += _mix_assumptions(scn)
    for k, v in scn.requests.items():
        out.append({"key": f"requests.{k}", "value": plain(v), "defaulted": v == REQUEST_DEFAULTS[k] and (
            "requests" not in scn.given), "description": "OSS requests per source or per task"})
    descs = {"charge_failed_splices": "failed splices are billed by IMM (unknown; default not billed)",
             "imm_billing_start": "ImageSplicing billed for splices completing at or after this instant",
             "min_billable_kb": "minimum billable object size for IA and colder classes, KB",
             "min_storage_days": "minimum storage duration by class, days"}
    for k, v in scn.usage.items():
        out.append({"key": f"usage.{k}", "value": plain(v), "defaulted": v == USAGE_DEFAULTS[k],
                    "description": descs[k]})
    out += [
        {"key": "units", "value": "GB = 1024^3 bytes, MB = 1024^2 bytes", "defaulted": True,
         "description": "size units"},
        {"key": "completion", "value": "daily_profile" if scn.daily_profile else "uniform over the hours of each month",
         "defaulted": scn.daily_profile is None, "description": "when tasks complete (Asia/Shanghai)"},
        {"key": "hourly_pricing", "value": "an hour is priced at the price in force at its start", "defaulted": True,
         "description": "price changes take effect at hour boundaries"},
        {"key": "storage", "value": "targets stored from their completion hour for retention hours; "
                                    "storage stops at the end of the horizon", "defaulted": True,
         "description": "target storage accrual"},
    ]
    return out


def _mix_assumptions(scn: Scenario) -> list[dict]:
    """Rows for `mix:` (one per kind) and `calibration:` (what was measured; unmeasured keys flagged)."""
    out = []
    for i, k in enumerate(scn.mix or []):
        vals = {**plain(k.values), **({"source_classes": [plain(vars(g)) for g in k.source_classes]}
                                      if k.source_classes else {})}
        out.append({"key": f"mix[{i}]", "value": {"name": k.name, "share": plain(k.share), **vals},
                    "defaulted": False, "description": "task kind: its share of the volume; keys not given "
                                                       "take the scenario's"})
    cal = scn.calibration
    if cal:
        out.append({"key": "calibration", "value": f"measured from {cal['tasks']} tasks, {cal['window']}",
                    "defaulted": False, "description": cal["note"]})
        for key in cal["unmeasured"]:
            out.append({"key": key, "value": "not measured", "defaulted": True,
                        "description": "not measured from the history: a documented default (see the "
                                       "scenario's comment)"})
    return out


def _money(f) -> str:
    return str(round_money(f))


SENSITIVITY_DRIVERS = ("tasks_per_month", "monthly_growth", "failure_rate", "sources_per_task", "source_size_mb",
                       "target_size_mb", "target_retention_days", "accelerated_gb_per_task")


def _total_for(scn, book, hz, **over) -> Decimal | None:
    *_, amounts, _, _, pricer, _ = _price_months(scn, book, hz, **over)
    if pricer.missing:
        return None
    return sum((round_money(a) for month in amounts for a in month.values()), ZERO)


def build_forecast(scn: Scenario, book: PriceBook, *, sensitivity: bool = True, counts=None) -> dict:
    """The forecast model (see module doc). Raises BadInput naming every missing price. `counts` (tasks per
    month, whole numbers) replaces the scenario's volume (a trend); there is no sensitivity then."""
    with exact_decimals():  # a valid scenario never overflows the 28-digit default context
        return _build_forecast(scn, book, sensitivity=sensitivity and counts is None, counts=counts)


def month_totals(scn: Scenario, book: PriceBook, counts: list[int]) -> list[Decimal]:
    """The total of each month (sum of its rounded items) when the months hold `counts` tasks."""
    with exact_decimals():
        *_, amounts, _, _, pricer, _ = _price_months(scn, book, _Horizon(scn), counts=counts)
    pricer.raise_if_missing()
    return [sum((round_money(a) for a in month.values()), ZERO) for month in amounts]


def _build_forecast(scn: Scenario, book: PriceBook, *, sensitivity: bool, counts=None) -> dict:
    hz = _Horizon(scn)
    counts, ok, amounts, qty, splices, pricer, usage = _price_months(scn, book, hz, **(
        {"counts": counts} if counts is not None else {}))
    pricer.raise_if_missing()
    months = []
    item_totals = {k: ZERO for k in ITEM_KEYS}
    total = ZERO
    for i, label in enumerate(hz.labels):
        items = {k: round_money(amounts[i][k]) for k in ITEM_KEYS}
        month_total = sum(items.values(), ZERO)
        for k, v in items.items():
            item_totals[k] += v
        total += month_total
        months.append({
            "month": label, "tasks": counts[i], "succeeded": fmt_quantity(counts[i] * ok),
            "billable_splices": fmt_quantity(splices[i]),
            "items": {k: str(v) for k, v in items.items()},
            "quantities": {k: {"quantity": fmt_quantity(qty[i][k]), "unit": ITEMS[k][0]} for k in ITEM_KEYS},
            "total": str(month_total)})
    succeeded = sum(counts) * ok
    warnings = list(usage.warnings)
    prices = [e.to_dict() for e in pricer.used_entries()]
    for e in pricer.used_entries():
        if e.confidence not in CONFIDENT and e.price:
            sel = ", ".join(f"{k}={v}" for k, v in e.selectors)
            warnings.append(f"{e.item}{' (' + sel + ')' if sel else ''} is priced at {e.price} {e.currency} per "
                            f"{e.unit} with confidence '{e.confidence}' ({e.source}); confirm it before relying "
                            "on the figure.")
    if scn.accelerated_gb_per_task:
        warnings.append("Transfer acceleration is charged on top of outbound traffic (NetworkOut), which this "
                        "model does not price.")
    if scn.target_retention_days is None:
        warnings.append("target_retention_days is not set: targets are never deleted, so storage grows "
                        "through the horizon.")
    model = {
        "format_version": FORMAT_VERSION,
        "costkit_version": __version__,
        "scenario": {"name": scn.name, "site": scn.site, "region": scn.region, "start": month_label(*scn.start),
                     "months": scn.months},
        "site": scn.site, "currency": scn.currency,
        "price_book": {"name": book.name, "version": book.version},
        "item_keys": list(ITEM_KEYS),
        "months": months,
        "items": {k: str(v) for k, v in item_totals.items()},
        "total": str(total),
        "average_month": _money(Fraction(total) / scn.months),
        "tasks": sum(counts),
        "billable_splices": fmt_quantity(sum(splices)),
        "succeeded": fmt_quantity(succeeded),
        "cost_per_1000_splices": _money(Fraction(total) * 1000 / succeeded) if succeeded else None,
        "prices": prices,
        "assumptions": _assumptions(scn),
        "warnings": warnings,
        "sensitivity": _sensitivity(scn, book, hz, total) if sensitivity else [],
    }
    return model


def _sensitivity(scn, book, hz, base_total) -> list[dict]:
    """Total when each driver moves -20% and +20% (others at base), largest swing first."""
    rows = []
    for d in SENSITIVITY_DRIVERS:
        base = getattr(scn, d)
        if base is None or base == 0:
            continue
        lo, hi = base * Decimal("0.8"), base * Decimal("1.2")
        if d == "failure_rate":
            hi = min(hi, Decimal(1))
        t_lo = _total_for(scn, book, hz, **{d: lo})
        t_hi = _total_for(scn, book, hz, **{d: hi})
        if t_lo is None or t_hi is None:
            continue
        rows.append({"driver": d, "base_value": fmt_quantity(base), "low_value": fmt_quantity(lo),
                     "high_value": fmt_quantity(hi), "low_total": str(t_lo), "high_total": str(t_hi),
                     "base_total": str(base_total)})
    rows.sort(key=lambda r: abs(Decimal(r["high_total"]) - Decimal(r["low_total"])), reverse=True)
    return rows


def estimate(scenario, prices_file=None, *, sensitivity: bool = True) -> dict:
    """Forecast a scenario (a Scenario or a path); returns the model dict (see `build_forecast`)."""
    from costkit.model.scenario import load_scenario
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    book = load_price_book(scn.site, prices_file=prices_file, scenario_prices=scn.prices, scenario_path=scn.path)
    return build_forecast(scn, book, sensitivity=sensitivity)


def months_frame(model: dict):
    """The month x item table of a forecast model as a pandas DataFrame of Decimals (plus total)."""
    import pandas as pd
    rows = [{"month": m["month"], "tasks": m["tasks"], "billable_splices": Decimal(m["billable_splices"]),
             **{k: Decimal(v) for k, v in m["items"].items()}, "total": Decimal(m["total"])} for m in model["months"]]
    return pd.DataFrame(rows)


__all__ = ["FORMAT_VERSION", "build_forecast", "estimate", "months_frame", "month_totals", "task_counts"]
