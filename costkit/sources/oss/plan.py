"""Planning an inventory: which buckets and keys to read, and per "directory" whether one listing or
HeadObject per key is cheaper (the rule is in costkit.sources.oss.inventory's module doc).

Prices come from the caller as a `RequestPrices` object (the engine builds one from the price book), so
this layer never reads a book itself.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Protocol

from costkit.sources.oss.facts import Fact, parse_uri

LIST_PAGE = 1000          # ListObjectsV2 max-keys
HEAD_CHUNK = 200          # HEADs per worker job


class RequestPrices(Protocol):
    """Per-request OSS prices for one run, in `currency`."""

    currency: str

    def per_request(self, item: str, storage_class: str) -> Fraction | None:
        """The price of one `item` request ("oss.GetRequest"/"oss.PutRequest") of that class; None: unknown."""

    def amount(self, item: str, storage_class: str, n: int) -> tuple[Fraction, list[str]]:
        """(exact amount of n requests, descriptions of the prices that are missing: counted as 0)."""


def prefer_list(prices: RequestPrices, n: int, expected_class: str) -> bool:
    """True when ceil(n / 1000) listing pages (PUT, Standard) cost less than n HEADs (GET, expected class);
    without both prices, when fewer requests."""
    pages = math.ceil(n / LIST_PAGE)
    put = prices.per_request("oss.PutRequest", "Standard")
    get = prices.per_request("oss.GetRequest", expected_class)
    if put is None or get is None:
        return pages < n
    return pages * put < n * get


def common_prefix(keys: list[str]) -> str:
    a, b = min(keys), max(keys)
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def directory(key: str) -> str:
    i = key.rfind("/")
    return key[:i + 1] if i >= 0 else ""


def group_uris(rows, region: str | None):
    """(by_bucket {bucket: {key: (uri, cached class)}}, bucket_region {bucket: region}, skipped count) of
    pending rows (uri, task region, cached class); skipped: not oss://bucket/key with a valid bucket name."""
    import oss2
    by_bucket: dict[str, dict[str, tuple[str, str | None]]] = {}
    bucket_region: dict[str, str] = {}
    skipped = 0
    for uri, task_region, known_class in rows:
        parsed = parse_uri(uri)
        if parsed is None or not oss2.utils.is_valid_bucket_name(parsed[0]):
            skipped += 1
            continue
        b, k = parsed
        by_bucket.setdefault(b, {})[k] = (uri, known_class)
        bucket_region.setdefault(b, region or task_region)
    return by_bucket, bucket_region, skipped


def plan_jobs(by_bucket: dict, bucket_state: dict, prices: RequestPrices):
    """(jobs [(kind "list"/"head", bucket, location, sorted keys)], facts for the keys of missing buckets).

    `bucket_state`: {bucket: (found, location, default class)}; a bucket not in it counts as found."""
    jobs = []
    gone_with_bucket: list[Fact] = []
    for name in sorted(by_bucket):
        keys = by_bucket[name]
        found, location, default_class = bucket_state.get(name, (True, None, None))
        if not found:
            for k, (uri, _) in keys.items():
                gone_with_bucket.append(Fact(uri, name, k, gone=True, via="bucket"))
            continue
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(directory(k), []).append(k)
        for _, gkeys in sorted(groups.items()):
            gkeys.sort()
            classes = [keys[k][1] or default_class or "Standard" for k in gkeys]
            expected = max(set(classes), key=classes.count)
            if len(gkeys) > 1 and prefer_list(prices, len(gkeys), expected):
                jobs.append(("list", name, location, gkeys))
            else:
                for i in range(0, len(gkeys), HEAD_CHUNK):
                    jobs.append(("head", name, location, gkeys[i:i + HEAD_CHUNK]))
    return jobs, gone_with_bucket
