"""The monthly audit (`costkit audit`): the bill reconciled with the priced task history, variances explained.

`build_audit(store, month, ...)` returns ONE model (a dict, `format_version` 1; money as 2-place decimal
strings) that the JSON, CSV and HTML renderings print as given.

**Sides.** Expected: the cost engine (`costkit.history_cost.price_history`, `by="day"`) per UTC+8 day x item,
quantity in the item's base unit (calls, requests, GB, GB-hour) and amount at book prices. Billed: the
month's bill lines mapped to items (`costkit.billmap`), summed per day x item (all storage classes together):
quantity, PretaxGrossAmount, InvoiceDiscount, DeductedByCoupons, DeductedByResourcePackage and
net = gross - the three deductions.

**Money.** One rounding rule (costkit.money): a day x item line is exact, then rounded half-up to 2 decimals;
month and KPI figures are sums of rounded day lines. Each cause of a day's variance is rounded the same way;
a `rounding` cause takes what is left, so the causes of every line add up to its variance exactly.

**Variance and causes.** For `imm.ImageSplicing` the variance is billed net - expected. With Qb/Qe the billed
and expected calls, Pb the billed unit price (ListPrice per ListPriceUnit, else gross / usage) and Pr the
book price of a splice after the cutover, it splits exactly into:

- `price`: Qb x (Pb - Pr) (the bill's unit price is not the book's);
- `discount`, `coupons`, `resource_plan`: minus each deduction;
- the count difference (Qb - Qe) x Pr, assigned in this order:
  `coverage_gap` (days in a coverage gap of the store, or without any collected task: the bill's splices
  above the collected ones), `day_boundary` when the bill's daily counts match UTC days better than UTC+8
  days (the shift between the two), `before_cutover` (splices completing before `usage.imm_billing_start` that the
  bill charges: up to the count of such succeeded tasks that day), `failed_billed` (the surplus matches the
  day's Failed tasks within max(1, 10 %): billed = succeeded + failed), `day_boundary` (a surplus on one day
  and a deficit on the next that cancel: splices attributed to the neighbouring day, e.g. UTC instead of
  UTC+8), and `usage` (what is left: billed count differs from the collected succeeded count);
- `rounding`: the bill's own rounding of line amounts and the engine's rounding to cents.

OSS items (`oss.*`): a bill line covers a whole bucket, so only the splicing share is claimed. The share is
min(Qb, Qe) of the billed usage; its `price` difference and its share of the deductions are claimed, and so
is `usage` when the bill shows less than splicing alone causes (Qb < Qe). The rest of the billed amount is
`not_splicing` (on coverage-gap days: `coverage_gap_unclaimed`): shown, never counted as a variance.

**Tolerance.** An item is within tolerance when |variance| <= max(tolerance x |expected|, floor); the
relative tolerance defaults to 1 % and the absolute floor to 0.05 in the bill's currency (so tiny items
are not failed by a cent). **Anomalies**: a day is anomalous when its attributable cost (expected +
claimed variance, all items) falls outside the band expected +/- max(tolerance x expected, floor).

**Missing book price.** When the price book has no ImageSplicing price for the month (it is unpublished),
the audit prices the expected side at the bill's predominant ListPrice (by calls) and says so in the
warnings; days billed at another price then show as price differences.

The model's parts live in their own modules: the two sides (costkit.audit.sides), the causes
(costkit.audit.causes), coverage (costkit.audit.coverage), the item, KPI and daily figures
(costkit.audit.totals), unmatched lines (costkit.audit.unmatched), sources and cut-off
(costkit.audit.provenance), the trend and top projects/tags (costkit.audit.trend). The renderings are in
costkit.outputs.audit.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from costkit.audit.anchor import oss_daily, reader_parts
from costkit.audit.bill_price import with_bill_price
from costkit.audit.bridge import bridges
from costkit.audit.causes import explain_lines
from costkit.audit.coverage import Coverage, month_coverage, task_days
from costkit.audit.days import month_days
from costkit.audit.learnt import own_bill_prices, trap_warning
from costkit.audit.provenance import bill_imports, row_counts, runs, warn_if_not_final
from costkit.audit.sides import add_billed, drop_not_audited, expected_lines
from costkit.audit.tolerance import DEFAULT_FLOOR, DEFAULT_TOLERANCE, parse_floor, parse_tolerance
from costkit.audit.totals import daily_band, item_rows, kpis
from costkit.audit.trend import top, trend
from costkit.audit.unmatched import MAX_LISTED, unmatched
from costkit.core.errors import BadInput
from costkit.core.money import fmt_quantity
from costkit.core.version import __version__

FORMAT_VERSION = 1


@dataclass
class _Inputs:
    """What the audit of one month reads: the mapped bill and the engine's priced history of the month."""
    store: object
    month: str
    period: object
    days: list
    frame: object         # costkit.store.bills.mapped_bill_lines of the month
    settings: object
    book: object
    imm_start: object
    report: dict          # costkit.history_cost.price_history(by="day")
    prices_file: object
    mapping: object
    tolerance: object
    floor: object
    warnings: list


