"""The SQL of the history engine: the small temp tables it joins (usage coefficients, bucket settings, period
cuts) and the CTEs that join every task's sources and target with the inventory's object facts (or the
settings' defaults) and their usage-model coefficients. The aggregation (costkit.engine.aggregate) and the
charge lines (costkit.engine.lines) are both built on them; the attribution rules are in
costkit.engine.history's module doc."""
from __future__ import annotations

from costkit.engine.coefficients import Model
from costkit.engine.period import HOUR_US, Period, day_sql, segment_sql


DAY_AND = "day|"    # `day|project`, `day|tag:KEY`: the day and the task's group, joined by chr(31)


def _tg(by: str, prefix: str = "") -> str:
    """The task's own group key (project / tag), '' otherwise (day keys come from hours)."""
    if by.startswith(DAY_AND):
        by = by[len(DAY_AND):]
    if by == "project":
        return f"{prefix}project"
    if by.startswith("tag:"):
        return f"coalesce(json_extract_string({prefix}tags, $tagpath), '')"
    return "''"


def group_key_sql(by: str, hour_col: str) -> str:
    """SQL: the report group of a row (the day of `hour_col` with `--by day`, else the task's group `tg`)."""
    if by.startswith(DAY_AND):
        return f"({day_sql(hour_col)} || chr(31) || tg)"
    return day_sql(hour_col) if by == "day" else "tg"


_CLS_OK = "('Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive')"
PERIOD_TASKS = "status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1"   # tasks priced


def setup_tables(con, model: Model, period: Period, cuts) -> dict:
    """Small temp tables: the usage coefficients, bucket settings, period cuts. Returns SQL parameters."""
    con.execute("CREATE OR REPLACE TEMP TABLE _src_coef (cls VARCHAR, dr BOOLEAN, restored BOOLEAN, "
                "get_req BIGINT, ia_factor BIGINT, adr_factor BIGINT)")
    con.executemany("INSERT INTO _src_coef VALUES (?, ?, ?, ?, ?, ?)", model.src)
    con.execute("CREATE OR REPLACE TEMP TABLE _tgt_coef (cls VARCHAR, put BIGINT, floor_bytes BIGINT, "
                "min_hours BIGINT)")
    con.executemany("INSERT INTO _tgt_coef VALUES (?, ?, ?, ?)", model.tgt)
    con.execute("CREATE OR REPLACE TEMP TABLE _cfg_buckets (bucket VARCHAR, adr BOOLEAN, red VARCHAR, "
                "cls VARCHAR)")
    if model.buckets:
        con.executemany("INSERT INTO _cfg_buckets VALUES (?, ?, ?, ?)", model.buckets)
    con.execute("CREATE OR REPLACE TEMP TABLE _cuts (s BIGINT, e BIGINT, seg INTEGER, day VARCHAR)")
    con.executemany("INSERT INTO _cuts VALUES (?, ?, ?, ?)", cuts)
    return {"p0": period.start, "p1": period.end, "h0": period.h0, "h1": period.h1,
            "src_bytes": model.src_bytes, "src_class": model.src_class, "src_dr": model.src_dr,
            "tgt_bytes": model.tgt_bytes, "tgt_class": model.tgt_class, "tgt_red": model.tgt_redundancy,
            "lc_lag_us": model.lifecycle_lag_hours * HOUR_US,
            "ret": model.retention_hours, "imm_start": model.imm_start,
            "splice_failed": not model.splice_on_success}


