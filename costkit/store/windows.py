"""Collection runs, checkpoints, imported files and the coverage they add up to (a part of `Store`)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd

from costkit.store.values import aware, none_for_missing, present, py_dt, utc_now

IMM_RETENTION = timedelta(days=7)


class WindowMethods:
    """`Store` methods on `collection_runs`, `checkpoints` and `imports`; they use the store's connection,
    lock and transactions."""

    def begin_run(self, kind: str, region: str, project: str, window_start, window_end) -> int:
        """Record the start of a collection run over [window_start, window_end); return its id."""
        with self.transaction():
            return self._con.execute(
                "INSERT INTO collection_runs (kind, region, project, started_at, window_start, window_end) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [kind, region, project, utc_now(), aware(window_start, "window_start"),
                 aware(window_end, "window_end")]).fetchone()[0]

    def finish_run(self, run_id: int, *, pages: int, new: int, updated: int, unchanged: int,
                   errors: list[str], ok: bool, covered_end: datetime | None = None) -> None:
        """Record the end of a run and the span it covered: from its window start to `covered_end` (default:
        the window's end for an `ok` run, nothing for a failed one; a failed run passes the end of its
        completed prefix). `coverage` counts that span as collected."""
        with self.transaction():
            found = self._con.execute(
                "UPDATE collection_runs SET finished_at = ?, pages = ?, new = ?, updated = ?, unchanged = ?, "
                "errors = ?, ok = ?, covered_end = CASE WHEN ? THEN coalesce(?, window_end) ELSE ? END "
                "WHERE id = ? RETURNING id",
                [utc_now(), pages, new, updated, unchanged, json.dumps([str(e) for e in errors]), bool(ok),
                 bool(ok), aware(covered_end, "covered_end"), aware(covered_end, "covered_end"), run_id]).fetchall()
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
        df["errors"] = [json.loads(e) if present(e) else [] for e in df["errors"]]
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
        return py_dt(row[0])

    def last_successful_run(self, region: str, project: str) -> datetime | None:
        """When the latest successful run for (region, project) finished; None if there was none."""
        with self._lock:
            row = self._con.execute(
                "SELECT max(finished_at) FROM collection_runs WHERE region = ? AND project = ? AND ok",
                [region, project]).fetchone()
        return py_dt(row[0])

    def get_checkpoint(self, region: str, project: str) -> datetime | None:
        """The instant up to which (region, project) is collected; None for a new project."""
        with self._lock:
            row = self._con.execute('SELECT "until" FROM checkpoints WHERE region = ? AND project = ?',
                                    [region, project]).fetchone()
        return None if row is None else py_dt(row[0])

    def set_checkpoint(self, region: str, project: str, until: datetime) -> None:
        """Set the checkpoint (as given, even if earlier: the collector decides). Joins an open transaction."""
        until = aware(until, "until")
        with self.transaction():
            self._con.execute(
                'INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (region, project) '
                'DO UPDATE SET "until" = excluded."until", updated_at = excluded.updated_at',
                [region, project, until, utc_now()])

    def record_import(self, file: str, kind: str, counts: dict, windows: dict | None = None) -> None:
        """Note an imported file. `windows` maps (region, project) to (earliest, latest) task start time."""
        at = utc_now()
        text = json.dumps(counts, sort_keys=True)
        with self.transaction():
            rows = [(file, kind, at, r, p, aware(a, "window_start"), aware(b, "window_end"), text)
                    for (r, p), (a, b) in (windows or {}).items()]
            if not rows:
                rows = [(file, kind, at, None, None, None, None, text)]
            self._con.executemany(
                'INSERT INTO imports (file, kind, "at", region, project, window_start, window_end, counts) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def coverage_sources(self, region=None, project=None) -> pd.DataFrame:
        """Per (region, project) and source ("collect", "listen", "import"): the earliest start and the
        latest end it covered, how many runs/batches/files, and when it last ran (aware UTC)."""
        where, params = _filters(region, project)
        cond = (" AND " + " AND ".join(where)) if where else ""
        sql = f"""
            SELECT region, project, 'collect' AS source, min(window_start) AS first, max(e) AS last,
                   count(*) AS n, max(finished_at) AS at FROM (
                SELECT *, coalesce(covered_end, CASE WHEN ok THEN window_end END) AS e FROM collection_runs)
             WHERE e IS NOT NULL{cond} GROUP BY ALL
            UNION ALL
            SELECT region, project, CASE WHEN kind = 'listen' THEN 'listen' ELSE 'import' END, min(window_start),
                   max(window_end), count(*), max("at") FROM imports
             WHERE region IS NOT NULL AND window_start IS NOT NULL{cond} GROUP BY ALL
            ORDER BY region, project, source"""
        with self._lock:
            df = self._con.execute(sql, params + params).df()
        for c in ("first", "last", "at"):
            df[c] = pd.to_datetime(df[c], utc=True)
        return df

    def coverage(self, region=None, project=None, *, now: datetime | None = None) -> pd.DataFrame:
        """Collected windows (merged) and the gaps between them, per (region, project).

        Windows come from collection runs ("collect": the span each covered, see `finish_run`), from
        `costkit listen` ("listen": the span of task start times its notifications delivered) and from
        imported files ("import": the span of task start times in the file). Columns: region, project, kind
        ("collected" or "gap"), start, end (aware UTC), via (the sources of a collected window side by side,
        e.g. "collect+listen"), note.
        A trailing gap runs to `now`; the note of a gap says whether it is older than IMM's 7-day
        retention, i.e. whether its tasks may already be lost. A project with tasks but no recorded window
        gets one gap with no start.
        """
        now = aware(now, "now") or utc_now()
        where, params = _filters(region, project)
        cond = (" AND " + " AND ".join(where)) if where else ""
        sql = f"""
            SELECT region, project, window_start AS s, e, 'collect' AS via FROM (
                SELECT *, coalesce(covered_end, CASE WHEN ok THEN window_end END) AS e FROM collection_runs)
             WHERE window_start IS NOT NULL AND e IS NOT NULL AND e >= window_start{cond}
            UNION ALL
            SELECT region, project, window_start, window_end, CASE WHEN kind = 'listen' THEN 'listen' ELSE 'import' END
              FROM imports
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
            by_key.setdefault((r, p), []).append((py_dt(s), py_dt(e), via))
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
            df[c] = none_for_missing(df[c])
        return df


def _filters(region, project) -> tuple[list[str], list]:
    """SQL conditions and parameters for the optional region and project filters."""
    where, params = [], []
    for col, value in (("region", region), ("project", project)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    return where, params


def _gap_note(start: datetime, end: datetime, now: datetime) -> str:
    horizon = now - IMM_RETENTION
    if end <= horizon:
        return "older than IMM's 7-day retention: tasks in it may be lost"
    if start < horizon:
        return f"partly older than IMM's 7-day retention: tasks before {horizon.isoformat()} may be lost"
    return "not collected yet; still within IMM's 7-day retention"