def build_audit(store, month: str, *, tolerance=DEFAULT_TOLERANCE, floor=DEFAULT_FLOOR, prices_file=None,
                settings=None, source: str | None = None, mapping=None, synthetic: bool = False,
                account: str | None = None) -> dict:
    """The audit model of `month` (YYYY-MM, Asia/Shanghai): see the module doc. `synthetic` marks a model
    built from synthetic data (the demo): the report then carries a banner saying so. `account`: only that
    account's bill lines (default: every account of the month)."""
    a = _read(store, month, tolerance=parse_tolerance(tolerance), floor=parse_floor(floor),
              prices_file=prices_file, settings=settings, source=source, mapping=mapping, account=account)
    tasks = task_days(store, a.period, a.imm_start)
    cov = month_coverage(store, a.period, a.days, tasks, a.warnings)
    lines = expected_lines(a.report)
    not_audited = drop_not_audited(lines, a.frame, month, a.report["currency"], a.warnings)
    add_billed(a.frame, lines, a.book, a.imm_start)
    explain_lines(store, a.period, lines, tasks, cov.gap_days, a.imm_start, a.warnings)
    model = _model(a, lines, cov, not_audited)
    model.update(_reader_parts(a, model, synthetic))
    return model


def _reader_parts(a: _Inputs, model: dict, synthetic: bool) -> dict:
    """What a reader signs off besides the reconciliation: the bridges from expected to billed net
    (costkit.audit.bridge), the invoice anchor, the per-project rows and the whole-bucket OSS days
    (costkit.audit.anchor), and whether the data is synthetic."""
    return {"bridge": bridges(model["items"], model["warnings"]),
            **reader_parts(a.store, a.period, a.frame, model["kpis"], model["items"], a.settings, a.prices_file),
            "daily_oss": oss_daily(model["days"], a.days),
            "synthetic": bool(synthetic)}


def _read(store, month: str, *, tolerance, floor, prices_file, settings, source, mapping, account=None) -> _Inputs:
    """The month's mapped bill and priced history (at the bill's price when the book has none); raises
    BadInput when no bill is stored or its currency is not the price book's."""
    from costkit.engine.context import _context
    from costkit.engine.period import parse_period
    from costkit.engine.history import price_history
    from costkit.model.settings import load_settings
    from costkit.store.bills import mapped_bill_lines

    period = parse_period(month)
    days = month_days(month)
    warnings: list[str] = []
    frame = mapped_bill_lines(store, month, source=source, mapping=mapping, account=account)
    if frame.empty:
        raise BadInput(f"no bill lines stored for {month}; run `costkit import-bill FILE` or `costkit fetch-bill "
                       f"--month {month}` first", field="--month")
    settings = settings or load_settings(None)
    settings, book, model, _ = _context(store, period, settings, prices_file)
    settings = with_bill_price(settings, frame, period, model, book, month, warnings)
    settings, book, model, _ = _context(store, period, settings, prices_file)
    report = price_history(store, period, by="day", settings=settings, prices_file=prices_file)
    currency = report["currency"]
    bill_currencies = sorted({c for c in frame["currency"] if c})
    if bill_currencies and bill_currencies != [currency]:
        raise BadInput(f"the {month} bill is in {', '.join(bill_currencies)} but the price book (site "
                       f"{settings.site}) is in {currency}; use --site/settings for the bill's site",
                       field="--month")
    return _Inputs(store, month, period, days, frame, settings, book, model.imm_start, report, prices_file,
                   mapping, tolerance, floor, warnings)


