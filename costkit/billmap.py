"""Compatibility path (costkit < 0.2): `mapped_bill` now lives in costkit.store.bills, `billed_daily` in
costkit.sources.bills.mapping."""
from costkit.sources.bills.mapping import billed_daily  # noqa: F401
from costkit.store.bills import mapped_bill  # noqa: F401
