"""The durable task history: one DuckDB file with a versioned schema.

Tables (see `_migration_1`):
- `tasks`, keyed by (region, project, task_id): the normalised records of `costkit.taskrecord`, with
  first_seen and last_seen;
- `collection_runs`: one row per collection run (window, pages, counts, errors, ok);
- `checkpoints`: per (region, project), the instant up to which collection is complete;
- `imports`: one row per imported file and (region, project), with the span of task start times it held;
- `schema_version`: the migrations applied.

Upsert rules (`Store.upsert_tasks`):
- a final status (Succeeded, Failed) replaces Running, never the reverse; a record with a lower status rank
  only fills fields that the stored row lacks (e.g. Tags that a notification does not carry);
- fields missing from the incoming record (None, empty Tags or Sources) never erase stored ones;
- a record that changes nothing counts as unchanged: only last_seen moves; first_seen is kept;
- `origin` says where the row's latest change came from: it is kept when a record changes nothing, and
  set to the incoming origin when the record adds or changes data.

Every public write runs in one transaction (`Store.transaction()` nests, so a caller can write a page of
tasks and its checkpoint atomically). DuckDB's write-ahead log makes a committed transaction survive a
SIGKILL; an uncommitted one is gone when the file is reopened. A Store serialises calls from several
threads with a lock; a second process that opens the same file waits up to `lock_timeout` seconds.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from costkit.core.errors import BadInput, RuntimeFailure
from costkit.core.timeutil import parse_instant
from costkit.sources.imm.taskrecord import FINAL_STATUSES, OPTION_KEYS, ORIGINS, STATUSES

UTC = timezone.utc
IMM_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class UpsertCounts:
    """Distinct task keys in a batch that were new, changed a stored row, or changed nothing."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: "UpsertCounts") -> "UpsertCounts":
        return UpsertCounts(self.new + other.new, self.updated + other.updated, self.unchanged + other.unchanged)


# --- schema ---------------------------------------------------------------------------------------

_SOURCE_TYPE = "STRUCT(uri VARCHAR, rotate INTEGER)[]"


def _migration_1(con) -> None:
    con.execute(f"""
        CREATE TABLE tasks (
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            task_id VARCHAR NOT NULL,
            task_type VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('Running', 'Succeeded', 'Failed')),
            code VARCHAR,
            message VARCHAR,
            start_time TIMESTAMPTZ,
            end_time TIMESTAMPTZ,
            sources {_SOURCE_TYPE},
            target_uri VARCHAR,
            image_format VARCHAR,
            direction VARCHAR,
            scale_type VARCHAR,
            align INTEGER,
            padding INTEGER,
            margin INTEGER,
            background_color VARCHAR,
            quality INTEGER,
            tags VARCHAR,            -- JSON object text, keys sorted; NULL when the task has none known
            user_data VARCHAR,
            origin VARCHAR NOT NULL CHECK (origin IN ('listtasks', 'notification', 'import')),
            first_seen TIMESTAMPTZ NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL,
            key_hash BIGINT NOT NULL,  -- _key_hash(region, project, task_id): a cheap probe for known keys
            PRIMARY KEY (region, project, task_id)
        )""")
    con.execute("CREATE SEQUENCE collection_run_id START 1")
    con.execute("""
        CREATE TABLE collection_runs (
            id BIGINT PRIMARY KEY DEFAULT nextval('collection_run_id'),
            kind VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            window_start TIMESTAMPTZ,
            window_end TIMESTAMPTZ,
            pages INTEGER,
            new INTEGER,
            updated INTEGER,
            unchanged INTEGER,
            errors VARCHAR,          -- JSON array of strings
            ok BOOLEAN
        )""")
    con.execute("""
        CREATE TABLE checkpoints (
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            "until" TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (region, project)
        )""")
    con.execute("CREATE SEQUENCE import_id START 1")
    con.execute("""
        CREATE TABLE imports (
            id BIGINT PRIMARY KEY DEFAULT nextval('import_id'),
            file VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            "at" TIMESTAMPTZ NOT NULL,
            region VARCHAR,
            project VARCHAR,
            window_start TIMESTAMPTZ,  -- earliest and latest task start time in the file
            window_end TIMESTAMPTZ,
            counts VARCHAR NOT NULL    -- JSON object: new, updated, unchanged, skipped, bad
        )""")


