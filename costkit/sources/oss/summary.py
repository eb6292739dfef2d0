"""What an inventory run did, and the cost of its own (successful, billed) requests."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from costkit.core.catalog import STORAGE_CLASSES
from costkit.core.money import fmt_quantity, round_money


@dataclass
class InventorySummary:
    """What a run did; `requests` counts successful (billed) requests by API."""

    objects: int = 0
    found: int = 0
    gone: int = 0
    via_list: int = 0
    via_head: int = 0
    buckets: int = 0
    prefixes_listed: int = 0
    requests: dict = field(default_factory=lambda: {"ListObjectsV2": 0, "HeadObject": 0, "GetBucketInfo": 0,
                                                    "GetBucketArchiveDirectRead": 0, "GetBucketLifecycle": 0,
                                                    "GetObjectTagging": 0})
    unbilled: int = 0             # 4xx/5xx answers (not billed by OSS)
    retries: int = 0
    skipped_uris: int = 0         # not oss://bucket/key
    cost: Fraction | None = Fraction(0)
    currency: str = ""
    cost_note: str = ""
    seconds: float = 0.0
    warnings: list = field(default_factory=list)

    def add_facts(self, facts) -> None:
        """Count written object facts: found or gone, and how each was read."""
        for f in facts:
            self.objects += 1
            if f.gone:
                self.gone += 1
            else:
                self.found += 1
            if f.via == "list":
                self.via_list += 1
            elif f.via == "head":
                self.via_head += 1

    def line(self) -> str:
        r = self.requests
        cost = ("unknown" if self.cost is None else
                f"{round_money(self.cost)} {self.currency} (exact {fmt_quantity(self.cost, 10)})")
        text = (f"inventory: {self.objects} objects ({self.found} found, {self.gone} gone; {self.via_list} via "
                f"ListObjectsV2 over {self.prefixes_listed} prefixes, {self.via_head} via HeadObject) in "
                f"{self.buckets} buckets; requests: {r['ListObjectsV2']} ListObjectsV2 (PUT-type), "
                f"{r['HeadObject']} HeadObject (GET-type), {r['GetBucketInfo']} GetBucketInfo, "
                f"{r['GetBucketArchiveDirectRead']} GetBucketArchiveDirectRead, {r['GetBucketLifecycle']} "
                f"GetBucketLifecycle, {r['GetObjectTagging']} GetObjectTagging (GET-type), {self.unbilled} "
                f"unbilled error answers, {self.retries} retries; own request cost {cost}"
                + (f" [{self.cost_note}]" if self.cost_note else "") + f"; {self.seconds:.1f} s")
        return text


def own_request_cost(requests: dict, heads_by_class: dict, prices) -> tuple[Fraction | None, str]:
    """(exact cost in the prices' currency, note) of a run's billed requests: listing pages at the PUT
    price (Standard), bucket calls at the GET price (Standard), each HeadObject at the GET price of the class
    it returned. (None, "missing price for ...") when a price is missing."""
    cost = Fraction(0)
    missing = []
    parts = [("oss.PutRequest", "Standard", requests["ListObjectsV2"]),
             ("oss.GetRequest", "Standard", requests["GetBucketInfo"] + requests["GetBucketArchiveDirectRead"]
              + requests["GetBucketLifecycle"] + requests["GetObjectTagging"])]
    parts += [("oss.GetRequest", cls, n) for cls, n in sorted(heads_by_class.items())]
    for item, cls, n in parts:
        if not n:
            continue
        cls = cls if cls in STORAGE_CLASSES else "Standard"
        amount, lacking = prices.amount(item, cls, n)
        missing.extend(lacking)
        cost += amount
    if missing:
        return None, "missing price for " + ", ".join(sorted(set(missing)))
    return cost, ""