def source_ctes(by: str, model: Model, ids: bool = False) -> str:
    """CTEs `t`, `f` (materialised): one row per source of each period task, with the object facts (or the
    defaults) and the usage-model coefficients of its kind. `ids`: carry task_id and project (charge lines)."""
    ids_cols = "task_id, project, " if ids else ""
    ids_t = "t.task_id, t.project, " if ids else ""
    cfg_join = cfg_adr = ""
    if model.buckets:
        cfg_join = ("LEFT JOIN _cfg_buckets cb ON cb.bucket = "
                    "CASE WHEN o.uri IS NULL THEN split_part(t.uri, '/', 3) ELSE o.bucket END")
        cfg_adr = "cb.adr, "
    return f"""
        t AS (
            SELECT rowid AS tid, {ids_cols}{_tg(by)} AS tg, status, end_time,
                   epoch_us(end_time) // {HOUR_US} AS h, unnest(sources).uri AS uri
            FROM tasks WHERE {PERIOD_TASKS}
        ), f0 AS (
            SELECT t.tid, {ids_t}t.tg, t.h, t.status, o.size IS NULL AS unknown,
                   coalesce(o.size, $src_bytes) AS size,
                   CASE WHEN o.size IS NULL THEN $src_class
                        WHEN o.storage_class IN {_CLS_OK} THEN o.storage_class ELSE 'Standard' END AS cls,
                   coalesce(b.archive_direct_read, {cfg_adr}$src_dr) AS dr,
                   coalesce(o.restore_state = 'restored'
                            AND (o.restore_expiry IS NULL OR o.restore_expiry > t.end_time), false) AS restored_api
            FROM t
            LEFT JOIN objects o ON o.uri = t.uri
            LEFT JOIN buckets b ON b.bucket = CASE WHEN o.uri IS NULL THEN split_part(t.uri, '/', 3)
                                                   ELSE o.bucket END
            {cfg_join}
        ), f AS (
            SELECT f0.*, c.get_req, c.ia_factor, c.adr_factor
            FROM f0 JOIN _src_coef c ON c.cls = f0.cls AND c.dr = f0.dr
             AND c.restored = (f0.restored_api OR (f0.status = 'Succeeded' AND f0.cls = 'Archive' AND NOT f0.dr))
        )"""


_RANKS = "['Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive']"
DAY_US = 24 * HOUR_US


def _rk(col: str) -> str:
    """SQL: a class's coldness, 1 (Standard) .. 5 (DeepColdArchive); lifecycle transitions only go colder."""
    return f"list_position({_RANKS}, {col})"


def _cls_of(rk: str) -> str:
    return f"{_RANKS}[{rk}]"


def target_ctes(by: str, model: Model, ids: bool = False) -> str:
    """CTEs `v`, `x` (materialised): every finished task up to the period's end with its target's facts (or
    defaults), billable bytes, deletion hour `d` (NULL = kept), its class at upload and the usage-model
    coefficients; `xs`: the target's storage segments [c, d) by class (one, or one per lifecycle
    transition); `xe`: the deleted targets with the class they have when they go, `c` being the start of
    the minimum storage duration (LastModified; a Cold/Deep Cold Archive transition restarts it)."""
    return ",".join([_target_facts(by, model, ids), _lifecycle_ctes(), _target_rows(ids), _segments(ids)])


