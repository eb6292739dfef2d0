"""Charge lines (`costkit cost --lines`, `cost_frames(lines=True)`, the FOCUS export): one row per task x item x
billing interval x price segment.

The interval is the Asia/Shanghai billing `day` by default (the bill's own granularity), or the `hour` or the
`month` (`--granularity`). A row never straddles a price change: an interval in which some price changes is
cut there, and `charge_start`/`charge_end` say which part of it the row covers.

`amount` is DECIMAL(38,18): the exact amount of that task, item and interval, rounded half-up at the 18th decimal
(storage amounts such as 0.12/720 per GB-hour have no finite decimal expansion); the lines add up to the exact
amount within 10^-18 per line, so the lines of a billing day and item (at day or hour granularity), summed and
rounded half-up to the cent, give the report's day x item figure, as the bill rounds. `quantity` is in
the price entry's `unit` (e.g. `10000 requests`, `GB-month`), DECIMAL(38,18), and `unit_price` is the entry's
price as written in the book. Report lines never come from these rounded lines (costkit.engine.history).
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI, add_months
from costkit.engine.aggregate import aggregate
from costkit.engine.coefficients import Model
from costkit.engine.context import memory_limit, pricing_context, sql_str
from costkit.engine.history_price import SCALE_OF, Priced, price_aggregate
from costkit.engine.history_sql import setup_tables, source_ctes, target_ctes
from costkit.engine.period import Period, period_cuts, segment_sql
from costkit.prices.book import ITEMS, UNITS

LINE_SCALE = 18
# DuckDB's memory while writing lines (env COSTKIT_MEMORY_LIMIT overrides): it spills beyond, so that a month
# of a million tasks stays under 2 GB of RSS.
LINES_MEMORY = "1GB"
GRANULARITIES = ("hour", "day", "month")
_VALUE_COLUMNS = ["item", "quantity", "unit", "unit_price", "currency", "amount", "price_source"]
_TEXT_LINE_COLUMNS = ("task_id", "project", "item", "unit", "currency", "price_source")


def line_columns(granularity: str = "day") -> list[str]:
    """The columns of the charge lines at `granularity` (the interval label is named after it)."""
    return ["task_id", "project", granularity, "charge_start", "charge_end", *_VALUE_COLUMNS]


LINE_COLUMNS = line_columns("day")


def check_granularity(granularity: str) -> str:
    """`granularity` when it is hour, day or month; BadInput naming --granularity otherwise."""
    if granularity not in GRANULARITIES:
        raise BadInput(f"expected hour, day or month, got {granularity!r}", field="--granularity")
    return granularity


def _split(num: int, den: int) -> tuple[int, int, int]:
    """(A, B, D) with num * 10^18 / den = A + B / D, for HUGEINT-safe scaled arithmetic in SQL."""
    f = Fraction(num * 10**LINE_SCALE, den)
    a, b = divmod(f.numerator, f.denominator)
    return a, b, f.denominator


def _price_table(con, priced: Priced, currency: str, accel_gb: Fraction) -> None:
    """Temp table `_prices`: per (item, class, redundancy, segment) the entry's unit and price and the scaled
    integer factors that turn an integer sub-unit quantity into the line's quantity and amount."""
    rows = []
    for (item, cls, red, seg), e in priced.combos.items():
        if e is None:
            continue
        scale = SCALE_OF[ITEMS[item][0]]
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


def _unit_of_hour(h: int, granularity: str) -> int:
    """The interval index of hour index `h`: the hour itself, the Asia/Shanghai day, or the month (y*12+m)."""
    if granularity == "hour":
        return h
    if granularity == "day":
        return (h + 8) // 24
    from datetime import datetime
    local = datetime.fromtimestamp(h * 3600, SHANGHAI)
    return local.year * 12 + local.month - 1


def _unit_sql(col: str, granularity: str) -> str:
    """SQL: `_unit_of_hour` of the hour index in `col`."""
    if granularity == "hour":
        return col
    if granularity == "day":
        return f"(({col} + 8) // 24)"
    local = f"make_timestamp((({col}) * 3600 + 28800) * 1000000)"
    return f"(year({local}) * 12 + month({local}) - 1)"


