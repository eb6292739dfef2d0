"""`costkit inventory` with the site's prices: the request prices that choose LIST or HEAD and price the
run's own requests come from the price book and the settings (costkit.sources.oss.inventory reads OSS)."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

from costkit.engine.context import settings_book
from costkit.prices.pricer import Pricer
from costkit.sources.oss import inventory as oss_inventory
from costkit.sources.oss.inventory import check_concurrency

UTC = timezone.utc


class BookRequestPrices:
    """Per-request OSS prices from a price book at one instant (a sources.oss.plan.RequestPrices)."""

    def __init__(self, book, at: datetime):
        self.pricer = Pricer(book)
        self.at = at
        self.currency = book.currency
        self._cache: dict = {}

    def per_request(self, item: str, storage_class: str) -> Fraction | None:
        """The price of one request (book currency); None when the book has none. Resolved once each."""
        k = (item, storage_class)
        if k not in self._cache:
            entry, _ = self.pricer.book.resolve(item, {"storage_class": storage_class}, self.at)
            self._cache[k] = None if entry is None else entry.per_base_unit()
        return self._cache[k]

    def amount(self, item: str, storage_class: str, n: int) -> tuple[Fraction, list[str]]:
        """(exact amount of n requests in the book currency, the missing prices: counted as 0)."""
        amount = self.pricer.amount(item, {"storage_class": storage_class}, self.at, Fraction(n))
        missing = list(self.pricer.missing)
        self.pricer.missing.clear()
        return amount, missing


def run_inventory(store, *, settings=None, prices_file=None, concurrency: int = 8, now: datetime | None = None,
                  **kw):
    """costkit.sources.oss.inventory.run_inventory priced with the settings' site book (plus `prices_file`
    and the scenario's prices) at `now`; the buckets' settings and the default Archive direct read from
    `settings` (default: load_settings(None)). Returns the InventorySummary."""
    check_concurrency(concurrency)
    settings, book = settings_book(settings, prices_file)
    now = now or datetime.now(UTC)
    return oss_inventory.run_inventory(store, prices=BookRequestPrices(book, now), bucket_settings=settings.buckets,
                                       archive_direct_read=settings.splice.archive_direct_read,
                                       concurrency=concurrency, now=now, **kw)
