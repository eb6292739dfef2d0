"""Budget forecasts: a scenario priced month by month (Asia/Shanghai months, hourly price changes).

`build_forecast(scenario, book)` returns one model (a plain dict, `FORMAT_VERSION`); the table, JSON,
CSV and HTML renderings all come from it. Money in the model is decimal strings with 2 places.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from costkit.core.version import __version__
from costkit.core.money import ZERO, exact_decimals, fmt_quantity, round_half_up_int, round_money, to_fraction
from costkit.prices.book import ITEM_KEYS, ITEMS, PRICE_ALIAS, PriceBook, load_price_book
from costkit.prices.options import parse_price_options, usual_unit
from costkit.prices.pricer import Pricer
from costkit.model.scenario import FIELDS, REQUEST_DEFAULTS, USAGE_DEFAULTS, Scenario
from costkit.core.timeutil import add_months, hours_between, month_label, month_start
from costkit.model.usage import splice_usage
from costkit.engine.profile import CONFIDENT, kind_profiles, mix_assumptions, plain, splice_profile
from costkit.engine.budget import check_budget, parse_budget
from costkit.engine.forecast_notes import forecast_warnings, missing_prices
from costkit.engine.forecast_sweep import Knob, Priced, price_drivers, sweep

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


class _Whole:
    """Whole counts from the continuous completion curve: tasks (and succeeded tasks) completing in [x, y),
    as differences of the rounded cumulative count, so the counts of adjacent hours, segments and months are
    whole and add up exactly to the month's count."""

    def __init__(self, tasks: _Tasks, ok: Fraction):
        self.tasks, self.ok = tasks, ok

    def all(self, x: int, y: int) -> int:
        return round_half_up_int(self.tasks.cum(y)) - round_half_up_int(self.tasks.cum(x))

    def succeeded(self, x: int, y: int) -> int:
        c = self.tasks.cum
        return round_half_up_int(self.ok * c(y)) - round_half_up_int(self.ok * c(x))


@dataclass
class _MonthsPriced:
    """Exact amounts and quantities per (month, item) of a scenario, and the knobs that price them."""

    counts: list[int]
    succeeded: list[int]
    amounts: list[dict]
    qty: list[dict]
    unpriced: list[dict]
    splices: list[int]
    pricer: Pricer
    usage: object
    knobs: dict


def _price_months(scn: Scenario, book: PriceBook, hz: _Horizon, **over) -> _MonthsPriced:
    """Price every month and item of `scn`; quantities without a price go to `unpriced` (never priced)."""
    counts = over.get("counts")
    if counts is None:
        counts = task_counts(over.get("tasks_per_month", scn.tasks_per_month),
                             over.get("monthly_growth", scn.monthly_growth), scn.months)
    kinds, usage = _kinds(scn, hz, counts, over)
    cutover = hz.hour_index(scn.imm_billing_start)
    pricer = Pricer(book)
    n = scn.months
    amounts = [{k: Fraction(0) for k in ITEM_KEYS} for _ in range(n)]
    qty = [{k: Fraction(0) for k in ITEM_KEYS} for _ in range(n)]
    unpriced = [{} for _ in range(n)]
    splices = [0] * n
    knobs: dict = {}
    cut_points = {item: sorted({hz.hour_index(t) for t in book.boundaries(item)} | {cutover}) for item in ITEM_KEYS}

    def segments(i, item):
        a, b = hz.bounds[i], hz.bounds[i + 1]
        pts = [a] + [p for p in cut_points[item] if a < p < b] + [b]
        return zip(pts, pts[1:])

    def add(i, item, selectors, x, q):
        qty[i][item] += q
        if not q:
            return
        entry = pricer.entry(item, selectors, hz.instant(x))
        key = (entry.item, entry.selectors, id(entry)) if entry else \
            (PRICE_ALIAS.get(item, item), tuple(sorted(selectors.items())), None)
        if key not in knobs:
            knobs[key] = Knob(item=key[0], selectors=key[1], unit=entry.unit if entry else usual_unit(item),
                              base=entry.price if entry else None, confidence=entry.confidence if entry else None,
                              months=n, layer=entry.layer if entry else None, source=entry.source if entry else None)
        knobs[key].add(i, item, q)
        if entry is None:
            unpriced[i][item] = unpriced[i].get(item, Fraction(0)) + q
            t = hz.instant(x)
            knobs[key].since = t if knobs[key].since is None else min(knobs[key].since, t)
        else:
            amounts[i][item] += q * entry.per_base_unit()

    for i in range(n):
        for tasks, whole, sources, kusage, kok in kinds:
            L = kusage.retention_hours
            spliced = whole.succeeded if kusage.splice_item_on_success else whole.all
            for item, (sel, per) in sources:
                for x, y in segments(i, item):
                    add(i, item, sel, x, per * whole.all(x, y))
            for item, (sel, per) in kusage.per_succeeded.items():
                for x, y in segments(i, item):
                    add(i, item, sel, x, per * whole.succeeded(x, y))
            for x, y in segments(i, "imm.ImageSplicing"):
                if x >= cutover:
                    q = spliced(x, y)
                    splices[i] += q
                    add(i, "imm.ImageSplicing", {}, x, Fraction(q))
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
    succeeded = [sum(k[1].succeeded(hz.bounds[i], hz.bounds[i + 1]) for k in kinds) for i in range(n)]
    return _MonthsPriced(counts, succeeded, amounts, qty, unpriced, splices, pricer, usage, knobs)