def _target_facts(by: str, model: Model, ids: bool) -> str:
    """CTEs `v`, `x0`: the targets with their facts. `lm_us`: LastModified (the task's completion when the
    object is gone, overwritten or unknown); `seen_h`: the last check that saw it present (rules cannot
    date its deletion earlier); `del0_h`: deletion without lifecycle rules."""
    ids_cols = "task_id, project, " if ids else ""
    ids_v = "v.task_id, v.project, " if ids else ""
    cfg_join = ""
    cls_cfg = red_cfg = ""
    if model.buckets:
        cfg_join = "LEFT JOIN _cfg_buckets cb ON cb.bucket = split_part(v.target_uri, '/', 3)"
        cls_cfg = "WHEN cb.cls IS NOT NULL THEN cb.cls "
        red_cfg = "WHEN cb.red IS NOT NULL THEN cb.red "
    here = "(o.uri IS NOT NULL AND NOT o.gone AND v.next_h IS NULL)"
    return f"""
        v AS (
            SELECT rowid AS tid, {ids_cols}{_tg(by)} AS tg, status, end_time, target_uri,
                   epoch_us(end_time) // {HOUR_US} AS c,
                   lead(epoch_us(end_time) // {HOUR_US})
                       OVER (PARTITION BY target_uri, status ORDER BY end_time, rowid) AS next_h
            FROM tasks WHERE status IN ('Succeeded', 'Failed') AND end_time < $p1
        ), x0 AS (
            SELECT v.tid, {ids_v}v.tg, v.status, v.end_time, v.c, v.target_uri IS NOT NULL AS has_target,
                   (o.size IS NULL AND NOT coalesce(o.gone, false)) AS unknown,
                   (o.size IS NULL AND coalesce(o.gone, false)) AS gone_nofacts,
                   coalesce(o.size, $tgt_bytes) AS size,
                   CASE WHEN o.size IS NOT NULL AND o.storage_class IN {_CLS_OK} THEN o.storage_class
                        WHEN b.storage_class IN {_CLS_OK} THEN b.storage_class
                        {cls_cfg}ELSE $tgt_class END AS cls,
                   CASE WHEN b.storage_class IN {_CLS_OK} THEN b.storage_class {cls_cfg}ELSE $tgt_class END AS base_cls,
                   CASE WHEN b.redundancy IN ('LRS', 'ZRS') THEN b.redundancy {red_cfg}ELSE $tgt_red END AS red,
                   split_part(v.target_uri, '/', 3) AS bucket,
                   substr(v.target_uri, length(split_part(v.target_uri, '/', 3)) + 8) AS tkey,
                   CASE WHEN {here} AND o.last_modified IS NOT NULL THEN epoch_us(o.last_modified)
                        ELSE epoch_us(v.end_time) END AS lm_us,
                   CASE WHEN {here} THEN (epoch_us(o.checked_at) + {HOUR_US - 1}) // {HOUR_US} END AS seen_h,
                   CASE WHEN {here} THEN o.tag_pairs END AS otags,
                   least(CASE WHEN v.target_uri IS NOT NULL THEN v.next_h END,
                         CASE WHEN o.gone AND o.gone_since IS NOT NULL
                                  THEN (epoch_us(o.gone_since) + {HOUR_US - 1}) // {HOUR_US}
                              WHEN o.uri IS NULL THEN v.c + $ret END) AS del0_h
            FROM v
            LEFT JOIN objects o ON o.uri = v.target_uri
            LEFT JOIN buckets b ON b.bucket = split_part(v.target_uri, '/', 3)
            {cfg_join}
        )"""


def _lifecycle_ctes() -> str:
    """CTEs `lr` (each matching rule action of a stored target and the hour it takes effect: LastModified
    rounded up to 00:00 UTC plus the days, or the rule's date for objects modified before it, plus
    `$lc_lag_us`, rounded up to the hour), `la` (per target: the expiry hour, whether it has transitions,
    whether the class the inventory saw was reached by one)."""
    return f"""
        lr AS (
            SELECT x0.tid, r.action, r.storage_class AS to_cls, x0.cls AS seen_cls, x0.seen_h,
                   (CASE WHEN r.days IS NOT NULL
                             THEN ((x0.lm_us + {DAY_US - 1}) // {DAY_US} + r.days) * {DAY_US}
                         WHEN x0.lm_us < epoch_us(r.before_date) THEN epoch_us(r.before_date) END
                    + $lc_lag_us + {HOUR_US - 1}) // {HOUR_US} AS at_h
            FROM x0 JOIN lifecycle_rules r ON r.bucket = x0.bucket AND r.enabled
             AND x0.status = 'Succeeded' AND x0.has_target AND starts_with(x0.tkey, r.prefix)
             AND (r.tag_pairs IS NULL OR (x0.otags IS NOT NULL AND list_has_all(x0.otags, r.tag_pairs)))
             AND NOT coalesce(r.not_prefix IS NOT NULL AND starts_with(x0.tkey, r.not_prefix)
                     AND (r.not_tag_pairs IS NULL OR x0.otags IS NULL OR list_has_all(x0.otags, r.not_tag_pairs)),
                     false)
             AND (r.size_gt IS NULL OR x0.size > r.size_gt) AND (r.size_lt IS NULL OR x0.size < r.size_lt)
        ), la AS (
            SELECT tid, min(at_h) FILTER (WHERE action = 'expire') AS exp_h,
                   bool_or(action = 'transition' AND at_h IS NOT NULL) AS has_tr,
                   bool_or(action = 'transition' AND to_cls = seen_cls AND at_h <= seen_h) AS reached
            FROM lr GROUP BY tid
        )"""


