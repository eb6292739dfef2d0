"""The priced task history (`costkit cost`): what the stored splices cost, task by task and item by item.

There is one engine. What a task causes comes from the usage model (`costkit.usage.splice_usage`); what it
costs comes from the price book through the `Pricer`. To price millions of tasks without a per-task Python
loop, the usage model is evaluated once per *kind* of source and target (storage class x direct read x
restored; target class), which gives linear coefficients (requests per source, bytes read per byte, PUTs per
succeeded task, minimum billable bytes, minimum storage hours). DuckDB applies those coefficients to the
task rows joined with the inventory's object facts and sums exact integer quantities (calls, requests,
bytes, byte-hours) per report line x price segment. The Pricer then prices each of those few sums once,
exactly (Fractions).

**Attribution.**
- A task belongs to the Asia/Shanghai hour of its completion (`end_time`): a task completing at
  2025-08-31T16:30Z is a September splice. Periods are `[start, end)` on whole hours, Asia/Shanghai.
- `imm.ImageSplicing`: one call per Succeeded task completing at or after `usage.imm_billing_start`
  (failed ones too when `usage.charge_failed_splices`).
- `oss.GetRequest`, every task (failed ones too), per source: `head_per_source` + `get_per_source` (the GETs
  only when the source is readable), at the source's storage class. `oss.IaRetrieval`: bytes read from IA
  sources. `oss.ArchiveDirectRead`: bytes read from unrestored Archive sources of a bucket with direct read.
  An Archive source counts as restored when its `x-oss-restore` expiry is after the task's completion, or
  when a Succeeded task read it from a bucket without direct read (it must have been restored then).
- `oss.PutRequest`: `put_per_task` per Succeeded task at the target's class.
- `oss.TransferAcceleration`: `accelerated_gb_per_task` per task.
- `oss.Storage`: every hour in which a Succeeded task's target exists, from its completion hour until the
  hour of its deletion (the hour in which the inventory first saw it gone, or in which a later task
  overwrote the same URI; a target without facts is kept `target_retention_days`, default: kept), or the end
  of the period. Billable size: the object's size, at least `usage.min_billable_kb` (64 KB) for IA and colder.
- `oss.EarlyDeletion`: a target deleted (or overwritten) before its class's minimum storage duration is
  charged the missing hours once, in the deletion hour.
- Unknown object facts (no inventory row, or a row without size) take the settings' defaults
  (`source_size_mb`, `source_storage_class`, `target_size_mb`, `target_storage_class`, ...); the report warns
  with the number of tasks affected.

**Money.** One rule (costkit.money). A report line (item x period, or item x group with `--by`) is its exact
sum, rounded half-up to 2 decimals; `items` and `total` are sums of rounded lines, so the tables add up.
Charge lines (`--lines`) carry `amount` as DECIMAL(38,18): the exact amount of that task, hour and item,
rounded half-up at the 18th decimal (hourly storage amounts such as 0.12/720 per GB have no finite decimal
expansion). `quantity` is in the price entry's `unit` (e.g. `10000 requests`, `GB-month`), DECIMAL(38,18),
and `unit_price` is the entry's price as written in the book. Report lines are computed from exact
integer quantity sums, never from rounded charge lines.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.engine.forecast import CONFIDENT, _plain, _profile
from costkit.core.money import ZERO, fmt_quantity, round_money
from costkit.prices.book import ITEM_KEYS, ITEMS, STORAGE_CLASSES, UNITS, load_price_book
from costkit.prices.pricer import Pricer
from costkit.core.timeutil import SHANGHAI, add_months, month_label, month_start, parse_instant_or_date, parse_month
from costkit.model.usage import GB, MB, splice_usage

UTC = timezone.utc
FORMAT_VERSION = 1
HOUR_US = 3_600_000_000
LINE_SCALE = 18
LINE_COLUMNS = ["task_id", "project", "hour", "item", "quantity", "unit", "unit_price", "currency", "amount",
                "price_source"]
_TEXT_LINE_COLUMNS = ("task_id", "project", "item", "unit", "currency", "price_source")
_SCALE_OF = {"calls": 1, "requests": 1, "GB": GB, "GB-hour": GB}  # base unit -> integer sub-units
_BOOLS = (False, True)


# ---------------------------------------------------------------------------------------------
# Period and grouping

@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    label: str

    @property
    def h0(self) -> int:
        return int(self.start.timestamp()) // 3600

    @property
    def h1(self) -> int:
        return int(self.end.timestamp()) // 3600


def parse_period(month=None, since=None, until=None) -> Period:
    """`--month YYYY-MM`, or `--since` and `--until` (ISO 8601 with offset, or YYYY-MM-DD in Asia/Shanghai)."""
    if month and (since or until):
        raise BadInput("give either --month or --since/--until, not both", field="--month")
    if month:
        y, m = parse_month(month, field="--month")
        return Period(month_start(y, m), month_start(*add_months(y, m, 1)), month_label(y, m))
    if not since or not until:
        raise BadInput("give --month YYYY-MM, or both --since and --until", field="--month")
    a, b = parse_instant_or_date(since, field="--since"), parse_instant_or_date(until, field="--until")
    for t, name in ((a, "--since"), (b, "--until")):
        if t.timestamp() % 3600:
            raise BadInput(f"must be on a whole hour (billing is hourly): {t.isoformat()}", field=name)
    if b <= a:
        raise BadInput("--until must be after --since", field="--until")
    return Period(a, b, f"{a.astimezone(SHANGHAI).isoformat()}/{b.astimezone(SHANGHAI).isoformat()}")


def parse_by(by: str | None) -> str:
    by = (by or "item").strip()
    if by in ("item", "day", "project"):
        return by
    if by.startswith("tag:") and len(by) > 4:
        return by
    raise BadInput(f"expected item, day, project or tag:KEY, got {by!r}", field="--by")


# ---------------------------------------------------------------------------------------------
# The usage model as coefficient tables

@dataclass
class Model:
    """The usage model evaluated per kind of source and target, plus the defaults for unknown facts."""

    src: list          # (cls, dr, restored, get_requests, ia_factor, adr_factor) per source
    tgt: list          # (cls, put_per_task, floor_bytes, min_hours)
    accel_gb: Fraction
    splice_on_success: bool
    imm_start: datetime
    src_bytes: int
    src_class: str
    src_dr: bool
    tgt_bytes: int
    tgt_class: str
    tgt_redundancy: str
    retention_hours: int | None
    buckets: list      # (bucket, archive_direct_read, redundancy, storage_class) from the settings


def _int(q: Fraction, what: str) -> int:
    if q.denominator != 1:
        raise BadInput(f"the usage model gives a non-integer {what} ({q}); use whole numbers", field="requests")
    return int(q)


def build_model(settings) -> Model:
    """Evaluate `splice_usage` for every source and target kind (a few dozen calls)."""
    scn = settings.splice
    base = _profile(scn)
    src = []
    for cls in STORAGE_CLASSES:
        for dr in _BOOLS:
            for restored in _BOOLS:
                u = splice_usage(replace(base, sources=Fraction(1), source_bytes=Fraction(GB), source_class=cls,
                                         archive_direct_read=dr, source_restored=restored))
                get = u.per_task["oss.GetRequest"][1]
                ia = u.per_task.get("oss.IaRetrieval", ({}, Fraction(0)))[1]
                adr = u.per_task.get("oss.ArchiveDirectRead", ({}, Fraction(0)))[1]
                src.append((cls, dr, restored, _int(get, "request count"), _int(ia, "read count"),
                            _int(adr, "read count")))
    tgt = []
    for cls in STORAGE_CLASSES:
        u = splice_usage(replace(base, target_class=cls, target_bytes=Fraction(0), retention_hours=0))
        put = u.per_succeeded["oss.PutRequest"][1]
        tgt.append((cls, _int(put, "PUT count"), _int(u.target_gb * GB, "minimum size"), u.early_deletion_hours))
    u0 = splice_usage(base)
    accel = u0.per_task.get("oss.TransferAcceleration", ({}, Fraction(0)))[1]
    buckets = [(name, c.get("archive_direct_read"), c.get("redundancy"), c.get("storage_class"))
               for name, c in sorted(settings.buckets.items())]
    return Model(
        src=src, tgt=tgt, accel_gb=accel, splice_on_success=u0.splice_item_on_success,
        imm_start=scn.imm_billing_start, src_bytes=round(base.source_bytes), src_class=scn.source_storage_class,
        src_dr=scn.archive_direct_read, tgt_bytes=round(base.target_bytes), tgt_class=scn.target_storage_class,
        tgt_redundancy=scn.target_redundancy, retention_hours=base.retention_hours, buckets=buckets)


# ---------------------------------------------------------------------------------------------
# SQL

def _segments(book, model: Model, period: Period) -> list[int]:
    """Hour indexes inside the period at which some price (or the ImageSplicing start) changes."""
    pts = set()
    for item in ITEM_KEYS:
        for t in book.boundaries(item):
            pts.add(-(-int(t.timestamp()) // 3600))
    pts.add(-(-int(model.imm_start.timestamp()) // 3600))
    return sorted(p for p in pts if period.h0 < p < period.h1)


def _seg_sql(col: str, bounds: list[int]) -> str:
    if not bounds:
        return "0"
    return "(" + " + ".join(f"({col} >= {b})::INTEGER" for b in bounds) + ")"


def _cuts(period: Period, bounds: list[int], by_day: bool) -> list[tuple[int, int, int, str]]:
    """(start hour, end hour, segment, day label) slices of the period."""
    pts = {period.h0, period.h1, *bounds}
    if by_day:
        h = period.h0
        while h < period.h1:
            h = (h + 8) // 24 * 24 + 24 - 8
            if h < period.h1:
                pts.add(h)
    pts = sorted(pts)
    out = []
    for a, b in zip(pts, pts[1:]):
        seg = sum(1 for x in bounds if a >= x)
        out.append((a, b, seg, _day_label((a + 8) // 24)))
    return out


def _day_label(day_index: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(days=day_index)).strftime("%Y-%m-%d")


def _tg(by: str, prefix: str = "") -> str:
    """The task's own group key (project / tag), '' otherwise (day keys come from hours)."""
    if by == "project":
        return f"{prefix}project"
    if by.startswith("tag:"):
        return f"coalesce(json_extract_string({prefix}tags, $tagpath), '')"
    return "''"


