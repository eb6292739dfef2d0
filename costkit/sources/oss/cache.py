"""The store side of the inventory: which URIs and buckets need reading, and writing the facts read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from costkit.sources.oss.facts import BucketFact, Fact
from costkit.sources.oss.lifecycle import write_rules

UTC = timezone.utc


def pending_uris(store, *, region: str | None = None, max_age: timedelta | None = None,
                 now: datetime | None = None):
    """[(uri, task region, cached class)] that the stored tasks reference (every source; the targets of
    Succeeded tasks: a failed task wrote none) and that are unknown or were checked before now - max_age."""
    now = now or datetime.now(UTC)
    where = "WHERE region = $region" if region else ""
    stale = "o.uri IS NULL" + (" OR o.checked_at < $cutoff" if max_age is not None else "")
    params = {}
    if region:
        params["region"] = region
    if max_age is not None:
        params["cutoff"] = now - max_age
    sql = f"""
        WITH refs AS (
            SELECT region, unnest(sources).uri AS uri FROM tasks {where}
            UNION ALL
            SELECT region, target_uri FROM tasks WHERE status = 'Succeeded' {where.replace('WHERE', 'AND')}
        ), u AS (
            SELECT uri, min(region) AS region FROM refs WHERE uri IS NOT NULL GROUP BY uri
        )
        SELECT u.uri, u.region, o.storage_class FROM u LEFT JOIN objects o ON o.uri = u.uri
        WHERE {stale}
        ORDER BY u.uri"""
    with store._lock:
        return store._con.execute(sql, params).fetchall()


def known_buckets(store, names, max_age, now) -> dict:
    """{bucket: (found, location, default class)} of the stored bucket facts still fresh at `now`."""
    if not names:
        return {}
    with store._lock:
        rows = store._con.execute(
            "SELECT bucket, found, location, storage_class, checked_at FROM buckets WHERE bucket IN "
            "(SELECT unnest($names))", {"names": sorted(names)}).fetchall()
    out = {}
    for b, found, loc, cls, checked in rows:
        if max_age is not None and checked < now - max_age:
            continue
        out[b] = (found, loc, cls)
    return out


_OBJ_SCHEMA = pa.schema([
    ("uri", pa.string()), ("bucket", pa.string()), ("key", pa.string()), ("size", pa.int64()),
    ("storage_class", pa.string()), ("last_modified", pa.timestamp("us", tz="UTC")),
    ("restore_state", pa.string()), ("restore_expiry", pa.timestamp("us", tz="UTC")), ("gone", pa.bool_()),
    ("via", pa.string()),
])


def write_facts(store, facts: list[Fact], checked_at: datetime) -> None:
    """Upsert object facts in one transaction; `gone_since` keeps the first check that saw the object gone."""
    if not facts:
        return
    cols = {name: [getattr(f, name) for f in facts] for name in _OBJ_SCHEMA.names}
    table = pa.Table.from_pydict(cols, schema=_OBJ_SCHEMA)
    with store.transaction():
        con = store._con
        con.register("_costkit_facts", table)
        try:
            con.execute("""
                INSERT INTO objects (uri, bucket, key, size, storage_class, last_modified, restore_state,
                                     restore_expiry, gone, gone_since, checked_at, via)
                SELECT uri, bucket, key, size, storage_class, last_modified, restore_state, restore_expiry, gone,
                       CASE WHEN gone THEN $at END, $at, via FROM _costkit_facts
                ON CONFLICT (uri) DO UPDATE SET
                    bucket = excluded.bucket, key = excluded.key,
                    size = CASE WHEN excluded.gone THEN objects.size ELSE excluded.size END,
                    storage_class = CASE WHEN excluded.gone THEN objects.storage_class ELSE excluded.storage_class END,
                    last_modified = CASE WHEN excluded.gone THEN objects.last_modified ELSE excluded.last_modified END,
                    restore_state = excluded.restore_state, restore_expiry = excluded.restore_expiry,
                    gone_since = CASE WHEN excluded.gone THEN coalesce(objects.gone_since, excluded.gone_since) END,
                    tag_pairs = CASE WHEN excluded.gone OR excluded.last_modified IS DISTINCT FROM objects.last_modified
                                     THEN NULL ELSE objects.tag_pairs END,
                    gone = excluded.gone, checked_at = excluded.checked_at, via = excluded.via
            """, {"at": checked_at})
        finally:
            con.unregister("_costkit_facts")


def write_buckets(store, facts: list[BucketFact], checked_at: datetime) -> None:
    if not facts:
        return
    rows = [(f.bucket, f.found, f.location, f.storage_class, f.redundancy, f.transfer_acceleration,
             f.archive_direct_read, f.archive_direct_read_source, checked_at) for f in facts]
    with store.transaction():
        store._con.executemany(
            "INSERT OR REPLACE INTO buckets (bucket, found, location, storage_class, redundancy, "
            "transfer_acceleration, archive_direct_read, archive_direct_read_source, checked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for f in facts:
            # A gone bucket has no rules; a denied GetBucketLifecycle keeps what an earlier run read.
            if f.lifecycle is not None or not f.found:
                write_rules(store._con, f.bucket, f.lifecycle or [], checked_at)


def tag_targets(store) -> list[tuple[str, str, str, str | None]]:
    """[(uri, bucket, key, location)] of present target objects whose tags are not read yet, in buckets
    with an enabled rule that filters on tags."""
    with store._lock:
        return store._con.execute("""
            SELECT DISTINCT o.uri, o.bucket, o.key, b.location FROM objects o
            JOIN tasks t ON t.target_uri = o.uri AND t.status = 'Succeeded'
            LEFT JOIN buckets b ON b.bucket = o.bucket
            WHERE NOT o.gone AND o.tag_pairs IS NULL AND o.bucket IN (
                SELECT bucket FROM lifecycle_rules
                WHERE enabled AND (tag_pairs IS NOT NULL OR not_tag_pairs IS NOT NULL))
            ORDER BY o.uri""").fetchall()


def write_tags(store, rows: list[tuple[str, list]]) -> None:
    """Store object tags [(uri, tag pairs)] in one transaction."""
    if rows:
        with store.transaction():
            store._con.executemany("UPDATE objects SET tag_pairs = ? WHERE uri = ?", [(t, u) for u, t in rows])


def objects_frame(store):
    """The cached object facts as a DataFrame (one row per URI)."""
    with store._lock:
        return store._con.execute("SELECT * FROM objects ORDER BY uri").df()


def buckets_frame(store):
    """The cached bucket facts as a DataFrame."""
    with store._lock:
        return store._con.execute("SELECT * FROM buckets ORDER BY bucket").df()
