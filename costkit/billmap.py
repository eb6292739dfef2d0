"""Compatibility path (costkit < 0.2): the public names now live in costkit.sources.bills.mapping."""
from costkit.sources.bills.mapping import mapped_bill  # noqa: F401