def _target_rows(ids: bool) -> str:
    """CTE `x` (materialised): one row per task; `cls` is the class at upload (the inventory's class, or
    the bucket's when a rule's transition explains what the inventory saw)."""
    return f"""
        x AS MATERIALIZED (
            SELECT y.*, CASE WHEN del_h IS NOT NULL THEN greatest(c, del_h) END AS d,
                   greatest(size, k.floor_bytes) AS bb, k.min_hours, k.put,
                   end_time >= $p0 AS in_period,
                   status = 'Succeeded' AND has_target AS stored
            FROM (SELECT x0.*, coalesce(la.has_tr, false) AS has_tr,
                         CASE WHEN la.reached AND {_rk('x0.cls')} > {_rk('x0.base_cls')} THEN x0.base_cls
                              ELSE x0.cls END AS cls0,
                         least(x0.del0_h, CASE WHEN la.exp_h IS NOT NULL THEN greatest(la.exp_h, x0.seen_h) END) AS del_h
                  FROM x0 LEFT JOIN la USING (tid)) y
            JOIN _tgt_coef k ON k.cls = y.cls0
        )""".replace("SELECT y.*,", "SELECT y.* REPLACE (y.cls0 AS cls),")


def _segments(ids: bool) -> str:
    """CTEs `xs` (storage segments: [c, d) at `cls`, billable bytes `bb` of that class) and `xe` (deleted
    targets: `c` the start of the minimum duration, `d` the deletion hour, `cls` the class at deletion)."""
    ids_x = "x.task_id, x.project, " if ids else ""
    lm_h = f"x.lm_us // {HOUR_US}"
    return f"""
        tp AS (
            SELECT lr.tid, lr.at_h AS s, max({_rk('lr.to_cls')}) AS rk FROM lr
            WHERE lr.action = 'transition' AND lr.at_h IS NOT NULL GROUP BY ALL
        ), sp AS (
            SELECT tid, c AS s, {_rk('cls')} AS rk FROM x WHERE stored AND has_tr
            UNION ALL
            SELECT tp.tid, tp.s, tp.rk FROM tp JOIN x USING (tid)
            WHERE x.stored AND tp.s > x.c AND (x.d IS NULL OR tp.s < x.d)
        ), sc AS (
            SELECT tid, s, max(rk) OVER (PARTITION BY tid ORDER BY s ROWS UNBOUNDED PRECEDING) AS rk FROM sp
        ), sg AS (
            SELECT tid, s, rk, lead(s) OVER (PARTITION BY tid ORDER BY s) AS e
            FROM (SELECT *, lag(rk) OVER (PARTITION BY tid ORDER BY s) AS prev FROM sc)
            WHERE prev IS NULL OR rk > prev
        ), xs AS (
            SELECT x.tid, {ids_x}x.tg, x.c, x.d, x.cls, x.red, x.bb, x.min_hours, x.stored, true AS last,
                   CASE WHEN x.cls IN ('ColdArchive', 'DeepColdArchive') THEN x.c ELSE {lm_h} END AS ms
            FROM x WHERE x.stored AND NOT x.has_tr
            UNION ALL
            SELECT x.tid, {ids_x}x.tg, sg.s, coalesce(sg.e, x.d), {_cls_of('sg.rk')}, x.red,
                   greatest(x.size, k.floor_bytes), k.min_hours, true, sg.e IS NULL,
                   CASE WHEN {_rk('x.cls')} < 4 AND sg.rk >= 4 THEN sg.s ELSE {lm_h} END
            FROM sg JOIN x USING (tid) JOIN _tgt_coef k ON k.cls = {_cls_of('sg.rk')}
        ), xe AS (
            SELECT tid, {"task_id, project, " if ids else ""}tg, least(ms, d) AS c, d, cls, red, bb, min_hours,
                   stored
            FROM xs WHERE last AND d IS NOT NULL
        )"""


