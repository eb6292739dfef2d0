"""The learnt-price trap: an audit whose `--prices` overlay was learnt from the audited month's own bill checks
the bill against itself, so a real price difference cannot show."""
from __future__ import annotations


def own_bill_prices(book, month: str) -> list[dict]:
    """The price entries of `book` learnt from `month`'s bill (`costkit prices learn --month` writes
    confidence `bill` and a source naming the month): item, selectors, price, unit, currency, source."""
    out = []
    for layer, entries in book.layers:
        for e in entries:
            if e.confidence == "bill" and f"month {month}" in (e.source or ""):
                out.append({"layer": layer, "item": e.item, "selectors": dict(e.selectors),
                            "price": None if e.price is None else str(e.price), "unit": e.unit,
                            "currency": e.currency, "source": e.source})
    return out


def trap_warning(entries: list[dict], month: str) -> str | None:
    """The warning sentence naming the entries (None when there are none)."""
    if not entries:
        return None
    names = ", ".join(e["item"] + ("(" + ",".join(f"{k}={v}" for k, v in sorted(e["selectors"].items())) + ")"
                                   if e["selectors"] else "") for e in entries)
    return (f"Prices learnt from the {month} bill itself are in use ({names}): price differences cannot show "
            "against the bill's own prices; audit with the contract or book prices to find overcharges.")


__all__ = ["own_bill_prices", "trap_warning"]