def _day(hour_col: str) -> str:
    return f"strftime(DATE '1970-01-01' + CAST(({hour_col} + 8) // 24 AS INTEGER), '%Y-%m-%d')"


def _gkey(by: str, hour_col: str) -> str:
    return _day(hour_col) if by == "day" else "tg"


_CLS_OK = "('Standard', 'IA', 'Archive', 'ColdArchive', 'DeepColdArchive')"
_PERIOD = "status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1"


def _setup(con, model: Model, period: Period, cuts) -> dict:
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
            "ret": model.retention_hours, "imm_start": model.imm_start,
            "splice_failed": not model.splice_on_success}


def _src_ctes(by: str, model: Model, ids: bool = False) -> str:
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
            FROM tasks WHERE {_PERIOD}
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


def _tgt_ctes(by: str, model: Model, ids: bool = False) -> str:
    """CTEs `v`, `x` (materialised): every finished task up to the period's end with its target's facts (or
    defaults), billable bytes, deletion hour `d` (NULL = kept) and the usage-model coefficients."""
    ids_cols = "task_id, project, " if ids else ""
    ids_v = "v.task_id, v.project, " if ids else ""
    cfg_join = ""
    cls_cfg = red_cfg = ""
    if model.buckets:
        cfg_join = "LEFT JOIN _cfg_buckets cb ON cb.bucket = split_part(v.target_uri, '/', 3)"
        cls_cfg = "WHEN cb.cls IS NOT NULL THEN cb.cls "
        red_cfg = "WHEN cb.red IS NOT NULL THEN cb.red "
    return f"""
        v AS (
            SELECT rowid AS tid, {ids_cols}{_tg(by)} AS tg, status, end_time, target_uri,
                   epoch_us(end_time) // {HOUR_US} AS c,
                   lead(epoch_us(end_time) // {HOUR_US})
                       OVER (PARTITION BY target_uri, status ORDER BY end_time, rowid) AS next_h
            FROM tasks WHERE status IN ('Succeeded', 'Failed') AND end_time < $p1
        ), x0 AS (
            SELECT v.tid, {ids_v}v.tg, v.status, v.end_time, v.c, v.target_uri IS NOT NULL AS has_target,
                   (o.size IS NULL) AS unknown,
                   coalesce(o.size, $tgt_bytes) AS size,
                   CASE WHEN o.size IS NOT NULL AND o.storage_class IN {_CLS_OK} THEN o.storage_class
                        WHEN b.storage_class IN {_CLS_OK} THEN b.storage_class
                        {cls_cfg}ELSE $tgt_class END AS cls,
                   CASE WHEN b.redundancy IN ('LRS', 'ZRS') THEN b.redundancy {red_cfg}ELSE $tgt_red END AS red,
                   least(CASE WHEN v.target_uri IS NOT NULL THEN v.next_h END,
                         CASE WHEN o.gone AND o.gone_since IS NOT NULL
                                  THEN (epoch_us(o.gone_since) + {HOUR_US - 1}) // {HOUR_US}
                              WHEN o.uri IS NULL THEN v.c + $ret END) AS del_h
            FROM v
            LEFT JOIN objects o ON o.uri = v.target_uri
            LEFT JOIN buckets b ON b.bucket = split_part(v.target_uri, '/', 3)
            {cfg_join}
        ), x AS MATERIALIZED (
            SELECT x0.*, CASE WHEN del_h IS NOT NULL THEN greatest(c, del_h) END AS d,
                   greatest(size, k.floor_bytes) AS bb, k.min_hours, k.put,
                   end_time >= $p0 AS in_period,
                   status = 'Succeeded' AND has_target AS stored
            FROM x0 JOIN _tgt_coef k ON k.cls = x0.cls
        )"""