def _kinds(scn: Scenario, hz: _Horizon, counts, over):
    """[(tasks, whole counts, per-task source items, usage, succeeded share)]: one without `mix:`, one per kind
    (its share of each month's count) with it; and a usage carrying every kind's warnings."""
    if not scn.mix:
        usage = splice_usage(splice_profile(scn, **over))
        fail = min(to_fraction(over.get("failure_rate", scn.failure_rate)), Fraction(1))
        ok = (1 - fail) if usage.tasks_can_succeed else Fraction(0)
        tasks = _Tasks(hz, counts)
        return [(tasks, _Whole(tasks, ok), list(usage.per_task.items()), usage, ok)], usage
    kinds, warnings = [], []
    for share, profiles, fail in kind_profiles(scn, **over):
        usages = [splice_usage(p) for p in profiles]
        ok = (1 - min(fail, Fraction(1))) if all(u.tasks_can_succeed for u in usages) else Fraction(0)
        tasks = _Tasks(hz, [c * share for c in counts])
        sources = [kv for u in usages for kv in u.per_task.items()]
        kinds.append((tasks, _Whole(tasks, ok), sources, usages[0], ok))
        warnings += [w for u in usages for w in u.warnings if w not in warnings]
    return kinds, replace(kinds[0][3], warnings=warnings)


def _assumptions(scn: Scenario) -> list[dict]:
    out = []
    for key, (_, _, _, desc) in FIELDS.items():
        if key in ("prices", "usage", "requests", "name", "mix", "calibration"):
            continue
        value = getattr(scn, key)
        if key == "start":
            value = month_label(*value)
        out.append({"key": key, "value": plain(value), "defaulted": key not in scn.given, "description": desc})
    out += mix_assumptions(scn)
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


def _money(f) -> str:
    return str(round_money(f))


SENSITIVITY_DRIVERS = ("tasks_per_month", "monthly_growth", "failure_rate", "sources_per_task", "source_size_mb",
                       "target_size_mb", "target_retention_days", "accelerated_gb_per_task")
# Drivers that are counts move to whole values; sources move by one source (1..10).
WHOLE_DRIVERS = ("tasks_per_month", "target_retention_days")


def _total_for(scn, book, hz, **over) -> Decimal:
    """The horizon total (excluding quantities without a price) with drivers replaced by `over`."""
    mp = _price_months(scn, book, hz, **over)
    return sum((round_money(a) for month in mp.amounts for a in month.values()), ZERO)


