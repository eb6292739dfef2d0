"""Stored tasks: the upsert of task records and the queries over them (a part of `Store`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from costkit.core.errors import BadInput
from costkit.sources.imm.taskrecord import STATUSES
from costkit.store.taskrows import BATCH_FIELDS, JOIN, KEY, TASK_COLUMNS, batch_table, dedupe, digest_sql, merge_sql
from costkit.store.values import aware, instant_arg, none_for_missing, present, py_dt, quietly


@dataclass(frozen=True)
class UpsertCounts:
    """Distinct task keys in a batch that were new, changed a stored row, or changed nothing."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: "UpsertCounts") -> "UpsertCounts":
        return UpsertCounts(self.new + other.new, self.updated + other.updated, self.unchanged + other.unchanged)


class TaskMethods:
    """`Store` methods on the `tasks` table; they use the store's connection, lock and transactions."""

    def upsert_tasks(self, records, *, seen_at: datetime) -> UpsertCounts:
        """Merge task records (dicts of `costkit.taskrecord`) into the store in one transaction.

        Returns the counts over distinct keys. Duplicate keys in one batch collapse to the record with the
        higher status rank, then the later one. Raises BadInput for a record without a key or with an
        unknown status, ValueError for a naive datetime.
        """
        seen_at = aware(seen_at, "seen_at")
        records = dedupe(list(records))
        if not records:
            return UpsertCounts()
        batch = batch_table(records)
        with self.transaction():
            con = self._con
            con.register("_costkit_batch", batch)
            try:
                # One narrow probe (key hash and digest columns only) finds the two common cases:
                # every key new (collecting), or every task identical to its stored row (re-listing).
                # A different key with the same 64-bit key hash AND digest is not a practical concern.
                known, same = con.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE t.digest = {digest_sql('b')}) "
                    "FROM _costkit_batch b JOIN tasks t ON t.key_hash = b.key_hash").fetchone()
                if not known:
                    cols = ", ".join(BATCH_FIELDS)
                    con.execute(f"INSERT INTO tasks ({cols}, first_seen, last_seen, key_hash, digest) "
                                f"SELECT {cols}, $seen_at, $seen_at, key_hash, {digest_sql('b')} "
                                f"FROM _costkit_batch b", {"seen_at": seen_at})
                    return UpsertCounts(len(records), 0, 0)
                if same == len(records):
                    con.execute(f"UPDATE tasks SET last_seen = greatest(tasks.last_seen, $seen_at) "
                                f"FROM _costkit_batch b WHERE {JOIN.format(t='tasks', m='b')}",
                                {"seen_at": seen_at})
                    return UpsertCounts(0, 0, len(records))
                return self._merge(seen_at)
            finally:
                quietly(con.unregister, "_costkit_batch")

    def _merge(self, seen_at: datetime) -> UpsertCounts:
        """Merge the registered batch with stored rows (inside the caller's transaction); return counts."""
        con = self._con
        con.execute(f"CREATE OR REPLACE TEMP TABLE _costkit_merge AS {merge_sql()}", {"seen_at": seen_at})
        try:
            new, updated, unchanged = con.execute(
                "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE changed), "
                "count(*) FILTER (WHERE NOT is_new AND NOT changed) FROM _costkit_merge").fetchone()
            if new:
                cols = ", ".join(TASK_COLUMNS)
                con.execute(f"INSERT INTO tasks ({cols}, key_hash, digest) SELECT {cols}, key_hash, "
                            f"{digest_sql('m')} FROM _costkit_merge m WHERE is_new")
            # DuckDB rewrites an update of a LIST column as delete + insert, which is slow: the sources
            # column is written only where it changed (rare: a record filling a gap).
            join = JOIN.format(t="tasks", m="m")
            if updated:
                sets = ", ".join(f"{c} = m.{c}" for c in TASK_COLUMNS if c not in (*KEY, "sources"))
                con.execute(f"UPDATE tasks SET {sets}, digest = {digest_sql('m')} FROM _costkit_merge m "
                            f"WHERE m.changed AND {join}")
                con.execute(f"UPDATE tasks SET sources = m.sources FROM _costkit_merge m "
                            f"WHERE m.sources_changed AND {join}")
            if unchanged:
                # The digest is rewritten too: it heals digests from another DuckDB version.
                con.execute(f"UPDATE tasks SET last_seen = m.last_seen, digest = {digest_sql('m')} "
                            f"FROM _costkit_merge m WHERE NOT m.is_new AND NOT m.changed AND {join}")
        finally:
            quietly(con.execute, "DROP TABLE IF EXISTS _costkit_merge")
        return UpsertCounts(new, updated, unchanged)

    def tasks_frame(self, project=None, since=None, until=None, status=None, *, region=None) -> pd.DataFrame:
        """Stored tasks as a DataFrame, ordered by start time then key.

        Filters: project, region, status (Running/Succeeded/Failed), and start_time in [since, until)
        (aware datetimes, ISO 8601 strings with an offset, or dates: 00:00 Asia/Shanghai). Columns: the `tasks` table's; time columns are datetime64 in UTC; `sources` is a
        list of {"uri", "rotate"}; `tags` a dict; the integer options are nullable Int64.
        """
        if status is not None:   # any case, as the CLI's --status
            status = {s.lower(): s for s in STATUSES}.get(str(status).lower(), status)
            if status not in STATUSES:
                raise BadInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")
        where, params = [], []
        for col, value in (("project", project), ("region", region), ("status", status)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if since is not None:
            where.append("start_time >= ?")
            params.append(instant_arg(since, "since"))
        if until is not None:
            where.append("start_time < ?")
            params.append(instant_arg(until, "until"))
        sql = (f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY start_time NULLS LAST, region, project, task_id")
        with self._lock:
            df = self._con.execute(sql, params).df()
        for c in ("start_time", "end_time", "first_seen", "last_seen"):
            df[c] = pd.to_datetime(df[c], utc=True)
        for c in ("align", "padding", "margin", "quality"):
            df[c] = df[c].astype("Int64")
        df["sources"] = [[dict(x) for x in s] if present(s) else [] for s in df["sources"]]
        df["tags"] = [json.loads(t) if present(t) else {} for t in df["tags"]]
        for c in ("code", "message", "target_uri", "image_format", "direction", "scale_type", "background_color",
                  "user_data"):
            df[c] = none_for_missing(df[c])
        return df

    def oldest_running_start(self, region: str, project: str) -> datetime | None:
        """Start time of the oldest task of (region, project) still stored as Running; None if none."""
        with self._lock:
            row = self._con.execute("SELECT min(start_time) FROM tasks WHERE region = ? AND project = ? "
                                    "AND status = 'Running'", [region, project]).fetchone()
        return py_dt(row[0])

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