def _src_agg_sql(by: str, model: Model, bounds: list[int]) -> str:
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
            FROM tasks WHERE {_PERIOD}
        ), j AS (
            SELECT t.tg, t.h, t.status, t.end_time, t.uri, o.size, {cls} AS cls, o.restore_state, o.restore_expiry
            FROM t LEFT JOIN objects o ON o.uri = t.uri
        ), g AS (
            SELECT {_gkey(by, 'h')} AS gkey, {_seg_sql('h', bounds)} AS seg, cls,
                   CASE WHEN cls = 'Archive' THEN split_part(uri, '/', 3) END AS arch_bucket,
                   cls = 'Archive' AND coalesce(restore_state = 'restored'
                       AND (restore_expiry IS NULL OR restore_expiry > end_time), false) AS restored_api,
                   cls = 'Archive' AND status = 'Succeeded' AS ok_archive,
                   count(*) AS n, sum(coalesce(size, $src_bytes)) AS bytes, sum((size IS NULL)::INTEGER) AS unknown
            FROM j GROUP BY ALL
        ), gd AS (
            SELECT g.*, coalesce(b.archive_direct_read, {cfg_adr}$src_dr) AS dr
            FROM g LEFT JOIN buckets b ON b.bucket = g.arch_bucket {cfg_join}
        )
        SELECT gd.gkey, gd.seg, gd.cls, sum(gd.n * c.get_req)::HUGEINT, sum(gd.bytes * c.ia_factor)::HUGEINT,
               sum(gd.bytes * c.adr_factor)::HUGEINT, sum(gd.unknown)::HUGEINT
        FROM gd JOIN _src_coef c ON c.cls = gd.cls AND c.dr = gd.dr
         AND c.restored = (gd.restored_api OR (gd.ok_archive AND NOT gd.dr))
        GROUP BY ALL"""


@dataclass
class _Agg:
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


def _aggregate(con, model: Model, period: Period, by: str, bounds: list[int]) -> _Agg:
    cuts = _cuts(period, bounds, by == "day")
    params = _setup(con, model, period, cuts)
    if by.startswith("tag:"):
        key = by[4:].replace('"', '\\"')
        params["tagpath"] = f'$."{key}"'
    rows = []

    def run(sql):
        return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()

    # Sources: GET requests by class, IA and direct-read bytes (one pass; no per-task state).
    src = run(_src_agg_sql(by, model, bounds))
    unknown_sources = cold_sources = 0
    for gkey, seg, cls, a, b, c, d in src:
        if cls in ("ColdArchive", "DeepColdArchive"):
            cold_sources += int(a)
        if a:
            rows.append((gkey, seg, "oss.GetRequest", cls, None, int(a)))
        if b:
            rows.append((gkey, seg, "oss.IaRetrieval", None, None, int(b)))
        if c:
            rows.append((gkey, seg, "oss.ArchiveDirectRead", None, None, int(c)))
        unknown_sources += int(d or 0)

    # Targets: task counts, ImageSplicing, PUTs (period tasks); storage by slice; early deletion.
    skey = "k.day" if by == "day" else "tg"
    tgt = run(f"""WITH {_tgt_ctes(by, model)}
        SELECT 'T' AS kind, {_gkey(by, 'c')} AS gkey, {_seg_sql('c', bounds)} AS seg, cls, NULL AS red,
               count(*)::HUGEINT AS a, count(*) FILTER (WHERE status = 'Succeeded')::HUGEINT AS b,
               count(*) FILTER (WHERE (status = 'Succeeded' OR $splice_failed)
                                AND end_time >= $imm_start)::HUGEINT AS c,
               coalesce(sum(put) FILTER (WHERE status = 'Succeeded'), 0)::HUGEINT AS d,
               count(*) FILTER (WHERE status = 'Succeeded' AND unknown)::HUGEINT AS e
        FROM x WHERE in_period GROUP BY ALL
        UNION ALL
        SELECT 'S', {skey}, k.seg, x.cls, x.red,
               sum(x.bb * (least(coalesce(x.d, $h1), k.e) - greatest(x.c, k.s)))::HUGEINT, 0, 0, 0, 0
        FROM x JOIN _cuts k ON x.c < k.e AND coalesce(x.d, $h1) > k.s
        WHERE x.stored GROUP BY ALL
        UNION ALL
        SELECT 'E', {_gkey(by, 'd')}, {_seg_sql('d', bounds)}, cls, red,
               sum(bb * (min_hours - (d - c)))::HUGEINT, 0, 0, 0, 0
        FROM x WHERE stored AND d IS NOT NULL AND d >= $h0 AND d < $h1 AND d - c < min_hours
        GROUP BY ALL""")
    tasks = ok = unknown_targets = 0
    accel: dict = {}
    for kind, gkey, seg, cls, red, a, b, c, d, e in tgt:
        if kind == "T":
            tasks += int(a)
            ok += int(b)
            unknown_targets += int(e)
            if c:
                rows.append((gkey, seg, "imm.ImageSplicing", None, None, int(c)))
            if d:
                rows.append((gkey, seg, "oss.PutRequest", cls, None, int(d)))
            accel[(gkey, seg)] = accel.get((gkey, seg), 0) + int(a)
        elif a:
            rows.append((gkey, seg, "oss.Storage" if kind == "S" else "oss.EarlyDeletion", cls, red, int(a)))

    unknown_tasks = unknown_targets
    if unknown_sources:   # distinct tasks with an unknown source or (succeeded) target
        unknown_tasks = run(f"""
            WITH t AS (
                SELECT region, project, task_id, status, sources, target_uri FROM tasks WHERE {_PERIOD}
            ), su AS (
                SELECT DISTINCT u.region, u.project, u.task_id
                FROM (SELECT region, project, task_id, unnest(sources).uri AS uri FROM t) u
                LEFT JOIN objects o ON o.uri = u.uri WHERE o.size IS NULL
            ), tu AS (
                SELECT t.region, t.project, t.task_id FROM t LEFT JOIN objects o ON o.uri = t.target_uri
                WHERE t.status = 'Succeeded' AND o.size IS NULL
            )
            SELECT count(*) FROM (SELECT * FROM su UNION SELECT * FROM tu)""")[0][0]
    running, no_end = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'Running'), count(*) FILTER (WHERE status <> 'Running') "
        "FROM tasks WHERE (status = 'Running' OR end_time IS NULL) AND start_time >= $p0 AND start_time < $p1",
        {"p0": period.start, "p1": period.end}).fetchone()
    return _Agg(rows=rows, tasks=tasks, succeeded=ok, failed=tasks - ok, unknown_tasks=unknown_tasks,
                unknown_sources=unknown_sources, unknown_targets=unknown_targets, cold_sources=cold_sources,
                running=running, no_end=no_end, accel_tasks=accel)


def _selectors(item: str, cls, red) -> dict:
    keys = ITEMS[item][1]
    sel = {}
    if "storage_class" in keys:
        sel["storage_class"] = cls
    if "redundancy" in keys:
        sel["redundancy"] = red
    return sel


# ---------------------------------------------------------------------------------------------
# Pricing

@dataclass
class _Priced:
    lines: dict        # (gkey, item) -> exact Fraction amount
    quantities: dict   # (gkey, item) -> Fraction in the item's base unit
    combos: dict       # (item, cls, red, seg) -> PriceEntry
    pricer: Pricer


def _price(agg: _Agg, model: Model, book, period: Period, bounds: list[int]) -> _Priced:
    pricer = Pricer(book)
    starts = [period.h0] + bounds

    def instant(seg):
        return datetime.fromtimestamp(starts[seg] * 3600, UTC)

    rows = list(agg.rows)
    if model.accel_gb:
        for (gkey, seg), n in agg.accel_tasks.items():
            rows.append((gkey, seg, "oss.TransferAcceleration", None, None, None, n))
    lines: dict = {}
    qty: dict = {}
    combos: dict = {}
    for row in rows:
        if len(row) == 7:       # acceleration: per-task GB (exact) x tasks
            gkey, seg, item, cls, red, _, n = row
            q = model.accel_gb * n
        else:
            gkey, seg, item, cls, red, sub = row
            q = Fraction(sub, _SCALE_OF[ITEMS[item][0]])
        sel = _selectors(item, cls, red)
        amount = pricer.amount(item, sel, instant(seg), q)
        lines[(gkey, item)] = lines.get((gkey, item), Fraction(0)) + amount
        qty[(gkey, item)] = qty.get((gkey, item), Fraction(0)) + q
        key = (item, sel.get("storage_class"), sel.get("redundancy"), seg)
        if key not in combos and q:
            entry, _ = book.resolve(item, sel, instant(seg))
            combos[key] = entry
    pricer.raise_if_missing()
    return _Priced(lines, qty, combos, pricer)


def _group_label(by: str, gkey: str) -> str:
    if by.startswith("tag:"):
        return gkey if gkey != "" else "(none)"
    return gkey


def _warnings(agg: _Agg, priced: _Priced, model: Model) -> list[str]:
    w = []
    if agg.unknown_tasks:
        w.append(f"{agg.unknown_tasks} task(s) use default object facts ({agg.unknown_sources} source(s) and "
                 f"{agg.unknown_targets} target(s) without inventory facts: sources "
                 f"{fmt_quantity(Fraction(model.src_bytes, MB))} MB {model.src_class}, targets "
                 f"{fmt_quantity(Fraction(model.tgt_bytes, MB))} MB {model.tgt_class}); run `costkit inventory`.")
    if agg.cold_sources:
        w.append(f"{agg.cold_sources} request(s) on ColdArchive/DeepColdArchive sources: restore retrieval, restore "
                 "requests and the temporary Standard copy are NOT priced; reads are priced as if restored.")
    if agg.running:
        w.append(f"{agg.running} task(s) started in the period are still Running: not priced until they finish "
                 "(collect again).")
    if agg.no_end:
        w.append(f"{agg.no_end} finished task(s) started in the period have no end time: not priced.")
    for e in priced.pricer.used_entries():
        if e.confidence not in CONFIDENT and e.price:
            sel = ", ".join(f"{k}={v}" for k, v in e.selectors)
            w.append(f"{e.item}{' (' + sel + ')' if sel else ''} is priced at {e.price} {e.currency} per {e.unit} "
                     f"with confidence '{e.confidence}' ({e.source}); confirm it before relying on the figure.")
    if model.accel_gb:
        w.append("Transfer acceleration is charged on top of outbound traffic (NetworkOut), which is not priced.")
    return w


def _context(store, period, settings, prices_file):
    from costkit.model.settings import load_settings
    settings = settings or load_settings(None)
    book = load_price_book(settings.site, prices_file=prices_file, scenario_prices=settings.splice.prices,
                           scenario_path=settings.path)
    model = build_model(settings)
    bounds = _segments(book, model, period)
    return settings, book, model, bounds


@contextmanager
def _memory_limit(con):
    """Env COSTKIT_MEMORY_LIMIT (e.g. `2GB`) caps DuckDB's memory while pricing (it spills to disk beyond it);
    unset: DuckDB's default (80 % of RAM)."""
    limit = os.environ.get("COSTKIT_MEMORY_LIMIT")
    if not limit:
        yield
        return
    try:
        con.execute(f"SET memory_limit = '{_sql_str(limit)}'")
    except Exception as e:
        raise BadInput(f"not a DuckDB memory size: {limit!r} ({e})", field="COSTKIT_MEMORY_LIMIT") from None
    try:
        yield
    finally:   # the store never sets a limit of its own: back to DuckDB's default
        con.execute("RESET memory_limit")


