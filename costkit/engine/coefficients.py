"""The usage model as coefficient tables: `splice_usage` evaluated once per kind of source (storage class x
direct read x restored) and target (storage class), which gives linear coefficients (requests per source,
bytes read per byte, PUTs per succeeded task, minimum billable bytes, minimum storage hours) that the SQL
applies to millions of task rows."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction

from costkit.core.errors import BadInput
from costkit.engine.profile import splice_profile
from costkit.model.usage import GB, splice_usage
from costkit.prices.book import STORAGE_CLASSES

_BOOLS = (False, True)


@dataclass
class Model:
    """The usage model evaluated per kind of source and target, plus the defaults for unknown facts."""

    src: list          # (cls, dr, restored, get_requests, ia_factor, adr_factor) per source
    tgt: list          # (cls, put_per_task, floor_bytes, min_hours)
    accel_gb: Fraction
    splice_on_success: bool
    imm_start: datetime
    src_bytes: int
    src_class: str
    src_dr: bool
    tgt_bytes: int
    tgt_class: str
    tgt_redundancy: str
    retention_hours: int | None
    buckets: list      # (bucket, archive_direct_read, redundancy, storage_class) from the settings
    lifecycle_lag_hours: int = 0   # lifecycle actions take effect this long after the rule's instant


def _int(q: Fraction, what: str) -> int:
    if q.denominator != 1:
        raise BadInput(f"the usage model gives a non-integer {what} ({q}); use whole numbers", field="requests")
    return int(q)


def build_model(settings) -> Model:
    """The usage model of `settings` (a few dozen `splice_usage` calls, one per source and target kind)."""
    scn = settings.splice
    base = splice_profile(scn)
    src = []
    for cls in STORAGE_CLASSES:
        for dr in _BOOLS:
            for restored in _BOOLS:
                u = splice_usage(replace(base, sources=Fraction(1), source_bytes=Fraction(GB), source_class=cls,
                                         archive_direct_read=dr, source_restored=restored))
                get = u.per_task["oss.GetRequest"][1]
                ia = u.per_task.get("oss.IaRetrieval", ({}, Fraction(0)))[1]
                adr = u.per_task.get("oss.ArchiveDirectRead", ({}, Fraction(0)))[1]
                src.append((cls, dr, restored, _int(get, "request count"), _int(ia, "read count"),
                            _int(adr, "read count")))
    tgt = []
    for cls in STORAGE_CLASSES:
        u = splice_usage(replace(base, target_class=cls, target_bytes=Fraction(0), retention_hours=0))
        put = u.per_succeeded["oss.PutRequest"][1]
        tgt.append((cls, _int(put, "PUT count"), _int(u.target_gb * GB, "minimum size"), u.early_deletion_hours))
    u0 = splice_usage(base)
    accel = u0.per_task.get("oss.TransferAcceleration", ({}, Fraction(0)))[1]
    buckets = [(name, c.get("archive_direct_read"), c.get("redundancy"), c.get("storage_class"))
               for name, c in sorted(settings.buckets.items())]
    return Model(
        src=src, tgt=tgt, accel_gb=accel, splice_on_success=u0.splice_item_on_success,
        imm_start=scn.imm_billing_start, src_bytes=round(base.source_bytes), src_class=scn.source_storage_class,
        src_dr=scn.archive_direct_read, tgt_bytes=round(base.target_bytes), tgt_class=scn.target_storage_class,
        tgt_redundancy=scn.target_redundancy, retention_hours=base.retention_hours, buckets=buckets,
        lifecycle_lag_hours=getattr(settings, "lifecycle_lag_hours", 0))


__all__ = ["Model", "build_model"]
