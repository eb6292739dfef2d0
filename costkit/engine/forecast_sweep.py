"""How a forecast's total moves with one price: the price sweep (unknown and low-confidence prices), the
break-even price at which a budget is reached, and the price drivers of the sensitivity table.

A `Knob` is one price of the forecast: an unknown one (`base` None, its quantities left out of the totals)
or a priced entry. Moving it re-prices only its own quantities, month by month, under the one rounding rule
(each month x item line rounded half-up; totals are sums of rounded lines), so a swept total is exactly the
total the forecast would print at that price. Prices are per the knob's `unit`, in the forecast's currency.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from costkit.core.money import fmt_quantity, round_money, to_fraction
from costkit.core.catalog import UNITS

# Price steps of a break-even search: 1e-6 of the unit (e.g. CNY 0.000001 per 1000 calls).
BREAK_EVEN_PLACES = 6
# Multiples of a low-confidence price in its sweep, and of the sensitivity's price driver.
PRICED_SWEEP = ("0.5", "0.75", "1", "1.25", "1.5", "2")
PRICE_DRIVER = (Decimal("0.8"), Decimal("1.2"))
# A sweep of an unknown price walks a 1-2-5 grid (per unit) around 1, or around the break-even price.
GRID = ("0.1", "0.2", "0.5", "1", "2", "5", "10")


@dataclass
class Knob:
    """One price of a forecast; `quantities[i]` maps month item -> base units priced by it in month i."""

    item: str
    selectors: tuple
    unit: str
    base: Decimal | None
    confidence: str | None
    months: int
    quantities: list[dict] = field(default_factory=list)
    layer: str | None = None
    source: str | None = None
    since: object = None  # an unknown price: the first instant (aware datetime) that needs it

    def __post_init__(self):
        if not self.quantities:
            self.quantities = [{} for _ in range(self.months)]

    def add(self, i: int, month_item: str, q: Fraction) -> None:
        self.quantities[i][month_item] = self.quantities[i].get(month_item, Fraction(0)) + q

    def total_quantity(self) -> Fraction:
        return sum((q for m in self.quantities for q in m.values()), Fraction(0))

    def label(self) -> str:
        sel = ",".join(f"{k}={v}" for k, v in self.selectors)
        return f"{self.item}[{sel}]" if sel else self.item


@dataclass
class Priced:
    """The exact priced part of a forecast that sweeps move: `exact[i][item]` (amount of the priced quantities),
    `month_totals` (2-place Decimals, the forecast's month totals) and the month labels."""

    labels: list[str]
    exact: list[dict]
    month_totals: list[Decimal]

    def months_at(self, knob: Knob, price) -> list[Decimal]:
        """Month totals with `knob` at `price` per its unit (the other prices as in the forecast)."""
        per_base = to_fraction(price) / UNITS[knob.unit][1]
        was = Fraction(0) if knob.base is None else to_fraction(knob.base) / UNITS[knob.unit][1]
        out = []
        for i, total in enumerate(self.month_totals):
            for month_item, q in knob.quantities[i].items():
                a = self.exact[i][month_item]
                total = total - round_money(a) + round_money(a + q * (per_base - was))
            out.append(total)
        return out

    def total_at(self, knob: Knob, price) -> Decimal:
        return sum(self.months_at(knob, price), Decimal("0.00"))


def _within(priced: Priced, knob: Knob, price, budget) -> bool:
    months = priced.months_at(knob, price)
    if budget.per_month:
        return max(months) <= budget.amount
    return sum(months, Decimal(0)) <= budget.amount


def break_even(priced: Priced, knob: Knob, budget) -> dict:
    """The highest price of `knob` (per its unit, to 1e-6) at which the forecast stays within `budget`
    (a `costkit.engine.budget.Budget`): {"price", "reason"}; price None when no price reaches it."""
    q = knob.total_quantity()
    if not _within(priced, knob, 0, budget):
        return {"price": None, "reason": "the budget is passed even at a price of 0"}
    if not q:
        return {"price": None, "reason": "no quantity is priced at this price, so it cannot reach the budget"}
    step = Fraction(1, 10**BREAK_EVEN_PLACES)
    scale = UNITS[knob.unit][1]
    # Upper bound: the price that alone spends the whole budget on the smallest non-zero month (or the horizon).
    qs = [sum(m.values(), Fraction(0)) for m in knob.quantities]
    smallest = min(x for x in qs if x) if budget.per_month else q
    hi = int(to_fraction(budget.amount) * scale / smallest / step) + 2
    lo = 0
    while _within(priced, knob, hi * step, budget):  # only when the rest of the forecast is negative
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _within(priced, knob, mid * step, budget):
            lo = mid
        else:
            hi = mid
    whole = "every month stays" if budget.per_month else "the horizon total stays"
    return {"price": fmt_quantity(lo * step, BREAK_EVEN_PLACES),
            "reason": f"the highest price (to {fmt_quantity(step, BREAK_EVEN_PLACES)} {knob.unit and 'per ' + knob.unit})"
                      f" at which {whole} within the budget"}


def _grid(center: Fraction | None) -> list[Decimal]:
    e = math.floor(math.log10(center)) if center else 0  # float only to place the grid, never in a total
    shift = Decimal(10) ** e
    return [(Decimal(g) * shift).normalize() for g in GRID]


def sweep(priced: Priced, knob: Knob, *, budget=None, excluded: list[str]) -> dict:
    """The sweep row of one unknown or low-confidence price: totals at several prices (see GRID and
    PRICED_SWEEP), and the break-even price when a budget is given."""
    be = break_even(priced, knob, budget) if budget is not None else None
    if knob.base is None:
        center = to_fraction(Decimal(be["price"])) if be and be["price"] not in (None, "0") else None
        prices = _grid(center)
    else:
        prices = [(knob.base * Decimal(f)).normalize() for f in PRICED_SWEEP]
    if be and be["price"] is not None:
        prices.append(Decimal(be["price"]))
    points = []
    for p in sorted(set(prices)):
        months = priced.months_at(knob, p)
        total = sum(months, Decimal("0.00"))
        point = {"price": fmt_quantity(p, 12), "total": str(total)}
        if budget is not None:
            point["within_budget"] = (max(months) if budget.per_month else total) <= budget.amount
        points.append(point)
    others = [x for x in excluded if x != knob.item]
    return {"item": knob.item, "selectors": dict(knob.selectors), "unit": knob.unit,
            "price": None if knob.base is None else str(knob.base),
            "why": "price unknown" if knob.base is None else f"confidence '{knob.confidence}'",
            "layer": knob.layer, "source": knob.source,
            "quantity": fmt_quantity(knob.total_quantity()), "quantity_unit": UNITS[knob.unit][0],
            "total_excludes": others,
            "points": points, "break_even": be}


def price_drivers(priced: Priced, knobs: list[Knob], base_total: Decimal) -> list[dict]:
    """Sensitivity rows for each priced entry with an amount: the total at 0.8x and 1.2x its price."""
    rows = []
    for k in knobs:
        if k.base is None or not k.base or not k.total_quantity():
            continue
        lo, hi = (k.base * f for f in PRICE_DRIVER)
        rows.append({"driver": f"price {k.label()}", "kind": "price", "unit": k.unit,
                     "base_value": fmt_quantity(k.base, 12), "low_value": fmt_quantity(lo, 12),
                     "high_value": fmt_quantity(hi, 12), "low_total": str(priced.total_at(k, lo)),
                     "high_total": str(priced.total_at(k, hi)), "base_total": str(base_total)})
    return rows


__all__ = ["Knob", "Priced", "break_even", "price_drivers", "sweep"]