def build_forecast(scn: Scenario, book: PriceBook, *, sensitivity: bool = True, strict: bool = False,
                   budget=None, counts=None) -> dict:
    """The forecast model (see module doc). Quantities without a price are shown, never priced: the model
    has `complete: false`, `missing_prices` and totals `excluding` them. `strict` raises BadInput naming every
    missing price instead. `budget` (a `costkit.engine.budget.Budget`) adds the `budget` section and the
    break-even prices of the sweep. `counts` (whole tasks per month) replaces the scenario's volume (a trend);
    there is no driver sensitivity then."""
    with exact_decimals():  # a valid scenario never overflows the 28-digit default context
        return _build_forecast(scn, book, sensitivity=sensitivity and counts is None, strict=strict,
                               budget=budget, counts=counts)


def month_totals(scn: Scenario, book: PriceBook, counts: list[int]) -> list[Decimal]:
    """The total of each month (its rounded items; quantities without a price excluded, as the forecast's)
    when the months hold `counts` tasks."""
    with exact_decimals():
        mp = _price_months(scn, book, _Horizon(scn), counts=counts)
    return [sum((round_money(a) for a in month.values()), ZERO) for month in mp.amounts]


def _month_rows(hz, mp, excluded_by_month) -> list[dict]:
    months = []
    for i, label in enumerate(hz.labels):
        rounded = {k: round_money(mp.amounts[i][k]) for k in ITEM_KEYS}
        gaps = excluded_by_month[i]
        months.append({
            "month": label, "tasks": mp.counts[i], "succeeded": str(mp.succeeded[i]),
            "billable_splices": str(mp.splices[i]),
            "items": {k: None if k in gaps else str(v) for k, v in rounded.items()},
            "quantities": {k: {"quantity": fmt_quantity(mp.qty[i][k]), "unit": ITEMS[k][0]} for k in ITEM_KEYS},
            **({"price_needed": {k: {"quantity": fmt_quantity(q), "unit": ITEMS[k][0],
                                     "priced_amount": str(rounded[k])} for k, q in gaps.items()}} if gaps else {}),
            "total": str(sum(rounded.values(), ZERO))})
    return months


def _build_forecast(scn: Scenario, book: PriceBook, *, sensitivity: bool, strict: bool, budget,
                    counts=None) -> dict:
    hz = _Horizon(scn)
    mp = _price_months(scn, book, hz, **({"counts": counts} if counts is not None else {}))
    if strict:
        mp.pricer.raise_if_missing()
    excluded_by_month = [{k: q for k, q in m.items() if q} for m in mp.unpriced]
    excluded = [k for k in ITEM_KEYS if any(k in m for m in excluded_by_month)]
    months = _month_rows(hz, mp, excluded_by_month)
    item_totals = {k: sum((round_money(mp.amounts[i][k]) for i in range(scn.months)), ZERO) for k in ITEM_KEYS}
    total = sum(item_totals.values(), ZERO)
    succeeded = sum(mp.succeeded)
    label = f"excluding {', '.join(excluded)} (price needed)" if excluded else ""
    missing = missing_prices(list(mp.knobs.values()), book, hz.instant(hz.hours))
    model = {
        "format_version": FORMAT_VERSION,
        "costkit_version": __version__,
        "scenario": {"name": scn.name, "site": scn.site, "region": scn.region, "start": month_label(*scn.start),
                     "months": scn.months},
        "site": scn.site, "currency": scn.currency,
        "price_book": {"name": book.name, "version": book.version},
        "complete": not excluded,
        "total_label": label,
        "excluded_items": excluded,
        "item_keys": list(ITEM_KEYS),
        "months": months,
        "items": {k: None if k in excluded else str(v) for k, v in item_totals.items()},
        "price_needed": {k: {"quantity": fmt_quantity(sum(m.get(k, 0) for m in excluded_by_month)),
                             "unit": ITEMS[k][0], "priced_amount": str(item_totals[k])} for k in excluded},
        "total": str(total),
        "average_month": _money(Fraction(total) / scn.months),
        "tasks": sum(mp.counts),
        "billable_splices": str(sum(mp.splices)),
        "succeeded": str(succeeded),
        "cost_per_1000_splices": _money(Fraction(total) * 1000 / succeeded) if succeeded else None,
        "missing_prices": missing,
        "prices": [e.to_dict() for e in mp.pricer.used_entries()],
        "price_layers": PRICE_LAYERS,
        "assumptions": _assumptions(scn),
        "warnings": forecast_warnings(scn, mp.usage, mp.pricer, missing, label),
    }
    priced = Priced(hz.labels, mp.amounts, [Decimal(m["total"]) for m in months])
    order = {k: i for i, k in enumerate(ITEM_KEYS)}
    knobs = sorted(mp.knobs.values(), key=lambda k: (k.base is not None, order[k.item], k.selectors))
    if budget is not None:
        model["budget"] = check_budget(model, budget)
    model["price_sweep"] = [sweep(priced, k, budget=budget, excluded=excluded) for k in knobs
                            if k.base is None or k.confidence not in CONFIDENT and k.base]
    model["sensitivity"] = _sensitivity(scn, book, hz, total, priced, knobs) if sensitivity else []
    return model