def price_history(store, period: Period, *, by: str = "item", settings=None, prices_file=None) -> dict:
    """The cost report of `period` as one model (a dict; money as decimal strings). See the module doc."""
    by = parse_by(by)
    settings, book, model, bounds = _context(store, period, settings, prices_file)
    with store._lock, _memory_limit(store._con):
        agg = _aggregate(store._con, model, period, by, bounds)
    priced = _price(agg, model, book, period, bounds)
    rounded = {k: round_money(v) for k, v in priced.lines.items()}
    items = {k: ZERO for k in ITEM_KEYS}
    quantities = {k: Fraction(0) for k in ITEM_KEYS}
    for (gkey, item), v in rounded.items():
        items[item] += v
        quantities[item] += priced.quantities[(gkey, item)]
    total = sum(items.values(), ZERO)
    groups = []
    if by != "item":
        for gkey in sorted({g for g, _ in rounded}):
            gi = {k: rounded.get((gkey, k), ZERO) for k in ITEM_KEYS}
            gq = {k: fmt_quantity(priced.quantities.get((gkey, k), 0)) for k in ITEM_KEYS}
            groups.append({"group": _group_label(by, gkey), "items": {k: str(v) for k, v in gi.items()},
                           "quantities": gq, "total": str(sum(gi.values(), ZERO))})
    splices = quantities["imm.ImageSplicing"]
    return {
        "format_version": FORMAT_VERSION,
        "period": {"label": period.label, "start": period.start.isoformat(), "end": period.end.isoformat()},
        "site": settings.site, "currency": book.currency, "by": by,
        "tasks": agg.tasks, "succeeded": agg.succeeded, "failed": agg.failed,
        "billable_splices": int(splices),
        "items": {k: str(v) for k, v in items.items()},
        "quantities": {k: {"quantity": fmt_quantity(quantities[k]), "unit": ITEMS[k][0]} for k in ITEM_KEYS},
        "total": str(total),
        "groups": groups,
        "prices": [e.to_dict() for e in priced.pricer.used_entries()],
        "assumptions": {"usage": _plain(dict(settings.splice.usage)), "requests": dict(settings.splice.requests),
                        "accelerated_gb_per_task": _plain(settings.splice.accelerated_gb_per_task),
                        "defaults": {k: _plain(getattr(settings.splice, k)) for k in (
                            "source_size_mb", "source_storage_class", "archive_direct_read", "target_size_mb",
                            "target_storage_class", "target_redundancy", "target_retention_days")},
                        "settings_file": settings.path},
        "warnings": _warnings(agg, priced, model),
    }


