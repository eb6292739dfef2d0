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

**Money.** One rule (costkit.money), one figure (costkit.engine.rounding). The report is built from day x item
lines (Asia/Shanghai days), each its exact sum rounded half-up to 2 decimals once; `items` and `total` are
sums of those lines, whatever `--by` is, so `cost --month`, `--by day` and `--by project` agree to the cent.
A `--by project` or `--by tag:KEY` group gets its share of each day x item line's cents by largest remainder
of its exact amount, and keeps the exact amount (`exact_total`, 18 decimals).
Charge lines (`--lines`) carry `amount` as DECIMAL(38,18): the exact amount of that task, hour and item,
rounded half-up at the 18th decimal (hourly storage amounts such as 0.12/720 per GB have no finite decimal
expansion). `quantity` is in the price entry's `unit` (e.g. `10000 requests`, `GB-month`), DECIMAL(38,18),
and `unit_price` is the entry's price as written in the book. Report lines are computed from exact
integer quantity sums, never from rounded charge lines.

**Modules.** `engine.period` (periods, segments, days), `engine.coefficients` (the usage model as coefficient
tables), `engine.history_sql` (the joins), `engine.aggregate` (the quantity sums), `engine.history_price` (their
prices and the warnings), `engine.lines` (charge lines), `engine.context` (settings, book, memory cap); this
module: the report and the DataFrames. Rendering the report: `costkit.outputs.cost`.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.core.money import ZERO, fmt_quantity
from costkit.engine.aggregate import aggregate
from costkit.engine.context import memory_limit, pricing_context
from costkit.engine.history_price import price_aggregate, report_warnings
from costkit.engine.history_sql import DAY_AND
from costkit.engine.rounding import day_item_figures
from costkit.engine.lines import lines_query
from costkit.engine.period import Period, parse_by
from costkit.engine.profile import plain
from costkit.prices.book import ITEM_KEYS, ITEMS

FORMAT_VERSION = 1


def _group_label(by: str, gkey: str) -> str:
    if by.startswith("tag:"):
        return gkey if gkey != "" else "(none)"
    return gkey


def _fine_by(by: str) -> str:
    """The engine's grouping for a report `by`: always per day, and per the task's group when `by` has one."""
    return "day" if by in ("item", "day") else DAY_AND + by


def _split_key(fine: str, gkey: str) -> tuple[str, str]:
    if fine == "day":
        return gkey, gkey
    day, _, group = gkey.partition("\x1f")
    return day, group


def price_history(store, period: Period, *, by: str = "item", settings=None, prices_file=None) -> dict:
    """The cost report of `period` as one model (a dict; money as decimal strings). See the module doc."""
    by = parse_by(by)
    settings, book, model, bounds = pricing_context(store, period, settings, prices_file)
    fine = _fine_by(by)
    with store._lock, memory_limit(store._con):
        agg = aggregate(store._con, model, period, fine, bounds)
    priced = price_aggregate(agg, model, book, period, bounds)
    exact = {(*_split_key(fine, g), item): v for (g, item), v in priced.lines.items()}
    day_lines, alloc = day_item_figures(exact)
    items = {k: ZERO for k in ITEM_KEYS}
    quantities = {k: Fraction(0) for k in ITEM_KEYS}
    for (day, item), v in day_lines.items():
        items[item] += v
    for (g, item), q in priced.quantities.items():
        quantities[item] += q
    total = sum(items.values(), ZERO)
    groups = [] if by == "item" else _groups(by, fine, day_lines, alloc, exact, priced.quantities)
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
        "assumptions": {"usage": plain(dict(settings.splice.usage)), "requests": dict(settings.splice.requests),
                        "accelerated_gb_per_task": plain(settings.splice.accelerated_gb_per_task),
                        "defaults": {k: plain(getattr(settings.splice, k)) for k in (
                            "source_size_mb", "source_storage_class", "archive_direct_read", "target_size_mb",
                            "target_storage_class", "target_redundancy", "target_retention_days")},
                        "settings_file": settings.path},
        "warnings": report_warnings(agg, priced, model),
    }


