"""The data the local OSS server holds: buckets and objects (size, class, Last-Modified, restore state),
injected faults, and the two time formats OSS writes."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime

UTC = timezone.utc
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")


def http_date(dt: datetime) -> str:
    """RFC 1123 GMT, e.g. `Wed, 01 May 2024 10:00:00 GMT` (what oss2 requires for Last-Modified)."""
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def list_time(dt: datetime) -> str:
    """ListObjectsV2 `LastModified`: exactly `YYYY-MM-DDTHH:MM:SS.000Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class OSSObject:
    size: int
    storage_class: str = "Standard"
    last_modified: datetime = field(default_factory=lambda: datetime(2025, 8, 1, tzinfo=UTC))
    # None: never restored; "ongoing": a restore in progress; a datetime: restored until then.
    restore: object = None
    etag: str = ""
    object_type: str = "Normal"
    content_type: str = "image/jpeg"
    tags: dict = field(default_factory=dict)

    def restore_header(self) -> str | None:
        if self.restore is None:
            return None
        if self.restore == "ongoing":
            return 'ongoing-request="true"'
        return f'ongoing-request="false", expiry-date="{http_date(self.restore)}"'


@dataclass
class OSSBucket:
    name: str
    location: str = "oss-cn-hangzhou"
    storage_class: str = "Standard"
    redundancy: str = "LRS"
    transfer_acceleration: str | None = None     # "Enabled" / "Disabled" / None (tag omitted)
    archive_direct_read: bool | None = False     # None: the API answers 501 (not exposed)
    creation_date: datetime = field(default_factory=lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    objects: dict = field(default_factory=dict)  # key -> OSSObject
    # GetBucketLifecycle: None answers 404 NoSuchLifecycle; else rule dicts (costkit.testing.oss_wire.lifecycle_xml)
    lifecycle: list | None = None


@dataclass
class OSSFault:
    op: str
    status: int
    times: int
    code: str
    kind: str = "status"
    key: str | None = None       # only requests for this key (a listing: this prefix); None: any
    after: int = 0               # let this many matching requests through first