# ---------------------------------------------------------------------------------------------
# Charge lines

def _split(num: int, den: int) -> tuple[int, int, int]:
    """(A, B, D) with num * 10^18 / den = A + B / D, for HUGEINT-safe scaled arithmetic in SQL."""
    f = Fraction(num * 10**LINE_SCALE, den)
    a, b = divmod(f.numerator, f.denominator)
    return a, b, f.denominator


def _price_table(con, priced: _Priced, currency: str, accel_gb: Fraction) -> None:
    rows = []
    for (item, cls, red, seg), e in priced.combos.items():
        if e is None:
            continue
        scale = _SCALE_OF[ITEMS[item][0]]
        per_sub = e.per_base_unit() / scale                        # price per integer sub-unit
        qa, qb, qd = _split(1, scale * UNITS[e.unit][1])           # sub-units -> entry units
        aa, ab, ad = _split(per_sub.numerator, per_sub.denominator)
        src = f"{e.layer}: {e.source} ({e.confidence})"
        fixed_q = fixed_amount = None
        if item == "oss.TransferAcceleration":   # the same quantity for every task
            fixed_q = _dec18(accel_gb / UNITS[e.unit][1])
            fixed_amount = _dec18(accel_gb * e.per_base_unit())
        rows.append((item, cls, red, seg, e.unit, str(e.price), currency, qa, qb, qd, aa, ab, ad, src, fixed_q,
                     fixed_amount))
    con.execute("CREATE OR REPLACE TEMP TABLE _prices (item VARCHAR, cls VARCHAR, red VARCHAR, seg INTEGER, "
                "unit VARCHAR, unit_price DECIMAL(38,18), currency VARCHAR, qa HUGEINT, qb HUGEINT, qd HUGEINT, "
                "aa HUGEINT, ab HUGEINT, ad HUGEINT, price_source VARCHAR, fixed_q DECIMAL(38,18), "
                "fixed_amount DECIMAL(38,18))")
    con.executemany("INSERT INTO _prices VALUES (?, ?, ?, ?, ?, CAST(? AS DECIMAL(38,18)), ?, ?, ?, ?, ?, ?, ?, ?, "
                    "CAST(? AS DECIMAL(38,18)), CAST(? AS DECIMAL(38,18)))", rows)