def _model(a: _Inputs, lines: dict, cov: Coverage, not_audited: list) -> dict:
    """The model (format_version 1) from the explained lines."""
    store, month, period, report, warnings = a.store, a.month, a.period, a.report, a.warnings
    currency = report["currency"]
    day_rows, items, out_of_tolerance = item_rows(lines, report, a.tolerance, a.floor, currency)
    unmapped = a.frame[~a.frame["mapped"]]
    figures = kpis(items, report, unmapped)
    daily, anomalies = daily_band(day_rows, a.days, a.tolerance, a.floor)
    unmatched_lines = unmatched(store, unmapped, day_rows)
    bill_info, cutoff_bill = bill_imports(store, month, a.frame)
    run_rows = runs(store, period)
    warn_if_not_final(month, cutoff_bill, warnings)
    learnt = own_bill_prices(a.book, month)
    if learnt:
        warnings.insert(0, trap_warning(learnt, month))
    if out_of_tolerance:
        warnings.insert(0, f"Out of tolerance: {', '.join(out_of_tolerance)}.")
    warnings += report["warnings"]
    counts = row_counts(store, period, a.frame)
    return {
        "format_version": FORMAT_VERSION,
        "kind": "costkit audit",
        "month": month,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": "Asia/Shanghai"},
        "site": report["site"], "currency": currency,
        "price_book": {"name": a.book.name, "version": a.book.version},
        "costkit_version": __version__,
        "data_cutoff": {"tasks": cov.collected_until, "bill": cutoff_bill},
        "tolerance": {"relative": str(a.tolerance), "relative_pct": fmt_quantity(Fraction(a.tolerance) * 100, 4),
                      "floor": str(a.floor),
                      "rule": "within tolerance when |variance| <= max(relative x |expected|, floor)"},
        "status": "out of tolerance" if out_of_tolerance else "within tolerance",
        "out_of_tolerance": out_of_tolerance,
        "not_audited": not_audited,
        "kpis": figures,
        "items": items,
        "days": day_rows,
        "daily": daily,
        "band": {"rule": "expected +/- max(relative tolerance x expected, floor), per day, all items; a day is an "
                         "anomaly when its attributable cost (expected + claimed variance) is outside"},
        "anomalies": anomalies,
        "coverage": {"known": cov.known, "calendar": cov.calendar, "gaps": cov.gaps},
        "unmatched": unmatched_lines,
        "trend": trend(store, month, a.settings, a.prices_file, report),
        "top": top(store, period, a.settings, a.prices_file),
        "sources": {"bills": bill_info, "runs": run_rows[-MAX_LISTED:], "runs_total": len(run_rows),
                    "row_counts": counts, "mapping": None if a.mapping is None else str(a.mapping),
                    "settings_file": a.settings.path,
                    "prices_file": None if a.prices_file is None else str(a.prices_file)},
        "prices": report["prices"],
        "learnt_from_this_bill": {"warning": trap_warning(learnt, month), "entries": learnt},
        "billed_prices": sorted({p for r in items for p in r["list_prices"]}),
        "assumptions": report["assumptions"],
        "warnings": warnings,
    }


__all__ = ["build_audit", "parse_tolerance", "parse_floor", "FORMAT_VERSION", "DEFAULT_TOLERANCE",
           "DEFAULT_FLOOR"]