def _migration_objects_buckets(con) -> None:
    """OSS facts cached by `costkit inventory` (costkit.inventory documents the columns)."""
    con.execute("""
        CREATE TABLE objects (
            uri VARCHAR PRIMARY KEY,     -- oss://bucket/key, as the tasks reference it
            bucket VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            size BIGINT,
            storage_class VARCHAR,
            last_modified TIMESTAMPTZ,
            restore_state VARCHAR,       -- NULL (never requested), 'ongoing' or 'restored'
            restore_expiry TIMESTAMPTZ,
            gone BOOLEAN NOT NULL,
            gone_since TIMESTAMPTZ,      -- the first check that found the object missing
            checked_at TIMESTAMPTZ NOT NULL,
            via VARCHAR NOT NULL         -- 'list', 'head' or 'bucket' (the bucket is gone)
        )""")
    con.execute("""
        CREATE TABLE buckets (
            bucket VARCHAR PRIMARY KEY,
            found BOOLEAN NOT NULL,
            location VARCHAR,
            storage_class VARCHAR,
            redundancy VARCHAR,
            transfer_acceleration BOOLEAN,
            archive_direct_read BOOLEAN,
            archive_direct_read_source VARCHAR,  -- 'api', 'config' or 'default'
            checked_at TIMESTAMPTZ NOT NULL
        )""")


def _migration_bills(con) -> None:
    """Bill imports and lines (`costkit.bills.migration_bills` documents the columns)."""
    from costkit.store.bills import migration_bills
    migration_bills(con)


def _digest_sql(prefix: str) -> str:
    """SQL for the digest of the data fields of `prefix` (a table or alias).

    DuckDB's hash() may change between versions; a stale digest only sends a row through the full merge,
    which rewrites it.
    """
    return f"hash({', '.join(f'{prefix}.{c}' for c in _DATA_FIELDS)})"


def _migration_task_digest(con) -> None:
    """tasks.digest: a hash of a row's data fields, so re-seen identical tasks skip the full merge."""
    con.execute("ALTER TABLE tasks ADD COLUMN digest UBIGINT")
    con.execute(f"UPDATE tasks SET digest = {_digest_sql('tasks')}")


# Ordered; never edit or reorder an applied migration: append a new one (version = index + 1).
MIGRATIONS = [_migration_1, _migration_objects_buckets, _migration_bills, _migration_task_digest]


# --- helpers --------------------------------------------------------------------------------------