def _dec18(f: Fraction) -> str:
    """An exact non-negative value rounded half-up at 10^-18, as a decimal string."""
    n, r = divmod(f.numerator * 10**LINE_SCALE, f.denominator)
    n += 1 if 2 * r >= f.denominator else 0
    return str(Decimal(n).scaleb(-LINE_SCALE))


def _lines_sql(model: Model, bounds: list[int], hour_as_text: bool, selectors: bool = False) -> str:
    """One row per task, hour and item (exact integer sub-unit quantities, then scaled DECIMALs), in a total
    order (hour, project, task, item, class, redundancy) so that two runs write identical files.
    `selectors`: also the price selectors `storage_class` and `redundancy` (for the FOCUS export)."""
    accel = ""
    if model.accel_gb:   # a constant per task: its quantity and amount are precomputed in _prices
        accel = """
            UNION ALL SELECT task_id, project, c, 'oss.TransferAcceleration', NULL, NULL, 0 FROM x WHERE in_period"""
    scaled = "(ev.q * {a} + (2 * ev.q * {b} + {d}) // (2 * {d}))::DECIMAL(38,0) * 0.000000000000000001::DECIMAL(18,18)"
    hour = ("strftime(make_timestamp(((ev.h * 3600 + 28800) * 1000000)::BIGINT), '%Y-%m-%dT%H:00:00+08:00')"
            if hour_as_text else "to_timestamp((ev.h * 3600)::BIGINT)")
    qexpr = scaled.format(a="p.qa", b="p.qb", d="p.qd")
    aexpr = scaled.format(a="p.aa", b="p.ab", d="p.ad")
    return f"""
        WITH {_src_ctes('item', model, ids=True)}, {_tgt_ctes('item', model, ids=True)}, src_ev AS (
            SELECT task_id, project, h, cls, sum(get_req) AS get_req, sum(size * ia_factor) AS ia,
                   sum(size * adr_factor) AS adr
            FROM f GROUP BY ALL
        ), ev AS (
            SELECT task_id, project, h, 'oss.GetRequest' AS item, cls, NULL AS red, get_req::HUGEINT AS q
                FROM src_ev WHERE get_req > 0
            UNION ALL SELECT task_id, project, h, 'oss.IaRetrieval', NULL, NULL, ia FROM src_ev WHERE ia > 0
            UNION ALL SELECT task_id, project, h, 'oss.ArchiveDirectRead', NULL, NULL, adr FROM src_ev WHERE adr > 0
            UNION ALL SELECT task_id, project, c, 'imm.ImageSplicing', NULL, NULL, 1 FROM x
                WHERE in_period AND (status = 'Succeeded' OR $splice_failed) AND end_time >= $imm_start
            UNION ALL SELECT task_id, project, c, 'oss.PutRequest', cls, NULL, put FROM x
                WHERE in_period AND status = 'Succeeded' AND put > 0
            {accel}
            UNION ALL SELECT task_id, project, hh, 'oss.Storage', cls, red, bb
                FROM (SELECT *, unnest(range(greatest(c, $h0), least(coalesce(d, $h1), $h1))) AS hh FROM x
                      WHERE stored AND c < $h1 AND coalesce(d, $h1) > $h0)
            UNION ALL SELECT task_id, project, d, 'oss.EarlyDeletion', cls, red, bb * (min_hours - (d - c)) FROM x
                WHERE stored AND d IS NOT NULL AND d >= $h0 AND d < $h1 AND d - c < min_hours
        )
        SELECT ev.task_id, ev.project, {hour} AS hour, ev.item,
               coalesce(p.fixed_q, {qexpr}) AS quantity,
               p.unit, p.unit_price, p.currency,
               coalesce(p.fixed_amount, {aexpr}) AS amount,
               p.price_source{", p.cls AS storage_class, p.red AS redundancy" if selectors else ""}
        FROM ev JOIN _prices p ON p.item = ev.item AND p.cls IS NOT DISTINCT FROM ev.cls
                               AND p.red IS NOT DISTINCT FROM ev.red AND p.seg = {_seg_sql('ev.h', bounds)}
        ORDER BY ev.h, ev.project, ev.task_id, ev.item, ev.cls NULLS FIRST, ev.red NULLS FIRST"""