# Price layers, highest precedence first (README, "Prices").
PRICE_LAYERS = [
    {"layer": "cli", "from": "--price ITEM=VALUE[/UNIT]"},
    {"layer": "user", "from": "--prices FILE"},
    {"layer": "scenario", "from": "the scenario's (or settings') prices:"},
    {"layer": "bundled", "from": "the bundled price book"},
]


def _driver_values(d, base):
    """(low, high) of a scenario driver: -20% / +20%, whole for counts, one source either way."""
    if d == "sources_per_task":
        return max(base - 1, Decimal(1)), min(base + 1, Decimal(10))
    lo, hi = base * Decimal("0.8"), base * Decimal("1.2")
    if d == "failure_rate":
        hi = min(hi, Decimal(1))
    if d in WHOLE_DRIVERS and base == base.to_integral_value():
        lo, hi = Decimal(round_half_up_int(lo)), Decimal(round_half_up_int(hi))
    return lo, hi


def _sensitivity(scn, book, hz, base_total, priced, knobs) -> list[dict]:
    """Total when each driver moves (see `_driver_values`; prices -20% / +20%), others at base; largest swing
    first. Totals exclude the quantities without a price, as the forecast's do."""
    rows = []
    for d in SENSITIVITY_DRIVERS:
        base = getattr(scn, d)
        if base is None or base == 0:
            continue
        lo, hi = _driver_values(d, base)
        t_lo = _total_for(scn, book, hz, **{d: lo})
        t_hi = _total_for(scn, book, hz, **{d: hi})
        rows.append({"driver": d, "kind": "scenario", "base_value": fmt_quantity(base),
                     "low_value": fmt_quantity(lo), "high_value": fmt_quantity(hi), "low_total": str(t_lo),
                     "high_total": str(t_hi), "base_total": str(base_total)})
    rows += price_drivers(priced, knobs, base_total)
    rows.sort(key=lambda r: abs(Decimal(r["high_total"]) - Decimal(r["low_total"])), reverse=True)
    return rows


def estimate(scenario, prices_file=None, *, sensitivity: bool = True, strict: bool = False, prices=None,
             budget=None) -> dict:
    """Forecast a scenario (a Scenario or a path); returns the model dict (see `build_forecast`).

    `prices`: `--price` texts ("imm.ImageSplicing=2.5/1000calls"), the highest price layer; `budget`: a
    Budget or its text ("5000", "500/month").
    """
    from costkit.model.scenario import load_scenario
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    options = parse_price_options(prices, scn.currency)
    book = load_price_book(scn.site, prices_file=prices_file, scenario_prices=scn.prices, scenario_path=scn.path,
                           price_options=options)
    if isinstance(budget, str):
        budget = parse_budget(budget, scn.currency)
    return build_forecast(scn, book, sensitivity=sensitivity, strict=strict, budget=budget)


def months_frame(model: dict):
    """The month x item table of a forecast model as a pandas DataFrame of Decimals (plus total); an item
    whose price is needed in a month is None there."""
    import pandas as pd
    rows = [{"month": m["month"], "tasks": m["tasks"], "billable_splices": Decimal(m["billable_splices"]),
             **{k: None if v is None else Decimal(v) for k, v in m["items"].items()},
             "total": Decimal(m["total"])} for m in model["months"]]
    return pd.DataFrame(rows)


__all__ = ["FORMAT_VERSION", "build_forecast", "estimate", "months_frame", "month_totals", "task_counts"]