def _aware(value, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _instant_arg(value, name: str) -> datetime:
    """An aware datetime from an API argument: a datetime, or ISO 8601 text with an offset."""
    if isinstance(value, str):
        return parse_instant(value, field=name).astimezone(UTC)
    return _aware(value, name)


def _now() -> datetime:
    return datetime.now(UTC)


def _py_dt(value) -> datetime | None:
    """A DuckDB TIMESTAMPTZ value as an aware UTC datetime (None stays None)."""
    if value is None or value is pd.NaT:
        return None
    return value.astimezone(UTC)


# One encoder: json.dumps with options builds a new encoder on every call, which bulk ingest felt.
_TAGS_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _present(value) -> bool:
    """False for None, NaN and pd.NA (what a missing value becomes in a DataFrame)."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and value != value)


def _none_for_missing(col: pd.Series) -> pd.Series:
    """An object column with None where the value is missing (not NaN or pd.NA)."""
    return pd.Series([v if _present(v) else None for v in col], index=col.index, dtype=object)


def _tags_text(tags) -> str | None:
    """Tags as compact JSON text with sorted keys (so equal tags compare equal); None when empty."""
    if not tags:
        return None
    return _TAGS_ENCODER.encode(tags)


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

_KEY = ("region", "project", "task_id")
# Fields that belong to the task's outcome: taken as a whole from the record that wins the status.
_OUTCOME = ("code", "message", "end_time")
# Fields that describe the task: a missing value never erases a stored one.
_DESCRIPTIVE = ("task_type", "start_time", "sources", "target_uri", "image_format", *OPTION_KEYS, "tags",
                "user_data")
_TASK_COLUMNS = (*_KEY, "task_type", "status", "code", "message", "start_time", "end_time", "sources",
                 "target_uri", "image_format", *OPTION_KEYS, "tags", "user_data", "origin", "first_seen",
                 "last_seen")
_RECORD_COLUMNS = ("region", "project", "task_id", "task_type", "status", "code", "message", "start_time",
                   "end_time", "sources", "target_uri", "image_format", "tags", "user_data", "origin")
_STATUS_SET, _FINAL_SET, _ORIGIN_SET = frozenset(STATUSES), frozenset(FINAL_STATUSES), frozenset(ORIGINS)
# The fields that upserts compare (everything but the key, origin and the seen times).
_DATA_FIELDS = ("status", *_OUTCOME, *_DESCRIPTIVE)
_BATCH_FIELDS = tuple(c for c in _TASK_COLUMNS if c not in ("first_seen", "last_seen"))


def _key_hash(region: str, project: str, task_id: str) -> int:
    """A stable signed 64-bit hash of the key (blake2b: unlike DuckDB's hash(), fixed across versions)."""
    digest = hashlib.blake2b(f"{region}\x1f{project}\x1f{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _dedupe(records: list[dict]) -> list[dict]:
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


def _batch_table(records: list[dict]) -> pa.Table:
    """Column-wise Arrow table of (deduplicated) records; checks what the store's constraints need."""
    # Built column by column: several times faster than row by row for large batches.
    get = dict.get
    cols = {k: [get(r, k) for r in records] for k in _RECORD_COLUMNS}
    for k in _KEY:
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


_JOIN = ("{t}.key_hash = {m}.key_hash AND {t}.region = {m}.region AND {t}.project = {m}.project "
         "AND {t}.task_id = {m}.task_id")


def _merge_sql() -> str:
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


def _quietly(fn, *args) -> None:
    # Cleanup after a failed statement must not hide the error that caused it.
    try:
        fn(*args)
    except duckdb.Error:
        pass


class Store:
    """An open history store. Use `Store.open(path)`, preferably as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str):
        self._con = con
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path, *, create: bool = True, lock_timeout: float = 5.0) -> "Store":
        """Open (and with `create`, make) the store at `path`, applying pending migrations; return it.

        Raises BadInput when the file is not a DuckDB database, or is missing and `create` is false;
        RuntimeFailure when another process keeps it locked for longer than `lock_timeout` seconds.
        """
        path = str(path)
        if not create and not Path(path).exists():
            raise BadInput("no task store here; run `costkit collect` or `costkit import` first", path=path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                con = duckdb.connect(path)
                break
            except duckdb.IOException as e:
                text = str(e)
                if "lock" in text.lower():
                    if time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                    raise RuntimeFailure(f"{path}: the store is in use by another costkit process; "
                                         "try again when it has finished") from None
                if "not a valid DuckDB database" in text:
                    raise BadInput("not a costkit store (not a DuckDB database file)", path=path) from None
                raise RuntimeFailure(f"{path}: cannot open the store: {text}") from None
        # TIMESTAMPTZ values come back in UTC whatever the host's zone.
        con.execute("SET TimeZone = 'UTC'")
        store = cls(con, path)
        try:
            store._migrate()
        except BaseException:
            con.close()
            raise
        return store

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to this file."""
        with self._lock:
            return self._con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL)")
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeFailure(f"{self.path}: the store has schema version {current}, newer than this costkit "
                                 f"understands ({len(MIGRATIONS)}); upgrade costkit")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            # Each migration and its version row commit together: a crash leaves the previous version.
            with self.transaction():
                MIGRATIONS[version - 1](con)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """Group writes into one transaction; nested blocks join the outermost one.

        An exception rolls back everything since the outermost block began.
        """
        with self._lock:
            if self._con is None:
                raise RuntimeFailure(f"{self.path}: the store is closed")
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN TRANSACTION")
            self._depth += 1
            try:
                yield self
            except BaseException as e:
                self._depth -= 1
                if outer:
                    _quietly(self._con.execute, "ROLLBACK")
                if isinstance(e, duckdb.Error):
                    raise RuntimeFailure(f"{self.path}: store write failed, nothing from it was kept: {e}") from e
                raise
            self._depth -= 1
            if outer:
                try:
                    self._con.execute("COMMIT")
                except duckdb.Error as e:
                    raise RuntimeFailure(f"{self.path}: commit failed: {e}") from None

    # --- tasks --------------------------------------------------------------------------------

    def upsert_tasks(self, records, *, seen_at: datetime) -> UpsertCounts:
        """Merge task records (dicts of `costkit.taskrecord`) into the store in one transaction.

        Returns the counts over distinct keys. Duplicate keys in one batch collapse to the record with the
        higher status rank, then the later one. Raises BadInput for a record without a key or with an
        unknown status, ValueError for a naive datetime.
        """
        seen_at = _aware(seen_at, "seen_at")
        records = _dedupe(list(records))
        if not records:
            return UpsertCounts()
        batch = _batch_table(records)
        with self.transaction():
            con = self._con
            con.register("_costkit_batch", batch)
            try:
                # One narrow probe (key hash and digest columns only) finds the two common cases:
                # every key new (collecting), or every task identical to its stored row (re-listing).
                # A different key with the same 64-bit key hash AND digest is not a practical concern.
                known, same = con.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE t.digest = {_digest_sql('b')}) "
                    "FROM _costkit_batch b JOIN tasks t ON t.key_hash = b.key_hash").fetchone()
                if not known:
                    cols = ", ".join(_BATCH_FIELDS)
                    con.execute(f"INSERT INTO tasks ({cols}, first_seen, last_seen, key_hash, digest) "
                                f"SELECT {cols}, $seen_at, $seen_at, key_hash, {_digest_sql('b')} "
                                f"FROM _costkit_batch b", {"seen_at": seen_at})
                    return UpsertCounts(len(records), 0, 0)
                if same == len(records):
                    con.execute(f"UPDATE tasks SET last_seen = greatest(tasks.last_seen, $seen_at) "
                                f"FROM _costkit_batch b WHERE {_JOIN.format(t='tasks', m='b')}",
                                {"seen_at": seen_at})
                    return UpsertCounts(0, 0, len(records))
                return self._merge(seen_at)
            finally:
                _quietly(con.unregister, "_costkit_batch")

    def _merge(self, seen_at: datetime) -> UpsertCounts:
        """Merge the registered batch with stored rows (inside the caller's transaction); return counts."""
        con = self._con
        con.execute(f"CREATE OR REPLACE TEMP TABLE _costkit_merge AS {_merge_sql()}", {"seen_at": seen_at})
        try:
            new, updated, unchanged = con.execute(
                "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE changed), "
                "count(*) FILTER (WHERE NOT is_new AND NOT changed) FROM _costkit_merge").fetchone()
            if new:
                cols = ", ".join(_TASK_COLUMNS)
                con.execute(f"INSERT INTO tasks ({cols}, key_hash, digest) SELECT {cols}, key_hash, "
                            f"{_digest_sql('m')} FROM _costkit_merge m WHERE is_new")
            # DuckDB rewrites an update of a LIST column as delete + insert, which is slow: the sources
            # column is written only where it changed (rare: a record filling a gap).
            join = _JOIN.format(t="tasks", m="m")
            if updated:
                sets = ", ".join(f"{c} = m.{c}" for c in _TASK_COLUMNS if c not in (*_KEY, "sources"))
                con.execute(f"UPDATE tasks SET {sets}, digest = {_digest_sql('m')} FROM _costkit_merge m "
                            f"WHERE m.changed AND {join}")
                con.execute(f"UPDATE tasks SET sources = m.sources FROM _costkit_merge m "
                            f"WHERE m.sources_changed AND {join}")
            if unchanged:
                # The digest is rewritten too: it heals digests from another DuckDB version.
                con.execute(f"UPDATE tasks SET last_seen = m.last_seen, digest = {_digest_sql('m')} "
                            f"FROM _costkit_merge m WHERE NOT m.is_new AND NOT m.changed AND {join}")
        finally:
            _quietly(con.execute, "DROP TABLE IF EXISTS _costkit_merge")
        return UpsertCounts(new, updated, unchanged)

    def tasks_frame(self, project=None, since=None, until=None, status=None, *, region=None) -> pd.DataFrame:
        """Stored tasks as a DataFrame, ordered by start time then key.

        Filters: project, region, status (Running/Succeeded/Failed), and start_time in [since, until)
        (aware datetimes, or ISO 8601 strings with an offset). Columns: the `tasks` table's; time columns are datetime64 in UTC; `sources` is a
        list of {"uri", "rotate"}; `tags` a dict; the integer options are nullable Int64.
        """
        if status is not None and status not in STATUSES:
            raise BadInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")
        where, params = [], []
        for col, value in (("project", project), ("region", region), ("status", status)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if since is not None:
            where.append("start_time >= ?")
            params.append(_instant_arg(since, "since"))
        if until is not None:
            where.append("start_time < ?")
            params.append(_instant_arg(until, "until"))
        sql = (f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY start_time NULLS LAST, region, project, task_id")
        with self._lock:
            df = self._con.execute(sql, params).df()
        for c in ("start_time", "end_time", "first_seen", "last_seen"):
            df[c] = pd.to_datetime(df[c], utc=True)
        for c in ("align", "padding", "margin", "quality"):
            df[c] = df[c].astype("Int64")
        df["sources"] = [[dict(x) for x in s] if _present(s) else [] for s in df["sources"]]
        df["tags"] = [json.loads(t) if _present(t) else {} for t in df["tags"]]
        for c in ("code", "message", "target_uri", "image_format", "direction", "scale_type", "background_color",
                  "user_data"):
            df[c] = _none_for_missing(df[c])
        return df

    def oldest_running_start(self, region: str, project: str) -> datetime | None:
        """Start time of the oldest task of (region, project) still stored as Running; None if none."""
        with self._lock:
            row = self._con.execute("SELECT min(start_time) FROM tasks WHERE region = ? AND project = ? "
                                    "AND status = 'Running'", [region, project]).fetchone()
        return _py_dt(row[0])

    def count_tasks(self, region=None, project=None) -> int:
        """The number of stored tasks, optionally for one region and/or project."""
        where, params = [], []
        for col, value in (("region", region), ("project", project)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = "SELECT count(*) FROM tasks" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._lock:
            return self._con.execute(sql, params).fetchone()[0]

    # --- collection runs and checkpoints ------------------------------------------------------

    def begin_run(self, kind: str, region: str, project: str, window_start, window_end) -> int:
        """Record the start of a collection run over [window_start, window_end); return its id."""
        with self.transaction():
            return self._con.execute(
                "INSERT INTO collection_runs (kind, region, project, started_at, window_start, window_end) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [kind, region, project, _now(), _aware(window_start, "window_start"),
                 _aware(window_end, "window_end")]).fetchone()[0]

    def finish_run(self, run_id: int, *, pages: int, new: int, updated: int, unchanged: int,
                   errors: list[str], ok: bool) -> None:
        """Record the end of a run. Only `ok` runs count as collected windows in `coverage`."""
        with self.transaction():
            found = self._con.execute(
                "UPDATE collection_runs SET finished_at = ?, pages = ?, new = ?, updated = ?, unchanged = ?, "
                "errors = ?, ok = ? WHERE id = ? RETURNING id",
                [_now(), pages, new, updated, unchanged, json.dumps([str(e) for e in errors]), bool(ok),
                 run_id]).fetchall()
            if not found:
                raise ValueError(f"no collection run with id {run_id}")

    def runs_frame(self, region=None, project=None) -> pd.DataFrame:
        """Collection runs, oldest first; `errors` is a list of strings."""
        where, params = [], []
        for col, value in (("region", region), ("project", project)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = ("SELECT * FROM collection_runs" + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY id")
        with self._lock:
            df = self._con.execute(sql, params).df()
        df["errors"] = [json.loads(e) if _present(e) else [] for e in df["errors"]]
        return df

    def last_ok_window_end(self, region: str, project: str, *, min_span: timedelta | None = None) -> datetime | None:
        """The latest window end of a successful collection run (optionally only runs whose window spans at
        least `min_span`); None if there is none. Window ends follow the collector's clock, not the wall
        clock."""
        sql = ("SELECT max(window_end) FROM collection_runs WHERE region = ? AND project = ? AND ok "
               "AND window_end IS NOT NULL")
        params: list = [region, project]
        if min_span is not None:
            sql += " AND window_end - window_start >= ?"
            params.append(min_span)
        with self._lock:
            row = self._con.execute(sql, params).fetchone()
        return _py_dt(row[0])

    def last_successful_run(self, region: str, project: str) -> datetime | None:
        """When the latest successful run for (region, project) finished; None if there was none."""
        with self._lock:
            row = self._con.execute(
                "SELECT max(finished_at) FROM collection_runs WHERE region = ? AND project = ? AND ok",
                [region, project]).fetchone()
        return _py_dt(row[0])

    def get_checkpoint(self, region: str, project: str) -> datetime | None:
        """The instant up to which (region, project) is collected; None for a new project."""
        with self._lock:
            row = self._con.execute('SELECT "until" FROM checkpoints WHERE region = ? AND project = ?',
                                    [region, project]).fetchone()
        return None if row is None else _py_dt(row[0])

    def set_checkpoint(self, region: str, project: str, until: datetime) -> None:
        """Set the checkpoint (as given, even if earlier: the collector decides). Joins an open transaction."""
        until = _aware(until, "until")
        with self.transaction():
            self._con.execute(
                'INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (region, project) '
                'DO UPDATE SET "until" = excluded."until", updated_at = excluded.updated_at',
                [region, project, until, _now()])

    # --- imports ------------------------------------------------------------------------------

    def record_import(self, file: str, kind: str, counts: dict, windows: dict | None = None) -> None:
        """Note an imported file. `windows` maps (region, project) to (earliest, latest) task start time."""
        at = _now()
        text = json.dumps(counts, sort_keys=True)
        with self.transaction():
            rows = [(file, kind, at, r, p, _aware(a, "window_start"), _aware(b, "window_end"), text)
                    for (r, p), (a, b) in (windows or {}).items()]
            if not rows:
                rows = [(file, kind, at, None, None, None, None, text)]
            self._con.executemany(
                'INSERT INTO imports (file, kind, "at", region, project, window_start, window_end, counts) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # --- coverage -----------------------------------------------------------------------------

    def coverage(self, region=None, project=None, *, now: datetime | None = None) -> pd.DataFrame:
        """Collected windows (merged) and the gaps between them, per (region, project).

        Windows come from successful collection runs ("collect") and from imported files ("import": the
        span of task start times in the file). Columns: region, project, kind ("collected" or "gap"),
        start, end (aware UTC), via ("collect", "import" or "collect+import" for collected windows), note.
        A trailing gap runs to `now`; the note of a gap says whether it is older than IMM's 7-day
        retention, i.e. whether its tasks may already be lost. A project with tasks but no recorded window
        gets one gap with no start.
        """
        now = _aware(now, "now") or _now()
        where, params = [], []
        for col, value in (("region", region), ("project", project)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        cond = (" AND " + " AND ".join(where)) if where else ""
        sql = f"""
            SELECT region, project, window_start AS s, window_end AS e, 'collect' AS via FROM collection_runs
             WHERE ok AND window_start IS NOT NULL AND window_end IS NOT NULL AND window_end >= window_start{cond}
            UNION ALL
            SELECT region, project, window_start, window_end, 'import' FROM imports
             WHERE region IS NOT NULL AND window_start IS NOT NULL{cond}
            ORDER BY region, project, s, e"""
        with self._lock:
            windows = self._con.execute(sql, params + params).fetchall()
            task_keys = self._con.execute(
                "SELECT DISTINCT region, project FROM tasks" + (f" WHERE {' AND '.join(where)}" if where else ""),
                params).fetchall()
        rows = []
        by_key: dict[tuple, list] = {}
        for r, p, s, e, via in windows:
            by_key.setdefault((r, p), []).append((_py_dt(s), _py_dt(e), via))
        for key in sorted(set(by_key) | set(task_keys)):
            spans = by_key.get(key)
            if not spans:
                rows.append((*key, "gap", None, now, None, "no collection run or import recorded"))
                continue
            merged = []
            for s, e, via in spans:
                if merged and s <= merged[-1][1]:
                    last = merged[-1]
                    last[1] = max(last[1], e)
                    last[2].add(via)
                else:
                    merged.append([s, e, {via}])
            prev_end = None
            for s, e, vias in merged:
                if prev_end is not None:
                    rows.append((*key, "gap", prev_end, s, None, _gap_note(prev_end, s, now)))
                rows.append((*key, "collected", s, e, "+".join(sorted(vias)), None))
                prev_end = e
            if prev_end < now:
                rows.append((*key, "gap", prev_end, now, None, _gap_note(prev_end, now, now)))
        df = pd.DataFrame(rows, columns=["region", "project", "kind", "start", "end", "via", "note"])
        for c in ("start", "end"):
            df[c] = pd.to_datetime(df[c], utc=True)
        for c in ("via", "note"):
            df[c] = _none_for_missing(df[c])
        return df


def _gap_note(start: datetime, end: datetime, now: datetime) -> str:
    horizon = now - IMM_RETENTION
    if end <= horizon:
        return "older than IMM's 7-day retention: tasks in it may be lost"
    if start < horizon:
        return f"partly older than IMM's 7-day retention: tasks before {horizon.isoformat()} may be lost"
    return "not collected yet; still within IMM's 7-day retention"
