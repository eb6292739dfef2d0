"""Calibration: a scenario measured from the stored history (`costkit scenario from-history`).

Everything is measured in SQL over the store (no per-task Python); the attribution rules are those of the
history engine (costkit.engine.history's module doc): a task belongs to the Asia/Shanghai hour of its
completion; a target lives from its completion hour until it was overwritten or the inventory saw it gone
(no facts: the settings' retention); object facts missing from the inventory take the settings' defaults.

Succeeded tasks are clustered into kinds by what prices them non-linearly: the target's class and redundancy,
whether it is below the minimum billable size of IA and colder classes (64 KB), and its lifetime (kept,
under a day, a week, 30 days, 90 days, longer). Within a kind, everything is linear: sources per task and
their bytes by class and read mode (Archive read directly, or restored), the mean target size and lifetime.

`calibrate(...)` returns a `Calibration`: `data`, a scenario mapping that `parse_scenario` accepts, and
`comments`, what each value was measured from, keyed by the value's path (`tasks_per_month`,
`mix[0].share`, ...).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI, parse_instant_or_date
from costkit.engine.calibrate_build import DAYS_PER_MONTH, LIFE_BOUNDS, Calibration, _dec, build_scenario
from costkit.engine.period import HOUR_US
from costkit.model.usage import KB, MB, MIN_SIZE_CLASSES

_CLS = "('Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive')"
_MIN_CLS = "(" + ", ".join(f"'{c}'" for c in MIN_SIZE_CLASSES) + ")"
# Lifetime buckets of a target, upper bounds in hours (a kind per bucket; the last one is open).
# Above this many succeeded tasks, the kinds are measured on a deterministic sample of about this many (by a
# hash of the row): a share or mean from a million tasks is within about 0.1 % of the whole, and the joins with
# the object facts stay bounded. Volume, failures and the hourly profile always count every task.
SAMPLE_TASKS = 1_000_000


def _q(con, sql: str, params: dict):
    """Run `sql` with the parameters it names (DuckDB refuses unused ones)."""
    return con.execute(sql, {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)})


def task_filter(projects) -> tuple[str, dict]:
    """SQL condition on `tasks` for `--project` (all projects when empty) and its parameters."""
    if not projects:
        return "true", {}
    return "list_contains($projects, project)", {"projects": list(projects)}


def history_window(con, projects, since=None, until=None) -> tuple[datetime, datetime]:
    """[start, end) of the calibration window: `since`/`until` (whole hours), or from the first to the last
    Asia/Shanghai day in which a finished task completed. BadInput when no task is in it."""
    cond, params = task_filter(projects)
    lo, hi = con.execute(f"SELECT min(end_time), max(end_time) FROM tasks WHERE status IN ('Succeeded', "
                         f"'Failed') AND {cond}", params).fetchone()
    if lo is None:
        raise BadInput("the store holds no finished task" + (f" of project {', '.join(projects)}" if projects
                                                             else ""), field="--store")
    start = parse_instant_or_date(since, field="--since") if since else datetime.combine(
        lo.astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    end = parse_instant_or_date(until, field="--until") if until else datetime.combine(
        hi.astimezone(SHANGHAI).date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    for t, name in ((start, "--since"), (end, "--until")):
        if t.timestamp() % 3600:
            raise BadInput(f"must be on a whole hour (billing is hourly): {t.isoformat()}", field=name)
    if end <= start:
        raise BadInput("--until must be after --since", field="--until")
    return start, end


def _setup(con, settings) -> dict:
    con.execute("CREATE OR REPLACE TEMP TABLE _cal_buckets (bucket VARCHAR, adr BOOLEAN, red VARCHAR, "
                "cls VARCHAR)")
    rows = [(b, c.get("archive_direct_read"), c.get("redundancy"), c.get("storage_class"))
            for b, c in settings.buckets.items()]
    if rows:
        con.executemany("INSERT INTO _cal_buckets VALUES (?, ?, ?, ?)", rows)
    s = settings.splice
    ret = None if s.target_retention_days is None else int(round(s.target_retention_days * 24))
    return {"src_bytes": int(s.source_size_mb * MB), "src_class": s.source_storage_class,
            "src_dr": s.archive_direct_read, "tgt_bytes": int(s.target_size_mb * MB),
            "tgt_class": s.target_storage_class, "tgt_red": s.target_redundancy, "ret": ret,
            "floor": int(s.usage["min_billable_kb"] * KB)}


def _sums_sql(cond: str, mod: int) -> str:
    """One pass over the window's succeeded tasks with a target: each task's kind (target class, redundancy,
    under the minimum size, lifetime bucket) from its target's facts, and its sources with their facts (targets
    and sources joined with the object facts in one join). One row per (kind, source class, direct read,
    restored): sources, their bytes and unknown ones; and the kind's task sums carried by each task's first
    source only (tasks, target bytes, unknown targets, sum and count of lifetimes in hours). Overwrites are
    looked for only among target URIs written more than once. Tasks are those with hash(rowid) % mod = 0 (a
    literal: a parameter there would be a HUGEINT, and the scan many times slower):
    all of them with mod 1, else a sample (see SAMPLE_TASKS)."""
    life = " ".join(f"WHEN lt < {b} THEN {i}" for i, b in enumerate(LIFE_BOUNDS))
    base = f"status = 'Succeeded' AND target_uri IS NOT NULL AND end_time < $p1 AND {cond}"
    return f"""
        WITH t AS MATERIALIZED (
            SELECT rowid AS tid, end_time, target_uri, sources
            FROM tasks WHERE {base} AND end_time >= $p0 AND hash(rowid) % {int(mod)} = 0
        ), dup AS (
            SELECT target_uri FROM tasks WHERE {base} AND target_uri IN (SELECT target_uri FROM t)
            GROUP BY target_uri HAVING count(*) > 1
        ), nx AS (
            SELECT rowid AS tid, lead(epoch_us(end_time) // {HOUR_US}) OVER (PARTITION BY target_uri
                                                                            ORDER BY end_time, rowid) AS next_c
            FROM tasks WHERE {base} AND target_uri IN (SELECT target_uri FROM dup)
        ), r AS (
            SELECT tid, end_time, target_uri AS uri, -1 AS idx FROM t
            UNION ALL
            SELECT tid, end_time, unnest(sources).uri AS uri, unnest(range(len(sources))) AS idx FROM t
        ), ro AS MATERIALIZED (
            SELECT r.tid, r.idx, r.end_time, r.uri, o.uri IS NULL AS no_facts, o.size, o.storage_class, o.gone,
                   o.gone_since, o.restore_state, o.restore_expiry
            FROM r LEFT JOIN objects o ON o.uri = r.uri
        ), s AS (
            SELECT ro.tid, epoch_us(ro.end_time) // {HOUR_US} AS c, ro.size IS NULL AS unknown,
                   coalesce(ro.size, $tgt_bytes) AS size,
                   CASE WHEN ro.size IS NOT NULL AND ro.storage_class IN {_CLS} THEN ro.storage_class
                        WHEN b.storage_class IN {_CLS} THEN b.storage_class
                        WHEN cb.cls IS NOT NULL THEN cb.cls ELSE $tgt_class END AS cls,
                   CASE WHEN b.redundancy IN ('LRS', 'ZRS') THEN b.redundancy
                        WHEN cb.red IS NOT NULL THEN cb.red ELSE $tgt_red END AS red,
                   least(nx.next_c, CASE WHEN ro.gone AND ro.gone_since IS NOT NULL
                                             THEN (epoch_us(ro.gone_since) + {HOUR_US - 1}) // {HOUR_US}
                                         WHEN ro.no_facts THEN epoch_us(ro.end_time) // {HOUR_US} + $ret END) AS del_h
            FROM ro
            LEFT JOIN nx ON nx.tid = ro.tid
            LEFT JOIN buckets b ON b.bucket = split_part(ro.uri, '/', 3)
            LEFT JOIN _cal_buckets cb ON cb.bucket = split_part(ro.uri, '/', 3)
            WHERE ro.idx = -1
        ), k0 AS (
            SELECT tid, unknown, size, cls, red, cls IN {_MIN_CLS} AND size < $floor AS small,
                   CASE WHEN del_h IS NOT NULL THEN greatest(del_h, c) - c END AS lt   -- NULL: kept
            FROM s
        ), k AS (
            SELECT *, CASE WHEN lt IS NULL THEN -1 {life} ELSE {len(LIFE_BOUNDS)} END AS life FROM k0
        ), g AS (
            SELECT k.cls AS tcls, k.red, k.small, k.life,
                   CASE WHEN ro.size IS NULL THEN $src_class WHEN ro.storage_class IN {_CLS} THEN ro.storage_class
                        ELSE 'Standard' END AS scls,
                   split_part(ro.uri, '/', 3) AS ab,
                   coalesce(ro.restore_state = 'restored'
                            AND (ro.restore_expiry IS NULL OR ro.restore_expiry > ro.end_time), false) AS restored,
                   count(*) AS n, sum(coalesce(ro.size, $src_bytes)) AS bytes, sum((ro.size IS NULL)::INTEGER) AS su,
                   count(*) FILTER (idx = 0) AS tasks, sum(k.size) FILTER (idx = 0) AS tbytes,
                   sum(k.unknown::INTEGER) FILTER (idx = 0) AS tu, sum(k.lt) FILTER (idx = 0) AS lts,
                   count(k.lt) FILTER (idx = 0) AS ltn
            FROM ro JOIN k ON k.tid = ro.tid
            WHERE ro.idx >= 0
            GROUP BY ALL
        )
        SELECT g.tcls, g.red, g.small, g.life, g.scls,
               g.scls = 'Archive' AND NOT (g.restored OR NOT coalesce(b.archive_direct_read, cb.adr, $src_dr)),
               g.scls = 'Archive' AND (g.restored OR NOT coalesce(b.archive_direct_read, cb.adr, $src_dr)),
               sum(n)::BIGINT, sum(bytes)::HUGEINT, sum(su)::BIGINT, sum(tasks)::BIGINT, sum(tbytes)::HUGEINT,
               sum(tu)::BIGINT, sum(lts)::HUGEINT, sum(ltn)::BIGINT
        FROM g LEFT JOIN buckets b ON b.bucket = g.ab LEFT JOIN _cal_buckets cb ON cb.bucket = g.ab
        GROUP BY ALL ORDER BY ALL"""


def _split(rows):
    """(kinds [(cls, red, small, life, tasks, target bytes, unknown, mean lifetime h, lifetimes)], source rows
    [(cls, red, small, life, source class, direct, restored, sources, bytes, unknown)]) of `_sums_sql` rows,
    kinds most frequent first."""
    kinds: dict = {}
    for r in rows:
        t = kinds.setdefault(tuple(r[:4]), [0, 0, 0, 0, 0])
        for i, v in enumerate(r[10:15]):
            t[i] += int(v or 0)
    out = [(*key, n, tb, tu, (lts / ltn if ltn else None), ltn) for key, (n, tb, tu, lts, ltn) in kinds.items()
           if n > 0]
    out.sort(key=lambda k: (-k[4], k[:4]))
    return out, [tuple(r[:10]) for r in rows]


def _series(con, cond, params):
    """(daily [(day, tasks)], hourly counts[24], succeeded, failed) of the window, Asia/Shanghai."""
    daily = _q(con, f"""
        SELECT strftime(DATE '1970-01-01' + CAST(dn AS INTEGER), '%Y-%m-%d'), n FROM (
            SELECT (epoch_us(end_time) // {HOUR_US} + 8) // 24 AS dn, count(*) AS n FROM tasks
            WHERE status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1 AND {cond}
            GROUP BY dn) ORDER BY dn""", params).fetchall()
    hours = dict(_q(con, f"""
        SELECT (epoch_us(end_time) // {HOUR_US} + 8) % 24 AS hod, count(*) FROM tasks
        WHERE status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1 AND {cond}
        GROUP BY hod""", params).fetchall())
    ok, failed = _q(con, f"""
        SELECT count(*) FILTER (status = 'Succeeded'), count(*) FILTER (status = 'Failed') FROM tasks
        WHERE status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1 AND {cond}""",
                             params).fetchone()
    return daily, [hours.get(h, 0) for h in range(24)], ok, failed


def daily_counts(store, projects=(), start=None, end=None) -> list[tuple[str, int]]:
    """[(YYYY-MM-DD, finished tasks completing that Asia/Shanghai day)] over [start, end), every day of the
    span present (0 where none completed); the whole history without bounds."""
    con = store._con
    cond, params = task_filter(projects)
    with store._lock:
        if start is None or end is None:
            s, e = history_window(con, projects)
            start, end = start or s, end or e
        rows = dict(_series(con, cond, {**params, "p0": start, "p1": end})[0])
    day, last = start.astimezone(SHANGHAI).date(), (end - timedelta(microseconds=1)).astimezone(SHANGHAI).date()
    out = []
    while day <= last:
        out.append((day.isoformat(), rows.get(day.isoformat(), 0)))
        day += timedelta(days=1)
    return out


def calibrate(store, *, projects=(), since=None, until=None, start_month=None, settings=None) -> Calibration:
    """Measure a scenario from the store (see the module doc); BadInput when the window holds no task."""
    from costkit.model.settings import load_settings
    settings = settings or load_settings(None)
    con = store._con
    cond, params = task_filter(projects)
    with store._lock:
        p0, p1 = history_window(con, projects, since, until)
        params.update(_setup(con, settings), p0=p0, p1=p1)
        daily, hours, ok, failed = _series(con, cond, params)
        if ok + failed == 0:
            raise BadInput(f"no finished task completed in {p0.isoformat()} .. {p1.isoformat()}", field="--since")
        mod = max(1, -(-ok // SAMPLE_TASKS))
        kinds, sources = _split(_q(con, _sums_sql(cond, mod), params).fetchall())
        growth = _growth(daily)
    return build_scenario(settings=settings, p0=p0, p1=p1, daily=daily, hours=hours, ok=ok, failed=failed,
                          kinds=kinds, sources=sources, growth=growth, start_month=start_month,
                          projects=projects, sample=mod)


def _growth(daily) -> tuple[Decimal, int] | None:
    """(monthly growth, days fitted): the slope of ln(tasks per day) on the day, within weekdays (weekday
    means removed, so weekly seasonality does not bias it), compounded over a mean month; None with fewer
    than 14 days with tasks. `daily` lists consecutive days from the window's first."""
    import math
    pts = [(i, math.log(n)) for i, (_, n) in enumerate(daily) if n > 0]
    if len(pts) < 14:
        return None
    groups: dict = {}
    for x, y in pts:
        groups.setdefault(x % 7, []).append((x, y))
    sxy = sxx = 0.0
    for g in groups.values():
        mx = sum(x for x, _ in g) / len(g)
        my = sum(y for _, y in g) / len(g)
        sxy += sum((x - mx) * (y - my) for x, y in g)
        sxx += sum((x - mx) ** 2 for x, _ in g)
    if sxx == 0:
        return None
    return _dec(math.exp(sxy / sxx * float(DAYS_PER_MONTH)) - 1), len(pts)


__all__ = ["Calibration", "calibrate", "daily_counts", "history_window", "task_filter"]
