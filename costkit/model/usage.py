"""The usage model of one splice: which billable quantities a task causes, by item key.

Units: calls, requests, GB (1024^3 bytes) and GB-hour. MB = 1024^2 bytes. The same model serves
forecasts (an average task) and, later, the priced history (real tasks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from costkit.core.money import round_half_up_int, to_fraction

GB = 1024**3
MB = 1024**2
KB = 1024
COLD_CLASSES = ("ColdArchive", "DeepColdArchive")
MIN_SIZE_CLASSES = ("IA", "Archive", "ColdArchive", "DeepColdArchive")


@dataclass
class SpliceProfile:
    """What one splice looks like. Sizes in bytes (exact); retention in hours or None (kept)."""

    sources: Fraction
    source_bytes: Fraction
    source_class: str
    archive_direct_read: bool
    target_bytes: Fraction
    target_class: str
    target_redundancy: str
    retention_hours: int | None
    accelerated_gb: Fraction
    get_per_source: int = 1
    head_per_source: int = 1
    put_per_task: int = 1
    charge_failed_splices: bool = False
    min_billable_kb: Fraction = Fraction(64)
    min_storage_days: dict = field(default_factory=dict)
    # History only: the Archive source was restored when the task read it (readable; reads of a restored
    # object are free, so no direct-read retrieval). Forecasts leave it False.
    source_restored: bool = False


@dataclass
class SpliceUsage:
    """Quantities per task, split by whether they need the task to succeed.

    `per_task` and `per_succeeded` map item key -> (selectors, quantity per task, in the item's unit).
    Storage is described by `target_gb` (billable GB of one target), `retention_hours` and
    `early_deletion_hours` (GB-hours charged once at deletion, per GB).
    """

    per_task: dict
    per_succeeded: dict
    splice_item_on_success: bool
    target_gb: Fraction
    target_selectors: dict
    retention_hours: int | None
    early_deletion_hours: int
    tasks_can_succeed: bool
    warnings: list[str]


def retention_hours(days) -> int | None:
    """Retention in whole hours (days x 24, rounded half-up), or None when targets are kept."""
    return None if days is None else round_half_up_int(to_fraction(days) * 24)


def billable_bytes(size_bytes: Fraction, storage_class: str, min_kb: Fraction) -> Fraction:
    """Bytes billed for storage: IA and colder bill at least `min_kb` KB (64 KB by default)."""
    if storage_class in MIN_SIZE_CLASSES:
        return max(size_bytes, min_kb * KB)
    return size_bytes


def splice_usage(p: SpliceProfile) -> SpliceUsage:
    """The quantities one task causes under the usage model (see README, 'Usage model')."""
    warnings = []
    src = {"storage_class": p.source_class}
    readable = True
    if p.source_class == "Archive" and not p.archive_direct_read and not p.source_restored:
        readable = False
        warnings.append("source_storage_class is Archive without archive_direct_read: IMM cannot read "
                        "unrestored Archive sources, so every task is modelled as failed (no splice fee, no "
                        "target). Only HeadObject requests are priced; GetObject returns 4xx, which OSS "
                        "does not bill. Restore costs are not modelled.")
    if p.source_class in COLD_CLASSES:
        warnings.append(f"source_storage_class is {p.source_class}: sources must be restored before IMM can "
                        "read them. Restore retrieval, restore requests and the temporary Standard copy "
                        "(TempStorageCAStd) are NOT priced; reads are priced as if the objects were restored.")
    per_task: dict = {}
    per_succeeded: dict = {}
    reads = p.sources * (p.get_per_source if readable else 0)
    per_task["oss.GetRequest"] = (src, p.sources * p.head_per_source + reads)
    source_gb = reads * p.source_bytes / GB
    if p.source_class == "IA":
        per_task["oss.IaRetrieval"] = ({}, source_gb)
    if p.source_class == "Archive" and p.archive_direct_read and not p.source_restored:
        per_task["oss.ArchiveDirectRead"] = ({}, source_gb)
    if p.accelerated_gb:
        per_task["oss.TransferAcceleration"] = ({}, p.accelerated_gb)
    tgt = {"storage_class": p.target_class, "redundancy": p.target_redundancy}
    per_succeeded["oss.PutRequest"] = ({"storage_class": p.target_class}, Fraction(p.put_per_task))
    min_hours = round_half_up_int(to_fraction(p.min_storage_days.get(p.target_class, 0)) * 24)
    early = 0
    if p.retention_hours is not None and p.retention_hours < min_hours:
        early = min_hours - p.retention_hours
    return SpliceUsage(
        per_task=per_task, per_succeeded=per_succeeded, splice_item_on_success=not p.charge_failed_splices,
        target_gb=billable_bytes(p.target_bytes, p.target_class, p.min_billable_kb) / GB,
        target_selectors=tgt, retention_hours=p.retention_hours, early_deletion_hours=early,
        tasks_can_succeed=readable, warnings=warnings)