def _groups(by: str, fine: str, day_lines: dict, alloc: dict, exact: dict, quantities: dict) -> list[dict]:
    """The report groups: days (their day x item lines), or projects / tag values (their allocated cents,
    summed over the days, with their exact amounts)."""
    amounts: dict = {}
    exacts: dict = {}
    qty: dict = {}
    if by == "day":
        amounts = dict(day_lines)
    else:
        for (day, g, item), v in alloc.items():
            amounts[(g, item)] = amounts.get((g, item), ZERO) + v
        for (day, g, item), v in exact.items():
            exacts[g] = exacts.get(g, Fraction(0)) + v
    for (gkey, item), q in quantities.items():
        g = _split_key(fine, gkey)[0 if by == "day" else 1]
        qty[(g, item)] = qty.get((g, item), Fraction(0)) + q
    out = []
    for g in sorted({g for g, _ in amounts} | {g for g, _ in qty}):
        gi = {k: amounts.get((g, k), ZERO) for k in ITEM_KEYS}
        row = {"group": _group_label(by, g), "items": {k: str(v) for k, v in gi.items()},
               "quantities": {k: fmt_quantity(qty.get((g, k), 0)) for k in ITEM_KEYS},
               "total": str(sum(gi.values(), ZERO))}
        if by != "day":
            row["exact_total"] = fmt_quantity(exacts.get(g, Fraction(0)), 18)
        out.append(row)
    return out


def cost_frames(store, period, *, by: str = "item", settings=None, prices_file=None, lines: bool = False,
                granularity: str = "day"):
    """Python API: the priced groups of `period` as a pandas DataFrame; with `lines=True`, (charge lines,
    groups).

    `store`: a Store or the path of one; `period`: a Period or a `YYYY-MM` month (Asia/Shanghai).
    Groups: one row per report line (group, item) with quantity (the item's base unit, `unit`), amount (money,
    rounded half-up from the exact sum) and currency; `group` is "" without `by`. quantity and amount are
    exact Arrow decimals (decimal128(38, 6) and (38, 2)), so the frame sums and plots.
    Charge lines (only when asked: a month of a million tasks is tens of millions of rows): the columns of
    `costkit.engine.lines.line_columns(granularity)`, one row per task x item x `granularity` (hour, day or
    month, Asia/Shanghai) x price segment; charge_start/charge_end tz-aware (UTC); quantity, unit_price and
    amount decimal128(38, 18).
    """
    import pandas as pd

    from costkit.core.frames import decimal_columns, decimal_series, money_series
    from costkit.engine.lines import check_granularity
    from costkit.engine.period import parse_period

    if isinstance(store, (str, bytes)) or hasattr(store, "__fspath__"):
        from costkit.store.db import Store
        with Store.open(store, create=False) as st:
            return cost_frames(st, period, by=by, settings=settings, prices_file=prices_file, lines=lines,
                               granularity=granularity)
    if isinstance(period, str):
        period = parse_period(period)
    check_granularity(granularity)
    report = price_history(store, period, by=by, settings=settings, prices_file=prices_file)
    rows = []
    for g in report["groups"] or [{"group": "", "items": report["items"], "quantities": {
            k: v["quantity"] for k, v in report["quantities"].items()}}]:
        for item, amount in g["items"].items():
            rows.append({"group": g["group"], "item": item, "quantity": g["quantities"][item],
                         "unit": ITEMS[item][0], "amount": amount})
    totals = pd.DataFrame({"group": [r["group"] for r in rows], "item": [r["item"] for r in rows]})
    totals["quantity"] = decimal_series([r["quantity"] for r in rows], 6)
    totals["unit"] = [r["unit"] for r in rows]
    totals["amount"] = money_series([r["amount"] for r in rows])
    totals["currency"] = report["currency"]
    if not lines:
        return totals
    with store._lock, memory_limit(store._con):
        sql, params = lines_query(store, period, settings, prices_file, hour_as_text=False,
                                  granularity=granularity)
        frame = decimal_columns(store._con.sql(sql, params=params).to_arrow_table())
    if granularity != "hour":   # billing days and months as Periods (Asia/Shanghai)
        frame[granularity] = pd.PeriodIndex(frame[granularity].astype(str), freq="D" if granularity == "day" else "M")
    return frame, totals


__all__ = ["price_history", "cost_frames", "FORMAT_VERSION"]
