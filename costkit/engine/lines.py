"""Charge lines (`costkit cost --lines`, `cost_frames`, the FOCUS export): one row per task, hour and item.

`amount` is DECIMAL(38,18): the exact amount of that task, hour and item, rounded half-up at the 18th decimal
(hourly storage amounts such as 0.12/720 per GB have no finite decimal expansion). `quantity` is in the price
entry's `unit` (e.g. `10000 requests`, `GB-month`), DECIMAL(38,18), and `unit_price` is the entry's price as
written in the book. Report lines never come from these rounded lines (costkit.engine.history).
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from costkit.core import csvsafe
from costkit.engine.aggregate import aggregate
from costkit.engine.coefficients import Model
from costkit.engine.context import memory_limit, pricing_context, sql_str
from costkit.engine.history_price import SCALE_OF, Priced, price_aggregate
from costkit.engine.history_sql import setup_tables, source_ctes, target_ctes
from costkit.engine.period import Period, period_cuts, segment_sql
from costkit.prices.book import ITEMS, UNITS

LINE_SCALE = 18
LINE_COLUMNS = ["task_id", "project", "hour", "item", "quantity", "unit", "unit_price", "currency", "amount",
                "price_source"]
_TEXT_LINE_COLUMNS = ("task_id", "project", "item", "unit", "currency", "price_source")


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
        WITH {source_ctes('item', model, ids=True)}, {target_ctes('item', model, ids=True)}, src_ev AS (
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
                FROM (SELECT *, unnest(range(greatest(c, $h0), least(coalesce(d, $h1), $h1))) AS hh FROM xs
                      WHERE stored AND c < $h1 AND coalesce(d, $h1) > $h0)
            UNION ALL SELECT task_id, project, d, 'oss.EarlyDeletion', cls, red, bb * (min_hours - (d - c)) FROM xe
                WHERE stored AND d IS NOT NULL AND d >= $h0 AND d < $h1 AND d - c < min_hours
        )
        SELECT ev.task_id, ev.project, {hour} AS hour, ev.item,
               coalesce(p.fixed_q, {qexpr}) AS quantity,
               p.unit, p.unit_price, p.currency,
               coalesce(p.fixed_amount, {aexpr}) AS amount,
               p.price_source{", p.cls AS storage_class, p.red AS redundancy" if selectors else ""}
        FROM ev JOIN _prices p ON p.item = ev.item AND p.cls IS NOT DISTINCT FROM ev.cls
                               AND p.red IS NOT DISTINCT FROM ev.red AND p.seg = {segment_sql('ev.h', bounds)}
        ORDER BY ev.h, ev.project, ev.task_id, ev.item, ev.cls NULLS FIRST, ev.red NULLS FIRST"""


def lines_query(store, period, settings, prices_file, hour_as_text, selectors=False):
    """(SQL, parameters) of the charge lines of `period` on `store`'s connection (run it under the store's
    lock; it relies on the temp tables this call creates). `hour_as_text`: hours as `...+08:00` strings."""
    settings, book, model, bounds = pricing_context(store, period, settings, prices_file)
    con = store._con
    agg = aggregate(con, model, period, "item", bounds)
    priced = price_aggregate(agg, model, book, period, bounds)
    _price_table(con, priced, book.currency, model.accel_gb)
    params = setup_tables(con, model, period, period_cuts(period, bounds, False))
    sql = _lines_sql(model, bounds, hour_as_text, selectors)
    return sql, {k: v for k, v in params.items() if f"${k}" in sql}


def write_lines(store, period: Period, out, *, fmt: str = "csv", settings=None, prices_file=None) -> int:
    """Write the charge lines (CSV or Parquet) to `out` (CSV to stdout when `out` is None); return the count."""
    with store._lock, memory_limit(store._con):
        sql, params = lines_query(store, period, settings, prices_file, hour_as_text=(fmt == "csv"))
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
        n = con.execute(f"COPY ({sql}) TO '{sql_str(str(tmp))}' {opts}", params).fetchone()[0]
        tmp.replace(p)
        return int(n)


_lines_query = lines_query   # the name outputs.focus imports

__all__ = ["LINE_COLUMNS", "lines_query", "write_lines"]
