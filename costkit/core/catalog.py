"""The vocabulary every layer shares: costkit's billing items, their units, storage classes, redundancies,
confidence levels and site currencies. Facts about the product, not prices (those are in pricing/)."""
from __future__ import annotations

# item key -> (usage dimension, selector keys that the usage model supplies, description)
ITEMS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "imm.ImageSplicing": ("calls", (), "IMM ImageSplicing, per succeeded splice"),
    "oss.GetRequest": ("requests", ("storage_class",), "OSS GET-type requests (GetObject, HeadObject)"),
    "oss.PutRequest": ("requests", ("storage_class",), "OSS PUT-type requests (PutObject)"),
    "oss.IaRetrieval": ("GB", (), "OSS IA data retrieval"),
    "oss.ArchiveDirectRead": ("GB", (), "OSS Archive direct-read retrieval"),
    "oss.TransferAcceleration": ("GB", (), "OSS transfer acceleration"),
    "oss.Storage": ("GB-hour", ("storage_class", "redundancy"), "OSS storage of targets"),
    "oss.EarlyDeletion": ("GB-hour", ("storage_class", "redundancy"),
                          "OSS storage shorter than the minimum duration"),
}
ITEM_KEYS = list(ITEMS)

# The early-deletion rule charges the remaining hours at the class's storage price.
PRICE_ALIAS = {"oss.EarlyDeletion": "oss.Storage"}

# unit -> (dimension, how many base units one unit holds)
UNITS: dict[str, tuple[str, int]] = {
    "calls": ("calls", 1),
    "1000 calls": ("calls", 1000),
    "requests": ("requests", 1),
    "10000 requests": ("requests", 10000),
    "GB": ("GB", 1),
    "GB-hour": ("GB-hour", 1),
    "GB-month": ("GB-hour", 720),  # OSS: monthly price / 30 / 24 per hour
}

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
REDUNDANCIES = ("LRS", "ZRS")
SELECTOR_VALUES = {"storage_class": STORAGE_CLASSES, "redundancy": REDUNDANCIES}
CONFIDENCE_LEVELS = ("official", "official-example", "community", "third-party", "not-found", "inference",
                     "contract", "bill", "user", "illustrative")
CURRENCIES = {"cn": "CNY", "intl": "USD"}
