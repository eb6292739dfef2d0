"""The facts an inventory reads about OSS objects and buckets, and the two header/URI forms it parses."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

UTC = timezone.utc


def parse_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of `oss://bucket/key`; None when the URI is not of that form."""
    if not isinstance(uri, str) or not uri.startswith("oss://"):
        return None
    bucket, sep, key = uri[6:].partition("/")
    if not bucket or not sep or not key:
        return None
    return bucket, key


def parse_restore(header: str | None) -> tuple[str | None, datetime | None]:
    """(state, expiry) from `x-oss-restore`: (None, None) when absent; ("ongoing", None);
    ("restored", expiry-date)."""
    if not header:
        return None, None
    h = header.replace(" ", "")
    if 'ongoing-request="true"' in h:
        return "ongoing", None
    expiry = None
    marker = 'expiry-date="'
    i = header.find(marker)
    if i >= 0:
        j = header.find('"', i + len(marker))
        try:
            expiry = parsedate_to_datetime(header[i + len(marker):j]).astimezone(UTC)
        except (TypeError, ValueError):
            expiry = None
    return "restored", expiry


@dataclass
class Fact:
    uri: str
    bucket: str
    key: str
    gone: bool
    via: str
    size: int | None = None
    storage_class: str | None = None
    last_modified: datetime | None = None
    restore_state: str | None = None
    restore_expiry: datetime | None = None


@dataclass
class BucketFact:
    bucket: str
    found: bool
    location: str | None = None
    storage_class: str | None = None
    redundancy: str | None = None
    transfer_acceleration: bool | None = None
    archive_direct_read: bool | None = None
    archive_direct_read_source: str | None = None
    lifecycle: list | None = None    # rows for `lifecycle_rules` (costkit.sources.oss.lifecycle); None: not read
