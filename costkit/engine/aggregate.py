"""The history's exact integer quantities: DuckDB sums calls, requests, bytes and byte-hours per report group x
price segment x item (x storage class x redundancy) over the stored tasks, in a few passes and without
per-task state; plus the counts the report states and warns about (tasks, unknown facts, unfinished tasks).
"""
from __future__ import annotations

from dataclasses import dataclass

from costkit.engine.coefficients import Model
from costkit.engine.history_sql import (DAY_AND, PERIOD_TASKS, group_key_sql, setup_tables, source_sums_sql,
                                        target_ctes)
from costkit.engine.period import Period, period_cuts, segment_sql


@dataclass
class Aggregate:
    rows: list            # (gkey, seg, item, cls, red, qty:int)
    tasks: int
    succeeded: int
    failed: int
    unknown_tasks: int
    unknown_sources: int
    unknown_targets: int
    cold_sources: int     # GET requests on ColdArchive/DeepColdArchive sources
    running: int
    no_end: int
    accel_tasks: dict     # (gkey, seg) -> tasks
    gone_tasks: int = 0   # tasks with an object the inventory saw gone before it read its facts
    gone_sources: int = 0
    gone_targets: int = 0


def _run(con, sql: str, params: dict) -> list:
    return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()


def _source_rows(con, model: Model, by: str, bounds: list[int], params: dict, rows: list) -> tuple[int, int]:
    """Sources: GET requests by class, IA and direct-read bytes (one pass; no per-task state), appended to
    `rows`. Returns (sources without facts, GET requests on ColdArchive/DeepColdArchive sources, sources
    seen gone without facts)."""
    unknown_sources = cold_sources = gone_sources = 0
    for gkey, seg, cls, a, b, c, d, g in _run(con, source_sums_sql(by, model, bounds), params):
        if cls in ("ColdArchive", "DeepColdArchive"):
            cold_sources += int(a)
        if a:
            rows.append((gkey, seg, "oss.GetRequest", cls, None, int(a)))
        if b:
            rows.append((gkey, seg, "oss.IaRetrieval", None, None, int(b)))
        if c:
            rows.append((gkey, seg, "oss.ArchiveDirectRead", None, None, int(c)))
        unknown_sources += int(d or 0)
        gone_sources += int(g or 0)
    return unknown_sources, cold_sources, gone_sources


def _target_sql(by: str, model: Model, bounds: list[int]) -> str:
    skey = "k.day" if by == "day" else "(k.day || chr(31) || tg)" if by.startswith(DAY_AND) else "tg"
    return f"""WITH {target_ctes(by, model)}
        SELECT 'T' AS kind, {group_key_sql(by, 'c')} AS gkey, {segment_sql('c', bounds)} AS seg, cls, NULL AS red,
               count(*)::HUGEINT AS a, count(*) FILTER (WHERE status = 'Succeeded')::HUGEINT AS b,
               count(*) FILTER (WHERE (status = 'Succeeded' OR $splice_failed)
                                AND end_time >= $imm_start)::HUGEINT AS c,
               coalesce(sum(put) FILTER (WHERE status = 'Succeeded'), 0)::HUGEINT AS d,
               count(*) FILTER (WHERE status = 'Succeeded' AND unknown)::HUGEINT AS e,
               count(*) FILTER (WHERE status = 'Succeeded' AND gone_nofacts)::HUGEINT AS f
        FROM x WHERE in_period GROUP BY ALL
        UNION ALL
        SELECT 'S', {skey}, k.seg, x.cls, x.red,
               sum(x.bb * (least(coalesce(x.d, $h1), k.e) - greatest(x.c, k.s)))::HUGEINT, 0, 0, 0, 0, 0
        FROM xs x JOIN _cuts k ON x.c < k.e AND coalesce(x.d, $h1) > k.s
        WHERE x.stored GROUP BY ALL
        UNION ALL
        SELECT 'E', {group_key_sql(by, 'd')}, {segment_sql('d', bounds)}, cls, red,
               sum(bb * (min_hours - (d - c)))::HUGEINT, 0, 0, 0, 0, 0
        FROM xe WHERE stored AND d IS NOT NULL AND d >= $h0 AND d < $h1 AND d - c < min_hours
        GROUP BY ALL"""


