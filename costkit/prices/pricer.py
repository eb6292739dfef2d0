"""The pricing engine: exact amounts for usage quantities, with precedence, units and missing prices.

One rounding rule (costkit.money): a line's amount is exact until it is rounded half-up to 2 decimals;
totals are sums of rounded lines.
"""
from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from costkit.core.errors import BadInput
from costkit.prices.book import ITEMS, PRICE_ALIAS, PriceBook, PriceEntry
from costkit.core.timeutil import SHANGHAI


def _describe(item: str, selectors: dict) -> str:
    sel = ", ".join(f"{k}={v}" for k, v in sorted(selectors.items()))
    return f"{item} ({sel})" if sel else item


class Pricer:
    """Prices quantities against a book; remembers the entries used and the prices that are missing."""

    def __init__(self, book: PriceBook):
        self.book = book
        self.used: dict[int, PriceEntry] = {}
        self.missing: dict[str, tuple[str, dict, datetime, PriceEntry | None]] = {}

    def amount(self, item: str, selectors: dict, instant: datetime, quantity: Fraction) -> Fraction:
        """The exact amount (book currency) of `quantity` base units of `item` at `instant`.

        A zero quantity needs no price. A missing price is recorded and counts as 0 here; call
        `raise_if_missing()` before using any total.
        """
        if not quantity:
            return Fraction(0)
        entry, unknown = self.book.resolve(item, selectors, instant)
        if entry is None:
            self.missing.setdefault(_describe(item, selectors), (item, selectors, instant, unknown))
            return Fraction(0)
        self.used.setdefault(id(entry), entry)
        return quantity * entry.per_base_unit()

    def raise_if_missing(self) -> None:
        """Stop with one line that names every missing price and how to supply it (exit 2)."""
        if not self.missing:
            return
        parts = []
        for desc, (item, selectors, instant, _) in sorted(self.missing.items()):
            unit = {"calls": "1000 calls", "requests": "10000 requests", "GB": "GB",
                    "GB-hour": "GB-month"}[ITEMS[PRICE_ALIAS.get(item, item)][0]]
            parts.append(f"{desc} in {self.book.currency} per {unit} from {instant.astimezone(SHANGHAI).isoformat()}")
        raise BadInput(
            f"missing price for {len(parts)} item(s): " + "; ".join(parts)
            + ". Supply each as a price entry (item, selectors, unit, price, currency, effective_from, "
              "confidence, source) in --prices FILE or the scenario's prices: list, or learn it from a bill "
              "with `costkit prices learn`.")

    def used_entries(self) -> list[PriceEntry]:
        order = {k: i for i, k in enumerate(ITEMS)}
        return sorted(self.used.values(), key=lambda e: (order.get(e.item, 99), e.selectors,
                                                        e.effective_from.timestamp() if e.effective_from else 0))
