"""Task records as rows: the column sets, the Arrow batch an upsert registers, and the SQL that merges it.

Upsert rules (`Store.upsert_tasks`):
- a final status (Succeeded, Failed) replaces Running, never the reverse; a record with a lower status rank
  only fills fields that the stored row lacks (e.g. Tags that a notification does not carry);
- fields missing from the incoming record (None, empty Tags or Sources) never erase stored ones;
- a record that changes nothing counts as unchanged: only last_seen moves; first_seen is kept;
- `origin` says where the row's latest change came from: it is kept when a record changes nothing, and
  set to the incoming origin when the record adds or changes data.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pyarrow as pa

from costkit.core.errors import BadInput
from costkit.sources.imm.taskrecord import FINAL_STATUSES, OPTION_KEYS, ORIGINS, STATUSES


# One encoder: json.dumps with options builds a new encoder on every call, which bulk ingest felt.
_TAGS_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _tags_column(values: list) -> list:
    """Tags texts for a batch; equal tag sets (common: one job tag on many tasks) are encoded once."""
    cache: dict = {}
    out = []
    for t in values:
        if not t:
            out.append(None)
            continue
        try:
            # Value types are part of the key: 1, 1.0 and True are equal in Python but not in JSON.
            key = tuple((k, v, v.__class__) for k, v in t.items())
            text = cache.get(key)
            if text is None:
                text = cache[key] = _TAGS_ENCODER.encode(t)
        except TypeError:  # an unhashable tag value (list, object): encode it directly
            text = _TAGS_ENCODER.encode(t)
        out.append(text)
    return out


_TS = pa.timestamp("us", tz="UTC")
_BATCH_SCHEMA = pa.schema([
    ("rank", pa.int8()),
    ("region", pa.string()),
    ("project", pa.string()),
    ("task_id", pa.string()),
    ("task_type", pa.string()),
    ("status", pa.string()),
    ("code", pa.string()),
    ("message", pa.string()),
    ("start_time", _TS),
    ("end_time", _TS),
    ("sources", pa.list_(pa.struct([("uri", pa.string()), ("rotate", pa.int32())]))),
    ("target_uri", pa.string()),
    ("image_format", pa.string()),
    ("direction", pa.string()),
    ("scale_type", pa.string()),
    ("align", pa.int32()),
    ("padding", pa.int32()),
    ("margin", pa.int32()),
    ("background_color", pa.string()),
    ("quality", pa.int32()),
    ("tags", pa.string()),
    ("user_data", pa.string()),
    ("origin", pa.string()),
    ("key_hash", pa.int64()),
])

KEY = ("region", "project", "task_id")
# Fields that belong to the task's outcome: taken as a whole from the record that wins the status.
_OUTCOME = ("code", "message", "end_time")
# Fields that describe the task: a missing value never erases a stored one.
_DESCRIPTIVE = ("task_type", "start_time", "sources", "target_uri", "image_format", *OPTION_KEYS, "tags",
                "user_data")
TASK_COLUMNS = (*KEY, "task_type", "status", "code", "message", "start_time", "end_time", "sources",
                "target_uri", "image_format", *OPTION_KEYS, "tags", "user_data", "origin", "first_seen",
                "last_seen")
_RECORD_COLUMNS = ("region", "project", "task_id", "task_type", "status", "code", "message", "start_time",
                   "end_time", "sources", "target_uri", "image_format", "tags", "user_data", "origin")
_STATUS_SET, _FINAL_SET, _ORIGIN_SET = frozenset(STATUSES), frozenset(FINAL_STATUSES), frozenset(ORIGINS)
# The fields that upserts compare (everything but the key, origin and the seen times).
DATA_FIELDS = ("status", *_OUTCOME, *_DESCRIPTIVE)
BATCH_FIELDS = tuple(c for c in TASK_COLUMNS if c not in ("first_seen", "last_seen"))


def digest_sql(prefix: str) -> str:
    """SQL for the digest of the data fields of `prefix` (a table or alias).

    DuckDB's hash() may change between versions; a stale digest only sends a row through the full merge,
    which rewrites it.
    """
    return f"hash({', '.join(f'{prefix}.{c}' for c in DATA_FIELDS)})"


def _key_hash(region: str, project: str, task_id: str) -> int:
    """A stable signed 64-bit hash of the key (blake2b: unlike DuckDB's hash(), fixed across versions)."""
    digest = hashlib.blake2b(f"{region}\x1f{project}\x1f{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def dedupe(records: list[dict]) -> list[dict]:
    """One record per key: the higher status rank wins, then the later record."""
    best: dict[tuple, int] = {}
    for i, r in enumerate(records):
        key = (r.get("region"), r.get("project"), r.get("task_id"))
        j = best.get(key)
        if j is None or (r.get("status") in _FINAL_SET) >= (records[j].get("status") in _FINAL_SET):
            best[key] = i
    if len(best) == len(records):
        return records
    return [records[i] for i in sorted(best.values())]


def _check_times(values: list, name: str) -> list:
    for v in values:
        if v is not None and (not isinstance(v, datetime) or v.tzinfo is None or v.utcoffset() is None):
            raise ValueError(f"{name} must be a timezone-aware datetime, got {v!r}")
    return values


def batch_table(records: list[dict]) -> pa.Table:
    """Column-wise Arrow table of (deduplicated) records; checks what the store's constraints need."""
    # Built column by column: several times faster than row by row for large batches.
    get = dict.get
    cols = {k: [get(r, k) for r in records] for k in _RECORD_COLUMNS}
    for k in KEY:
        if not all(cols[k]):
            i = next(i for i, v in enumerate(cols[k]) if not v)
            raise BadInput("missing", field=f"record {i}: {k}")
    if not _STATUS_SET.issuperset(cols["status"]):
        i = next(i for i, v in enumerate(cols["status"]) if v not in _STATUS_SET)
        raise BadInput(f"{cols['status'][i]!r} is not one of {', '.join(STATUSES)}", field=f"record {i}: status")
    if not _ORIGIN_SET.issuperset(cols["origin"]):
        i = next(i for i, v in enumerate(cols["origin"]) if v not in _ORIGIN_SET)
        raise BadInput(f"{cols['origin'][i]!r} is not one of {', '.join(ORIGINS)}", field=f"record {i}: origin")
    _check_times(cols["start_time"], "start_time")
    _check_times(cols["end_time"], "end_time")
    cols["sources"] = [s or None for s in cols["sources"]]
    cols["tags"] = _tags_column(cols["tags"])
    options = [get(r, "options") or {} for r in records]
    for k in OPTION_KEYS:
        cols[k] = [o.get(k) for o in options]
    cols["rank"] = [1 if s in _FINAL_SET else 0 for s in cols["status"]]
    cols["key_hash"] = [_key_hash(*k) for k in zip(cols["region"], cols["project"], cols["task_id"])]
    return pa.Table.from_pydict(cols, schema=_BATCH_SCHEMA)


JOIN = ("{t}.key_hash = {m}.key_hash AND {t}.region = {m}.region AND {t}.project = {m}.project "
        "AND {t}.task_id = {m}.task_id")


def merge_sql() -> str:
    """SELECT that merges the deduplicated batch with the stored rows; one row per batch key.

    In `j`, batch values are `b_<col>` and stored ones `t_<col>` (NULL for a new key).
    """
    fields = ("status", *_OUTCOME, *_DESCRIPTIVE)
    merged = ["CASE WHEN win THEN b_status ELSE t_status END AS status"]
    for c in _OUTCOME:
        merged.append(f"CASE WHEN NOT win THEN t_{c} WHEN b_status IS DISTINCT FROM t_status THEN b_{c} "
                      f"ELSE coalesce(b_{c}, t_{c}) END AS {c}")
    for c in _DESCRIPTIVE:
        merged.append(f"CASE WHEN win THEN coalesce(b_{c}, t_{c}) ELSE coalesce(t_{c}, b_{c}) END AS {c}")
    changed = " OR ".join(f"m.{c} IS DISTINCT FROM m.t_{c}" for c in fields)
    pairs = ", ".join(f"b.{c} AS b_{c}, t.{c} AS t_{c}" for c in fields)
    return f"""
        WITH b AS (
            SELECT * FROM _costkit_batch
        ), j AS (
            SELECT b.region, b.project, b.task_id, b.key_hash, b.origin AS b_origin, t.origin AS t_origin,
                   t.first_seen AS t_first_seen, t.last_seen AS t_last_seen,
                   t.task_id IS NULL AS is_new,
                   -- the batch wins the status unless it would take a final status back to Running
                   (t.task_id IS NULL OR b.rank >= CASE WHEN t.status IN ('Succeeded', 'Failed') THEN 1 ELSE 0 END)
                       AS win,
                   {pairs}
            FROM b LEFT JOIN tasks t
              ON t.key_hash = b.key_hash AND t.region = b.region AND t.project = b.project AND t.task_id = b.task_id
        ), m AS (
            SELECT j.*, {", ".join(merged)} FROM j
        )
        SELECT m.region, m.project, m.task_id, m.key_hash, {", ".join(f"m.{c}" for c in fields)},
               m.is_new, (NOT m.is_new AND ({changed})) AS changed,
               (NOT m.is_new AND m.sources IS DISTINCT FROM m.t_sources) AS sources_changed,
               CASE WHEN m.is_new OR ({changed}) THEN m.b_origin ELSE m.t_origin END AS origin,
               coalesce(m.t_first_seen, $seen_at) AS first_seen,
               greatest(coalesce(m.t_last_seen, $seen_at), $seen_at) AS last_seen
        FROM m
    """