def source_sums_sql(by: str, model: Model, bounds: list[int]) -> str:
    """Sources of the period's tasks summed per (group, segment, class), in two steps: the large join of source
    references with the object facts is grouped first by what the coefficients depend on (class; for Archive
    sources also the bucket, the restore state and whether the task succeeded), then the few groups are
    joined with the bucket facts and the usage-model coefficients (linear: count x requests, bytes x reads)."""
    cfg_join = cfg_adr = ""
    if model.buckets:
        cfg_join = "LEFT JOIN _cfg_buckets cb ON cb.bucket = g.arch_bucket"
        cfg_adr = "cb.adr, "
    cls = (f"CASE WHEN o.size IS NULL THEN $src_class WHEN o.storage_class IN {_CLS_OK} THEN o.storage_class "
           "ELSE 'Standard' END")
    return f"""
        WITH t AS (
            SELECT {_tg(by)} AS tg, status, end_time, epoch_us(end_time) // {HOUR_US} AS h,
                   unnest(sources).uri AS uri
            FROM tasks WHERE {PERIOD_TASKS}
        ), j AS (
            SELECT t.tg, t.h, t.status, t.end_time, t.uri, o.size, o.gone, {cls} AS cls, o.restore_state,
                   o.restore_expiry
            FROM t LEFT JOIN objects o ON o.uri = t.uri
        ), g AS (
            SELECT {group_key_sql(by, 'h')} AS gkey, {segment_sql('h', bounds)} AS seg, cls,
                   CASE WHEN cls = 'Archive' THEN split_part(uri, '/', 3) END AS arch_bucket,
                   cls = 'Archive' AND coalesce(restore_state = 'restored'
                       AND (restore_expiry IS NULL OR restore_expiry > end_time), false) AS restored_api,
                   cls = 'Archive' AND status = 'Succeeded' AS ok_archive,
                   count(*) AS n, sum(coalesce(size, $src_bytes)) AS bytes,
                   sum((size IS NULL AND NOT coalesce(gone, false))::INTEGER) AS unknown,
                   sum((size IS NULL AND coalesce(gone, false))::INTEGER) AS gone
            FROM j GROUP BY ALL
        ), gd AS (
            SELECT g.*, coalesce(b.archive_direct_read, {cfg_adr}$src_dr) AS dr
            FROM g LEFT JOIN buckets b ON b.bucket = g.arch_bucket {cfg_join}
        )
        SELECT gd.gkey, gd.seg, gd.cls, sum(gd.n * c.get_req)::HUGEINT, sum(gd.bytes * c.ia_factor)::HUGEINT,
               sum(gd.bytes * c.adr_factor)::HUGEINT, sum(gd.unknown)::HUGEINT, sum(gd.gone)::HUGEINT
        FROM gd JOIN _src_coef c ON c.cls = gd.cls AND c.dr = gd.dr
         AND c.restored = (gd.restored_api OR (gd.ok_archive AND NOT gd.dr))
        GROUP BY ALL"""


__all__ = ["DAY_AND", "PERIOD_TASKS", "group_key_sql", "setup_tables", "source_ctes", "target_ctes", "source_sums_sql"]