def _lines_query(store, period, settings, prices_file, hour_as_text, selectors=False):
    settings, book, model, bounds = _context(store, period, settings, prices_file)
    con = store._con
    agg = _aggregate(con, model, period, "item", bounds)
    priced = _price(agg, model, book, period, bounds)
    _price_table(con, priced, book.currency, model.accel_gb)
    params = _setup(con, model, period, _cuts(period, bounds, False))
    sql = _lines_sql(model, bounds, hour_as_text, selectors)
    return sql, {k: v for k, v in params.items() if f"${k}" in sql}


def write_lines(store, period: Period, out, *, fmt: str = "csv", settings=None, prices_file=None) -> int:
    """Write the charge lines (CSV or Parquet) to `out` (CSV to stdout when `out` is None); return the count."""
    with store._lock, _memory_limit(store._con):
        sql, params = _lines_query(store, period, settings, prices_file, hour_as_text=(fmt == "csv"))
        con = store._con
        if out is None:   # CSV to stdout, streamed in batches
            import sys
            cur = con.execute(sql, params)
            w = csvsafe.writer(sys.stdout, lineterminator="\n")
            w.writerow(LINE_COLUMNS)
            n = 0
            while rows := cur.fetchmany(50_000):
                w.writerows(["" if v is None else v for v in r] for r in rows)
                n += len(rows)
            return n
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        opts = "(FORMAT PARQUET, COMPRESSION ZSTD)" if fmt == "parquet" else "(FORMAT CSV, HEADER)"
        if fmt == "csv":  # spreadsheet-safe text cells (core.csvsafe), as in every CSV costkit writes
            sql = f"SELECT * REPLACE ({', '.join(f'{csvsafe.sql_safe(c)} AS {c}' for c in _TEXT_LINE_COLUMNS)}) FROM ({sql})"
        n = con.execute(f"COPY ({sql}) TO '{_sql_str(str(tmp))}' {opts}", params).fetchone()[0]
        tmp.replace(p)
        return int(n)


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def cost_frames(store, period: Period, *, by: str = "item", settings=None, prices_file=None):
    """Python API: (charge lines, totals) as pandas DataFrames.

    Charge lines: the `LINE_COLUMNS`, one row per task, hour (aware UTC timestamp of the hour's start) and
    item; quantity, unit_price and amount are Python Decimals (DECIMAL(38,18), see the module doc).
    Totals: one row per report line (group, item) with quantity (base unit, Decimal), unit, amount (Decimal,
    2 places, rounded half-up from the exact sum) and currency; `group` is "" without `by`.
    """
    import pandas as pd
    with store._lock, _memory_limit(store._con):
        sql, params = _lines_query(store, period, settings, prices_file, hour_as_text=False)
        lines = store._con.sql(sql, params=params).to_arrow_table().to_pandas()
    report = price_history(store, period, by=by, settings=settings, prices_file=prices_file)
    rows = []
    if report["groups"]:
        for g in report["groups"]:
            for item, amount in g["items"].items():
                rows.append({"group": g["group"], "item": item, "amount": Decimal(amount)})
    else:
        for item, amount in report["items"].items():
            rows.append({"group": "", "item": item,
                         "quantity": Decimal(report["quantities"][item]["quantity"]),
                         "unit": report["quantities"][item]["unit"], "amount": Decimal(amount)})
    totals = pd.DataFrame(rows)
    totals["currency"] = report["currency"]
    return lines, totals