def _target_rows(con, model: Model, by: str, bounds: list[int], params: dict, rows: list):
    """Targets: task counts, ImageSplicing, PUTs (period tasks); storage by slice; early deletion, appended
    to `rows`. Returns (tasks, succeeded, succeeded targets without facts, succeeded targets seen gone
    without facts, tasks per (gkey, seg))."""
    tasks = ok = unknown_targets = gone_targets = 0
    accel: dict = {}
    for kind, gkey, seg, cls, red, a, b, c, d, e, f in _run(con, _target_sql(by, model, bounds), params):
        if kind == "T":
            tasks += int(a)
            ok += int(b)
            unknown_targets += int(e)
            gone_targets += int(f)
            if c:
                rows.append((gkey, seg, "imm.ImageSplicing", None, None, int(c)))
            if d:
                rows.append((gkey, seg, "oss.PutRequest", cls, None, int(d)))
            accel[(gkey, seg)] = accel.get((gkey, seg), 0) + int(a)
        elif a:
            rows.append((gkey, seg, "oss.Storage" if kind == "S" else "oss.EarlyDeletion", cls, red, int(a)))
    return tasks, ok, unknown_targets, gone_targets, accel


def _unknown_tasks(con, params: dict, missing: str = "o.size IS NULL AND NOT coalesce(o.gone, false)") -> int:
    """Distinct period tasks with a source or (succeeded) target without facts (`missing`: by default
    never inventoried; with `_GONE`, seen gone before its facts were read)."""
    return _run(con, f"""
            WITH t AS (
                SELECT region, project, task_id, status, sources, target_uri FROM tasks WHERE {PERIOD_TASKS}
            ), su AS (
                SELECT DISTINCT u.region, u.project, u.task_id
                FROM (SELECT region, project, task_id, unnest(sources).uri AS uri FROM t) u
                LEFT JOIN objects o ON o.uri = u.uri WHERE {missing}
            ), tu AS (
                SELECT t.region, t.project, t.task_id FROM t LEFT JOIN objects o ON o.uri = t.target_uri
                WHERE t.status = 'Succeeded' AND {missing}
            )
            SELECT count(*) FROM (SELECT * FROM su UNION SELECT * FROM tu)""", params)[0][0]


_GONE = "o.size IS NULL AND o.gone"


def aggregate(con, model: Model, period: Period, by: str, bounds: list[int]) -> Aggregate:
    """The exact integer quantity sums of `period` per (group, segment, item, class, redundancy) and the
    report's counts (quantities in the item's integer sub-units: calls, requests, bytes, byte-hours)."""
    cuts = period_cuts(period, bounds, by == "day" or by.startswith(DAY_AND))
    params = setup_tables(con, model, period, cuts)
    tag_by = by[len(DAY_AND):] if by.startswith(DAY_AND) else by
    if tag_by.startswith("tag:"):
        key = tag_by[4:].replace('"', '\\"')
        params["tagpath"] = f'$."{key}"'
    rows: list = []
    unknown_sources, cold_sources, gone_sources = _source_rows(con, model, by, bounds, params, rows)
    tasks, ok, unknown_targets, gone_targets, accel = _target_rows(con, model, by, bounds, params, rows)
    unknown_tasks = _unknown_tasks(con, params) if unknown_sources else unknown_targets
    gone_tasks = _unknown_tasks(con, params, _GONE) if gone_sources else gone_targets
    running, no_end = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'Running'), count(*) FILTER (WHERE status <> 'Running') "
        "FROM tasks WHERE (status = 'Running' OR end_time IS NULL) AND start_time >= $p0 AND start_time < $p1",
        {"p0": period.start, "p1": period.end}).fetchone()
    return Aggregate(rows=rows, tasks=tasks, succeeded=ok, failed=tasks - ok, unknown_tasks=unknown_tasks,
                     unknown_sources=unknown_sources, unknown_targets=unknown_targets, cold_sources=cold_sources,
                     running=running, no_end=no_end, accel_tasks=accel, gone_tasks=gone_tasks,
                     gone_sources=gone_sources, gone_targets=gone_targets)


__all__ = ["Aggregate", "aggregate"]
