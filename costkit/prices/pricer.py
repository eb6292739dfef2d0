"""The pricing engine: exact amounts for usage quantities, with precedence, units and missing prices.

One rounding rule (costkit.money): a line's amount is exact until it is rounded half-up to 2 decimals;
totals are sums of rounded lines.
"""
from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from costkit.core.errors import BadInput
from costkit.prices.book import ITEMS, PriceBook, PriceEntry
from costkit.prices.options import usual_unit
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
        entry = self.entry(item, selectors, instant)
        return Fraction(0) if entry is None else quantity * entry.per_base_unit()

    def entry(self, item: str, selectors: dict, instant: datetime) -> PriceEntry | None:
        """The entry in force for `item` at `instant` (remembered as used), or None: then the price is
        recorded as missing, at the first instant asked for."""
        entry, unknown = self.book.resolve(item, selectors, instant)
        if entry is None:
            self.missing.setdefault(_describe(item, selectors), (item, selectors, instant, unknown))
            return None
        self.used.setdefault(id(entry), entry)
        return entry

    def raise_if_missing(self) -> None:
        """Stop with one line that names every missing price and how to supply it (exit 2)."""
        if not self.missing:
            return
        parts = []
        for desc, (item, selectors, instant, _) in sorted(self.missing.items()):
            unit = usual_unit(item)
            parts.append(f"{desc} in {self.book.currency} per {unit} from {instant.astimezone(SHANGHAI).isoformat()}")
        raise BadInput(
            f"missing price for {len(parts)} item(s): " + "; ".join(parts)
            + ". Supply each as a price entry (item, selectors, unit, price, currency, effective_from, "
              "confidence, source) in --prices FILE or the scenario's prices: list, or give it with --price "
              "ITEM=VALUE/UNIT, or learn it from a bill with `costkit prices learn`.")

    def used_entries(self) -> list[PriceEntry]:
        order = {k: i for i, k in enumerate(ITEMS)}
        return sorted(self.used.values(), key=lambda e: (order.get(e.item, 99), e.selectors,
                                                        e.effective_from.timestamp() if e.effective_from else 0))