# ---------------------------------------------------------------------------------------------
# Rendering

def render_report(report: dict, fmt: str) -> str:
    from costkit.outputs.text import text_table, to_json
    if fmt == "json":
        return to_json(report)
    items = [k for k in ITEM_KEYS if report["items"][k] != "0.00"] or ["imm.ImageSplicing"]
    if fmt == "csv":
        import io
        buf = io.StringIO()
        w = csvsafe.writer(buf, lineterminator="\n")
        w.writerow(["period", "group", "item", "amount", "currency"])
        for g in report["groups"] or [{"group": "", "items": report["items"], "total": report["total"]}]:
            for k in ITEM_KEYS:
                w.writerow([report["period"]["label"], g["group"], k, g["items"][k], report["currency"]])
            w.writerow([report["period"]["label"], g["group"], "total", g["total"], report["currency"]])
        if report["groups"]:
            w.writerow([report["period"]["label"], "", "total", report["total"], report["currency"]])
        return buf.getvalue()
    head = (f"Cost of {report['period']['label']} ({report['site']}, {report['currency']}): {report['tasks']} tasks, "
            f"{report['succeeded']} succeeded, {report['failed']} failed, {report['billable_splices']} billable "
            f"splices\n")
    if report["groups"]:
        rows = [[g["group"], *[g["items"][k] for k in items], g["total"]] for g in report["groups"]]
        rows.append(["total", *[report["items"][k] for k in items], report["total"]])
        return head + text_table([report["by"], *items, "total"], rows, right=set(range(1, len(items) + 2)))
    rows = [[k, report["quantities"][k]["quantity"], report["quantities"][k]["unit"], report["items"][k]]
            for k in ITEM_KEYS]
    rows.append(["total", "", "", report["total"]])
    return head + text_table(["item", "quantity", "unit", "amount"], rows, right={1, 3})


__all__ = ["Period", "parse_period", "parse_by", "price_history", "cost_frames", "write_lines", "render_report",
           "build_model", "LINE_COLUMNS"]
