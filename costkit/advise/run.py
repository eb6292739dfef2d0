"""`costkit advise`: the month's priced context, every rule's proposals, each replayed through the engine.

1. `build_context` prices the period once, as `cost --month` does.
2. Each rule of RULES (costkit.advise.rules.*) returns proposals: a change, its evidence, and a what-if.
3. Each what-if is replayed on the same tasks (costkit.advise.whatif.replay, a rolled-back overlay): the
   affected tasks' charges today and after are the engine's figures for those tasks, item by item; the
   saving is their difference (plus any change on other tasks, plus the rule's priced adjustments).
4. One-time costs of making the change (copies, early deletions) are priced from the book at the period's
   last second.
5. The month's possible saving replays all counted what-ifs together.
"""
from __future__ import annotations

from decimal import Decimal

from costkit.advise.context import build_context
from costkit.advise.report import build_report, finding, item_order
from costkit.advise.rules import (archive_no_direct_read, early_deleted_targets, failed_retries, hot_ia_sources,
                                  ia_small_targets, same_region_acceleration, unread_targets)
from costkit.advise.whatif import WhatIf, group_items, replay
from costkit.core.errors import BadInput
from costkit.core.money import ZERO, round_money
from costkit.prices.pricer import Pricer

RULES = [ia_small_targets, early_deleted_targets, hot_ia_sources, archive_no_direct_read, failed_retries,
         same_region_acceleration, unread_targets]
_ENTRY_FIELDS = ("item", "selectors", "price", "unit", "currency", "confidence", "source", "layer",
                 "effective_from")


class _Entry:
    """A price entry seen in a report's `prices` list (dict), with the attributes `confidence()` reads."""

    def __init__(self, d: dict):
        self.item, self.price, self.unit = d["item"], d["price"], d["unit"]
        self.currency, self.confidence, self.source = d["currency"], d["confidence"], d["source"]
        self.layer, self.effective_from = d["layer"], d["effective_from"]
        self.selectors = tuple(sorted(d["selectors"].items()))


def _one_time(ctx, p) -> tuple[list, list]:
    pricer = Pricer(ctx.book)
    lines = []
    for label, item, sel, qty in p.one_time:
        amount = ctx.price(item, sel, qty, pricer)
        lines.append({"label": label, "item": item, "selectors": sel, "quantity": str(qty),
                      "amount": str(round_money(amount))})
    pricer.raise_if_missing()
    return lines, pricer.used_entries()


def evaluate(ctx, rule, p) -> dict | None:
    """The finding of proposal `p` of `rule`, priced by replaying it; None when a `positive_only` proposal
    shows no saving."""
    today, after = replay(ctx, p.whatif or WhatIf(), p.affected)
    ti = group_items(today)
    ai = group_items(after) if p.whatif is not None else None
    items = item_order({k for k in p.items if ti[k] or (ai and ai[k])}
                       | ({k for k in ti if ti[k] != ai[k]} if ai else set())) or list(p.items[:1])
    spill = ZERO
    if ai is not None:   # whatever the change moves on the other tasks, from the whole month's totals
        spill = (Decimal(today["total"]) - Decimal(after["total"])) - (sum(ti.values(), ZERO) - sum(ai.values(), ZERO))
    one_time, entries = _one_time(ctx, p)
    entries += [_Entry(d) for r in (today, after) for d in r["prices"] if d["item"] in items]
    entries += [e for a in p.adjustments for e in a.prices]
    f = finding(ctx, p, title=rule.TITLE, today_items=ti, after_items=ai, items=items, spill=spill,
                one_time=one_time, entries=entries)
    if p.positive_only and (f["saving"] is None or Decimal(f["saving"]["period"]) <= 0):
        return None
    return f


def advise(store, period, *, settings=None, prices_file=None, rules=None) -> dict:
    """The advice model of `period` (costkit.advise.report): every rule's findings, replayed through the engine."""
    ctx = build_context(store, period, settings=settings, prices_file=prices_file)
    findings, counted, skipped = [], [], []
    for rule in rules or RULES:
        for p in rule.find(ctx):
            try:
                f = evaluate(ctx, rule, p)
            except BadInput as e:   # a price the change needs is missing: say so, keep the other findings
                skipped.append(f"{rule.NAME}: the change cannot be priced: {e}")
                continue
            if f is None:
                continue
            findings.append(f)
            if f["counts_in_total"]:
                counted.append((p, f))
    model = build_report(ctx, findings, possible_saving(ctx, counted))
    model["warnings"] += skipped
    return model


def possible_saving(ctx, counted: list) -> Decimal:
    """The period's saving with every counted change at once (one replay), plus their adjustments."""
    if not counted:
        return ZERO
    w, affected = WhatIf(), set()
    for p, _ in counted:
        w = w.merged(p.whatif)
        affected |= p.affected
    today, after = replay(ctx, w, affected)
    adj = sum((Decimal(a["amount"]) for _, f in counted for a in f["adjustments"]), ZERO)
    return Decimal(today["total"]) - Decimal(after["total"]) + adj


__all__ = ["RULES", "advise", "evaluate", "possible_saving"]