def _month_bounds(period: Period) -> set[int]:
    """Hour indexes of the Asia/Shanghai month starts inside the period."""
    from datetime import datetime
    local = period.start.astimezone(SHANGHAI)
    y, m = add_months(local.year, local.month, 1)
    out = set()
    while (h := int(datetime(y, m, 1, tzinfo=SHANGHAI).timestamp()) // 3600) < period.h1:
        out.add(h)
        y, m = add_months(y, m, 1)
    return out


def line_cuts(period: Period, bounds: list[int], granularity: str) -> list[tuple[int, int, int, int]]:
    """(interval index, segment, start hour, end hour) of every cut of the period: its days (or months), each
    cut again where a price changes. Not used at hour granularity (every hour is its own cut)."""
    if granularity == "day":
        return [(_unit_of_hour(s, "day"), seg, s, e) for s, e, seg, _ in period_cuts(period, bounds, True)]
    pts = sorted({period.h0, period.h1, *bounds, *_month_bounds(period)})
    return [(_unit_of_hour(a, "month"), sum(1 for x in bounds if a >= x), a, b) for a, b in zip(pts, pts[1:])]


def _local_text(hour_sql: str, fmt: str) -> str:
    return f"strftime(make_timestamp((({hour_sql}) * 3600 + 28800) * 1000000), '{fmt}')"


def _label_sql(granularity: str, as_text: bool) -> str:
    """SQL: the interval label of a row from its start hour `ev.s` (text in +08:00, or typed for frames)."""
    if granularity == "hour":
        return _local_text("ev.s", "%Y-%m-%dT%H:00:00+08:00") if as_text else "to_timestamp(ev.s * 3600)"
    if granularity == "day":
        return _local_text("ev.s", "%Y-%m-%d") if as_text else "(DATE '1970-01-01' + CAST((ev.s + 8) // 24 AS INTEGER))"
    return _local_text("ev.s", "%Y-%m")


def _events_sql(model: Model, granularity: str, bounds: list[int]) -> str:
    """CTEs `src_ev`, `pev` (events at one hour `h`) and `ev`: every (task, interval start `s`, end `e`,
    segment, item, class, redundancy) with its exact integer sub-unit quantity `q`."""
    accel = ""
    if model.accel_gb:   # a constant per task: its quantity and amount are precomputed in _prices
        accel = """
            UNION ALL SELECT task_id, project, c, 'oss.TransferAcceleration', NULL, NULL, 0 FROM x WHERE in_period"""
    points = f"""src_ev AS (
            SELECT task_id, project, h, cls, sum(get_req) AS get_req, sum(size * ia_factor) AS ia,
                   sum(size * adr_factor) AS adr
            FROM f GROUP BY ALL
        ), pev AS (
            SELECT task_id, project, h, 'oss.GetRequest' AS item, cls, NULL AS red, get_req::HUGEINT AS q
                FROM src_ev WHERE get_req > 0
            UNION ALL SELECT task_id, project, h, 'oss.IaRetrieval', NULL, NULL, ia FROM src_ev WHERE ia > 0
            UNION ALL SELECT task_id, project, h, 'oss.ArchiveDirectRead', NULL, NULL, adr FROM src_ev WHERE adr > 0
            UNION ALL SELECT task_id, project, c, 'imm.ImageSplicing', NULL, NULL, 1 FROM x
                WHERE in_period AND (status = 'Succeeded' OR $splice_failed) AND end_time >= $imm_start
            UNION ALL SELECT task_id, project, c, 'oss.PutRequest', cls, NULL, put FROM x
                WHERE in_period AND status = 'Succeeded' AND put > 0
            {accel}
            UNION ALL SELECT task_id, project, d, 'oss.EarlyDeletion', cls, red, bb * (min_hours - (d - c)) FROM xe
                WHERE stored AND d IS NOT NULL AND d >= $h0 AND d < $h1 AND d - c < min_hours
        )"""
    if granularity == "hour":
        return points + f""", hev AS (
            SELECT * FROM pev
            UNION ALL SELECT task_id, project, hh, 'oss.Storage', cls, red, bb
                FROM (SELECT *, unnest(range(greatest(c, $h0), least(coalesce(d, $h1), $h1))) AS hh FROM xs
                      WHERE stored AND c < $h1 AND coalesce(d, $h1) > $h0)
        ), ev AS (
            SELECT task_id, project, h AS s, h + 1 AS e, {segment_sql('h', bounds)} AS seg, item, cls, red, q
            FROM hev
        )"""
    return points + f""", ev AS (
            SELECT p.task_id, p.project, k.s, k.e, k.seg, p.item, p.cls, p.red, p.q
            FROM pev p JOIN _lcuts k ON k.u = {_unit_sql('p.h', granularity)} AND k.seg = {segment_sql('p.h', bounds)}
            UNION ALL
            SELECT x.task_id, x.project, k.s, k.e, k.seg, 'oss.Storage', x.cls, x.red,
                   x.bb * (least(coalesce(x.d, $h1), k.e) - greatest(x.c, k.s))
            FROM xs x JOIN _lcuts k ON x.c < k.e AND coalesce(x.d, $h1) > k.s
            WHERE x.stored
        )"""


def _lines_sql(model: Model, bounds: list[int], hour_as_text: bool, selectors: bool = False,
               granularity: str = "hour") -> str:
    """One row per task, interval, segment and item (exact integer sub-unit quantities, then scaled DECIMALs),
    in a total order (interval, project, task, item, class, redundancy) so that two runs write identical files.
    `selectors`: also the price selectors `storage_class` and `redundancy` (for the FOCUS export)."""
    scaled = "(ev.q * {a} + (2 * ev.q * {b} + {d}) // (2 * {d}))::DECIMAL(38,0) * 0.000000000000000001::DECIMAL(18,18)"
    qexpr = scaled.format(a="p.qa", b="p.qb", d="p.qd")
    aexpr = scaled.format(a="p.aa", b="p.ab", d="p.ad")
    if hour_as_text:
        start = _local_text("ev.s", "%Y-%m-%dT%H:00:00+08:00")
        end = _local_text("ev.e", "%Y-%m-%dT%H:00:00+08:00")
    else:
        start, end = "to_timestamp(ev.s * 3600)", "to_timestamp(ev.e * 3600)"
    return f"""
        WITH {source_ctes('item', model, ids=True)}, {target_ctes('item', model, ids=True)},
        {_events_sql(model, granularity, bounds)}
        SELECT ev.task_id, ev.project, {_label_sql(granularity, hour_as_text)} AS "{granularity}",
               {start} AS charge_start, {end} AS charge_end, ev.item,
               coalesce(p.fixed_q, {qexpr}) AS quantity,
               p.unit, p.unit_price, p.currency,
               coalesce(p.fixed_amount, {aexpr}) AS amount,
               p.price_source{", p.cls AS storage_class, p.red AS redundancy" if selectors else ""}
        FROM ev JOIN _prices p ON p.item = ev.item AND p.cls IS NOT DISTINCT FROM ev.cls
                               AND p.red IS NOT DISTINCT FROM ev.red AND p.seg = ev.seg
        ORDER BY ev.s, ev.project, ev.task_id, ev.item, ev.cls NULLS FIRST, ev.red NULLS FIRST"""


def _prepare(store, period, settings, prices_file):
    """(usage model, segment bounds, SQL parameters) with the temp tables the lines join: the prices of each
    (item, class, redundancy, segment) and the engine's coefficient tables."""
    settings, book, model, bounds = pricing_context(store, period, settings, prices_file)
    agg = aggregate(store._con, model, period, "item", bounds)
    priced = price_aggregate(agg, model, book, period, bounds)
    _price_table(store._con, priced, book.currency, model.accel_gb)
    return model, bounds, setup_tables(store._con, model, period, period_cuts(period, bounds, False))


def lines_query(store, period, settings, prices_file, hour_as_text, selectors=False, granularity="hour"):
    """(SQL, parameters) of the charge lines of `period` at `granularity` on `store`'s connection (run it under
    the store's lock; it relies on the temp tables this call creates). `hour_as_text`: times as `...+08:00`
    strings (CSV), else typed (timestamps, dates) for DataFrames and Parquet."""
    check_granularity(granularity)
    model, bounds, params = _prepare(store, period, settings, prices_file)
    con = store._con
    con.execute("CREATE OR REPLACE TEMP TABLE _lcuts (u BIGINT, seg INTEGER, s BIGINT, e BIGINT)")
    if granularity != "hour":
        con.executemany("INSERT INTO _lcuts VALUES (?, ?, ?, ?)", line_cuts(period, bounds, granularity))
    sql = _lines_sql(model, bounds, hour_as_text, selectors, granularity)
    return sql, {k: v for k, v in params.items() if f"${k}" in sql}


def _chunk_tables(store, period, settings, prices_file, granularity: str) -> list[tuple[int, int, int]]:
    """Temp tables for writing the lines interval by interval: `_lpev` (events at one hour, with the
    interval they fall in), `_lst` (stored targets: hours [c, d)); returns the intervals (start, end, segment)
    in order. Same events and prices as `lines_query`."""
    model, bounds, params = _prepare(store, period, settings, prices_file)
    con = store._con
    if granularity == "hour":
        cuts = [(h, h + 1, sum(1 for b in bounds if h >= b)) for h in range(period.h0, period.h1)]
        where = f"SELECT p.*, p.h AS s, p.h + 1 AS e, {segment_sql('p.h', bounds)} AS seg FROM pev p"
    else:
        rows = line_cuts(period, bounds, granularity)
        con.execute("CREATE OR REPLACE TEMP TABLE _lcuts (u BIGINT, seg INTEGER, s BIGINT, e BIGINT)")
        con.executemany("INSERT INTO _lcuts VALUES (?, ?, ?, ?)", rows)
        cuts = [(a, b, seg) for _, seg, a, b in rows]
        where = (f"SELECT p.*, k.s, k.e, k.seg FROM pev p JOIN _lcuts k ON k.u = {_unit_sql('p.h', granularity)} "
                 f"AND k.seg = {segment_sql('p.h', bounds)}")
    ctes = f"WITH {source_ctes('item', model, ids=True)}, {target_ctes('item', model, ids=True)}, " + \
        _events_sql(model, "day", bounds).split(", ev AS (")[0]
    sql = f"CREATE OR REPLACE TEMP TABLE _lpev AS {ctes} {where} ORDER BY s"
    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    sql = (f"CREATE OR REPLACE TEMP TABLE _lst AS WITH {target_ctes('item', model, ids=True)} "
           "SELECT task_id, project, c, coalesce(d, $h1) AS d, bb, cls, red FROM xs "
           "WHERE stored AND c < $h1 AND coalesce(d, $h1) > $h0")
    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    return cuts


def _chunk_sql(granularity: str, as_text: bool) -> str:
    """The lines of one interval [$s, $e) of segment $seg from the chunk tables, in the lines' order."""
    safe = (lambda c: csvsafe.sql_safe(c)) if as_text else (lambda c: c)
    scaled = "(ev.q * {a} + (2 * ev.q * {b} + {d}) // (2 * {d}))::DECIMAL(38,0) * 0.000000000000000001::DECIMAL(18,18)"
    if as_text:
        start, end = (_local_text(f"ev.{c}", "%Y-%m-%dT%H:00:00+08:00") for c in ("s", "e"))
    else:
        start, end = "to_timestamp(ev.s * 3600)", "to_timestamp(ev.e * 3600)"
    return f"""
        WITH ev AS (
            SELECT task_id, project, s, e, item, cls, red, q FROM _lpev WHERE s = $s AND seg = $seg
            UNION ALL
            SELECT task_id, project, $s::BIGINT, $e::BIGINT, 'oss.Storage', cls, red,
                   bb * (least(d, $e) - greatest(c, $s)) FROM _lst WHERE c < $e AND d > $s
        ), l AS (
            SELECT ev.task_id, ev.project, {_label_sql(granularity, as_text)} AS "{granularity}",
                   {start} AS charge_start, {end} AS charge_end, ev.item,
                   coalesce(p.fixed_q, {scaled.format(a="p.qa", b="p.qb", d="p.qd")}) AS quantity,
                   p.unit, p.unit_price, p.currency,
                   coalesce(p.fixed_amount, {scaled.format(a="p.aa", b="p.ab", d="p.ad")}) AS amount,
                   p.price_source, ev.cls, ev.red
            FROM ev JOIN _prices p ON p.item = ev.item AND p.cls IS NOT DISTINCT FROM ev.cls
                                   AND p.red IS NOT DISTINCT FROM ev.red AND p.seg = $seg
        )
        SELECT {", ".join(safe(c) + (f' AS {c}' if as_text and c in _TEXT_LINE_COLUMNS else '')
                          if c in _TEXT_LINE_COLUMNS else f'"{c}"' for c in line_columns(granularity))}
        FROM l ORDER BY l.project, l.task_id, l.item, l.cls NULLS FIRST, l.red NULLS FIRST"""


def write_lines(store, period: Period, out, *, fmt: str = "csv", settings=None, prices_file=None,
                granularity: str = "day") -> int:
    """Write the charge lines at `granularity` (CSV or Parquet) to `out` (CSV to stdout when `out` is None or
    "-"); return the number of lines. Written interval by interval (each sorted on its own), so that memory
    stays bounded by one interval's lines; the order is that of `lines_query`."""
    check_granularity(granularity)
    to_stdout = out is None or out == "-"
    with store._lock, memory_limit(store._con, default=LINES_MEMORY):
        con = store._con
        cuts = _chunk_tables(store, period, settings, prices_file, granularity)
        sql = _chunk_sql(granularity, as_text=(fmt == "csv"))
        tmp = None if to_stdout else Path(out).with_name(Path(out).name + ".tmp")
        if tmp is not None:
            tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            n = (_write_parquet if fmt == "parquet" else _write_csv)(con, sql, cuts, tmp)
        finally:
            for t in ("_lpev", "_lst"):
                con.execute(f"DROP TABLE IF EXISTS {t}")
        if tmp is not None:
            tmp.replace(out)
        return n


def _write_parquet(con, sql: str, cuts, tmp: Path) -> int:
    import pyarrow.parquet as pq
    writer, n = None, 0
    try:
        for s, e, seg in cuts + [(0, 0, -1)]:   # the last, empty interval gives the schema of an empty file
            for batch in con.sql(sql, params={"s": s, "e": e, "seg": seg}).to_arrow_reader(200_000):
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), batch.schema, compression="zstd")
                if batch.num_rows:
                    writer.write_batch(batch)
                    n += batch.num_rows
            if writer is None:
                schema = con.sql(sql, params={"s": s, "e": e, "seg": seg}).to_arrow_table().schema
                writer = pq.ParquetWriter(str(tmp), schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    return n


def _write_csv(con, sql: str, cuts, tmp: Path | None) -> int:
    """CSV (text cells made spreadsheet-safe in the SQL) to `tmp`, or to stdout when `tmp` is None."""
    import csv
    import sys
    f = sys.stdout if tmp is None else open(tmp, "w", encoding="utf-8", newline="")
    try:
        w = csv.writer(f, lineterminator="\n")
        n = 0
        for i, (s, e, seg) in enumerate(cuts):
            cur = con.execute(sql, {"s": s, "e": e, "seg": seg})
            if i == 0:
                w.writerow([d[0] for d in cur.description])
            while rows := cur.fetchmany(50_000):
                w.writerows(["" if v is None else v for v in r] for r in rows)
                n += len(rows)
    finally:
        if tmp is not None:
            f.close()
        else:
            f.flush()
    return n


_lines_query = lines_query   # the name outputs.focus imports

__all__ = ["GRANULARITIES", "LINE_COLUMNS", "check_granularity", "line_columns", "lines_query", "write_lines"]
