"""Pricing the history's quantity sums: each (group, item, class, redundancy, segment) sum priced once with
the `Pricer` (exact Fractions), the price entry each combination resolves to (for the charge lines), and the
report's warnings."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from costkit.core.money import fmt_quantity
from costkit.core.timeutil import UTC
from costkit.engine.aggregate import Aggregate
from costkit.engine.coefficients import Model
from costkit.engine.period import Period
from costkit.engine.profile import CONFIDENT
from costkit.model.usage import GB, MB
from costkit.prices.book import ITEMS
from costkit.prices.pricer import Pricer

SCALE_OF = {"calls": 1, "requests": 1, "GB": GB, "GB-hour": GB}  # base unit -> integer sub-units


def _selectors(item: str, cls, red) -> dict:
    keys = ITEMS[item][1]
    sel = {}
    if "storage_class" in keys:
        sel["storage_class"] = cls
    if "redundancy" in keys:
        sel["redundancy"] = red
    return sel


@dataclass
class Priced:
    lines: dict        # (gkey, item) -> exact Fraction amount
    quantities: dict   # (gkey, item) -> Fraction in the item's base unit
    combos: dict       # (item, cls, red, seg) -> PriceEntry
    pricer: Pricer


def price_aggregate(agg: Aggregate, model: Model, book, period: Period, bounds: list[int]) -> Priced:
    """Each quantity sum priced once, exactly, at its segment's start (Fractions in the book's currency)."""
    pricer = Pricer(book)
    starts = [period.h0] + bounds

    def instant(seg):
        return datetime.fromtimestamp(starts[seg] * 3600, UTC)

    rows = list(agg.rows)
    if model.accel_gb:
        for (gkey, seg), n in agg.accel_tasks.items():
            rows.append((gkey, seg, "oss.TransferAcceleration", None, None, None, n))
    lines: dict = {}
    qty: dict = {}
    combos: dict = {}
    for row in rows:
        if len(row) == 7:       # acceleration: per-task GB (exact) x tasks
            gkey, seg, item, cls, red, _, n = row
            q = model.accel_gb * n
        else:
            gkey, seg, item, cls, red, sub = row
            q = Fraction(sub, SCALE_OF[ITEMS[item][0]])
        sel = _selectors(item, cls, red)
        amount = pricer.amount(item, sel, instant(seg), q)
        lines[(gkey, item)] = lines.get((gkey, item), Fraction(0)) + amount
        qty[(gkey, item)] = qty.get((gkey, item), Fraction(0)) + q
        key = (item, sel.get("storage_class"), sel.get("redundancy"), seg)
        if key not in combos and q:
            entry, _ = book.resolve(item, sel, instant(seg))
            combos[key] = entry
    pricer.raise_if_missing()
    return Priced(lines, qty, combos, pricer)


def report_warnings(agg: Aggregate, priced: Priced, model: Model) -> list[str]:
    """What the report cannot vouch for: default object facts, unpriced restores, unfinished tasks, prices
    of low confidence, unpriced outbound traffic (one sentence each)."""
    w = []
    if agg.unknown_tasks:
        w.append(f"{agg.unknown_tasks} task(s) use default object facts ({agg.unknown_sources} source(s) and "
                 f"{agg.unknown_targets} target(s) without inventory facts: sources "
                 f"{fmt_quantity(Fraction(model.src_bytes, MB))} MB {model.src_class}, targets "
                 f"{fmt_quantity(Fraction(model.tgt_bytes, MB))} MB {model.tgt_class}); run `costkit inventory`.")
    if getattr(agg, "gone_tasks", 0):
        w.append(f"{agg.gone_tasks} task(s) reference objects the inventory found already deleted "
                 f"({agg.gone_sources} source(s), {agg.gone_targets} target(s)): deleted, no action needed; their "
                 "sizes are the settings' defaults (source_size_mb, target_size_mb).")
    if agg.cold_sources:
        w.append(f"{agg.cold_sources} request(s) on ColdArchive/DeepColdArchive sources: restore retrieval, restore "
                 "requests and the temporary Standard copy are NOT priced; reads are priced as if restored.")
    if agg.running:
        w.append(f"{agg.running} task(s) started in the period are still Running: not priced until they finish "
                 "(collect again).")
    if agg.no_end:
        w.append(f"{agg.no_end} finished task(s) started in the period have no end time: not priced.")
    for e in priced.pricer.used_entries():
        if e.confidence not in CONFIDENT and e.price:
            sel = ", ".join(f"{k}={v}" for k, v in e.selectors)
            w.append(f"{e.item}{' (' + sel + ')' if sel else ''} is priced at {e.price} {e.currency} per {e.unit} "
                     f"with confidence '{e.confidence}' ({e.source}); confirm it before relying on the figure.")
    if model.accel_gb:
        w.append("Transfer acceleration is charged on top of outbound traffic (NetworkOut), which is not priced.")
    return w


__all__ = ["SCALE_OF", "Priced", "price_aggregate", "report_warnings"]
