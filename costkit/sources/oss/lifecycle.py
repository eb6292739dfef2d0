"""Lifecycle rules as the inventory reads them (GetBucketLifecycle through oss2) and stores them: one row of
`lifecycle_rules` per action of a rule (an expiration, or one storage-class transition).

Columns: the rule's `prefix` ('' = every key), its tags (`tag_pairs`: key || chr(31) || value; an object
matches when it carries all of them), the first `Filter/Not` (keys under `not_prefix`, and carrying
`not_tag_pairs` when given, are excluded), the object-size bounds in bytes, and the action: `days` (counted
from LastModified rounded up to 00:00 UTC, operations-facts.md section 1) or `before_date` (Date or
CreatedBeforeDate: objects last modified before it), and a transition's `storage_class`.

The cost engine applies the rows (costkit.engine.history_sql, target CTEs). Rules on access time
(`AtimeBase`, `IsAccessTime`), delete markers and non-current versions do not change what a splice target
costs under costkit's model and are not stored; each one is counted in a warning.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone

UTC = timezone.utc
SEP = "\x1f"
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")


def tag_pairs(tags: dict | None) -> list[str] | None:
    """A tag mapping as sorted `key chr(31) value` strings; None for no tags."""
    if not tags:
        return None
    return sorted(f"{k}{SEP}{v}" for k, v in tags.items())


def _instant(d) -> datetime | None:
    """A rule date (oss2 gives a `date`) as 00:00 UTC of that day."""
    if d is None:
        return None
    if isinstance(d, datetime):
        return d.astimezone(UTC)
    if isinstance(d, date):
        return datetime.combine(d, time(0), UTC)
    return None


def _tags_of(tagging) -> dict | None:
    rule = getattr(getattr(tagging, "tag_set", None), "tagging_rule", None)
    return dict(rule) if rule else None


def rule_rows(bucket: str, rules) -> tuple[list[tuple], list[str]]:
    """(rows for `lifecycle_rules` without checked_at, warnings) of oss2 `LifecycleRule`s."""
    rows, skipped = [], []
    seq = 0
    for r in rules:
        f = getattr(r, "filter", None)
        nots = list(getattr(f, "filter_not", None) or [])
        not_prefix = not_tags = None
        if nots:
            n = nots[0]
            not_prefix = n.prefix or ""
            tag = getattr(n, "tag", None)
            if tag is not None and tag.key:
                not_tags = tag_pairs({tag.key: tag.value or ""})
        if len(nots) > 1:
            skipped.append(f"rule {r.id!r}: only the first of {len(nots)} Not filters is applied")
        base = (bucket, r.id, None, str(r.status or "").lower() == "enabled", r.prefix or "",
                tag_pairs(_tags_of(getattr(r, "tagging", None))), not_prefix, not_tags,
                getattr(f, "object_size_greater_than", None), getattr(f, "object_size_less_than", None))
        if getattr(r, "atime_base", 0):
            skipped.append(f"rule {r.id!r} counts from the last access time: not applied")
            continue
        e = r.expiration
        if e is not None and (e.days is not None or e.date is not None or e.created_before_date is not None):
            rows.append(base[:2] + (seq,) + base[3:] + ("expire", e.days, _instant(e.date or e.created_before_date),
                                                        None))
            seq += 1
        for t in r.storage_transitions or []:
            if getattr(t, "is_access_time", None):
                skipped.append(f"rule {r.id!r}: a transition on access time is not applied")
                continue
            if t.storage_class not in STORAGE_CLASSES:
                skipped.append(f"rule {r.id!r}: transition to unknown class {t.storage_class!r} not applied")
                continue
            rows.append(base[:2] + (seq,) + base[3:] + ("transition", t.days, _instant(t.created_before_date),
                                                        t.storage_class))
            seq += 1
    return rows, [f"bucket {bucket}: {w}" for w in skipped]


def write_rules(con, bucket: str, rows: list[tuple], checked_at: datetime) -> None:
    """Replace the stored rules of `bucket` by `rows` (inside the caller's transaction)."""
    con.execute("DELETE FROM lifecycle_rules WHERE bucket = ?", [bucket])
    if rows:
        con.executemany(
            "INSERT INTO lifecycle_rules (bucket, rule_id, seq, enabled, prefix, tag_pairs, not_prefix, "
            "not_tag_pairs, size_gt, size_lt, action, days, before_date, storage_class, checked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [r + (checked_at,) for r in rows])


def rules_frame(store):
    """The stored lifecycle rules as a DataFrame, by bucket and position."""
    with store._lock:
        return store._con.execute("SELECT * FROM lifecycle_rules ORDER BY bucket, seq").df()
