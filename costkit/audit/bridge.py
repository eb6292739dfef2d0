"""The audit bridge: how the expected amount becomes the billed net, one step per cause.

A bridge starts at the expected amount, adds each cause of the variance in the order of the cause model
(costkit.audit.causes.CAUSES: counts, price, deductions, rounding, then the unclaimed whole-bucket use), and
ends at the billed net. The steps are the causes the model already lists for an item (their 2-place amounts),
so a bridge adds up exactly: expected + the claimed steps = billed attributable to splicing, + the unclaimed
steps = billed net. The month's bridge sums the items' steps cause by cause.
"""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from costkit.audit.causes import CAUSES, UNCLAIMED
from costkit.core.money import ZERO

_ORDER = list(CAUSES)


def _rank(cause: str) -> int:
    # A cause the model does not know yet goes before rounding and the unclaimed ones.
    return _ORDER.index(cause) if cause in _ORDER else _ORDER.index("rounding") - 0.5


def _bridge(scope: str, expected: Decimal, billed_net: Decimal, causes: list[tuple[str, Decimal, str | None]],
            warnings: list) -> dict:
    """One bridge: `expected` (start), `steps` (cause, amount, claimed, quantity, from, to: running totals),
    `attributable` (after the claimed steps), `billed_net` (end); money as 2-place text."""
    steps, running = [], expected
    attributable = None
    if not any(c[0] == "rounding" for c in causes):
        causes = [*causes, ("rounding", ZERO, None)]      # always its own (small) bar, even at 0.00
    for cause, amount, quantity in sorted(causes, key=lambda c: _rank(c[0])):
        claimed = cause not in UNCLAIMED
        if not claimed and attributable is None:
            attributable = running
        steps.append({"cause": cause, "amount": str(amount), "claimed": claimed, "quantity": quantity,
                      "text": CAUSES.get(cause, cause), "from": str(running), "to": str(running + amount)})
        running += amount
    if attributable is None:
        attributable = running
    if running != billed_net:
        warnings.append(f"The bridge of {scope} does not add up: expected {expected} + causes "
                        f"{running - expected} = {running}, billed net {billed_net}.")
    return {"scope": scope, "expected": str(expected), "steps": steps, "attributable": str(attributable),
            "billed_net": str(billed_net), "adds_up": running == billed_net}


def bridges(items: list[dict], warnings: list) -> dict:
    """The bridges of the audit model: `month` (all audited items) and `items` (one per item row, in the
    rows' order), from the item rows' `expected`, `billed_net` and `causes` (see the module doc)."""
    per_item = []
    month_amounts: dict = defaultdict(lambda: ZERO)
    for r in items:
        causes = [(c["cause"], Decimal(c["amount"]), c.get("quantity")) for c in r["causes"]]
        per_item.append({"item": r["item"], "unit": r["unit"],
                         **_bridge(r["item"], Decimal(r["expected"]), Decimal(r["billed_net"]), causes, warnings)})
        for cause, amount, _q in causes:
            month_amounts[cause] += amount
    expected = sum((Decimal(r["expected"]) for r in items), ZERO)
    billed = sum((Decimal(r["billed_net"]) for r in items), ZERO)
    # Quantities are per item's unit, so the month's steps carry none.
    month = _bridge("the month", expected, billed, [(k, v, None) for k, v in month_amounts.items()], warnings)
    return {"month": month, "items": per_item}
