"""The bill's own ImageSplicing price, for a month whose price book has none (it is unpublished): both the
audit's expected side and the FOCUS export's expected rows are priced with it."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from fractions import Fraction

from costkit.audit.sides import SPLICE


def with_bill_price(settings, frame, period, model, book, month, warnings):
    """Settings with an ImageSplicing entry at the bill's predominant price when the book has none (price per
    1000 calls in the book's currency; the predominant price weighs each price by its lines' calls). Appends
    a warning when it adds one; returns `settings` unchanged otherwise."""
    from costkit.prices.learn import line_price
    from costkit.sources.bills.units import to_decimal

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
    text = format(to_decimal(price * 1000, 12), "f")
    entry = {"item": SPLICE, "unit": "1000 calls", "price": text, "currency": book.currency,
             "effective_from": at.isoformat(), "confidence": "bill",
             "source": f"predominant ListPrice of the {month} bill (no book price for ImageSplicing)"}
    warnings.append(f"The price book has no {SPLICE} price for {month}: the expected side uses the bill's "
                    f"predominant price {text} {book.currency} per 1000 calls; supply the contract price with "
                    "--prices to audit the price itself.")
    splice = replace(settings.splice, prices=list(settings.splice.prices or []) + [entry])
    return replace(settings, splice=splice)
