"""The backtest (`costkit scenario backtest`): how well the calibrated trend would have forecast the last
complete months of the history.

The history is cut at the start of the first held-out month (the last 1..3 complete Asia/Shanghai months).
Before the cut-off: the scenario is calibrated (costkit.engine.calibrate) and the daily series fitted
(costkit.engine.trend). The forecast runs from the history's first month through the held-out months (the
fitted months at their observed counts, so the storage that targets carry into a held-out month is in the
forecast as it is in the bill), and each held-out month is compared with the cost engine's priced actuals
(costkit.engine.history.price_history). The money intervals also carry the pricing model's own error,
measured in-sample on the last fitted month (forecast at its observed count vs priced actuals), so an
interval says how far the figure may be off, not only how far the volume may move.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from costkit.core.errors import BadInput
from costkit.core.money import round_money
from costkit.core.timeutil import SHANGHAI, add_months, month_label, month_start
from costkit.engine.calibrate import calibrate, daily_counts
from costkit.engine.forecast import month_totals
from costkit.engine.history import price_history
from costkit.engine.period import Period
from costkit.engine.trend import trend_forecast
from costkit.model.scenario import parse_scenario
from costkit.prices.book import load_price_book


def _period(y, m) -> Period:
    return Period(month_start(y, m), month_start(*add_months(y, m, 1)), month_label(y, m))


def _last_complete_month(last_day: date) -> tuple[int, int]:
    if (last_day + timedelta(days=1)).month != last_day.month:
        return last_day.year, last_day.month
    return add_months(last_day.year, last_day.month, -1)


def _pct(a: Decimal, b: Decimal) -> str:
    return str((100 * a / b).quantize(Decimal("0.01"))) if b else "n/a"


def backtest(store, *, holdout: int = 1, settings=None, prices_file=None, **sim) -> dict:
    """The backtest result (a dict; money as decimal strings): per held-out month the actual and forecast
    tasks and totals, the 80 % interval, the error (forecast - actual, and in % of the actual) and whether
    the actual fell inside; BadInput when the history is too short."""
    from costkit.model.settings import load_settings
    if not 1 <= holdout <= 3:
        raise BadInput(f"must be 1..3, got {holdout}", field="--holdout-months")
    settings = settings or load_settings(None)
    daily = daily_counts(store)
    first_day, last_day = date.fromisoformat(daily[0][0]), date.fromisoformat(daily[-1][0])
    ly, lm = _last_complete_month(last_day)
    cy, cm = add_months(ly, lm, 1 - holdout)
    cutoff = month_start(cy, cm)
    fit_daily = [(d, n) for d, n in daily if d < cutoff.astimezone(SHANGHAI).date().isoformat()]
    if not fit_daily or date.fromisoformat(fit_daily[0][0]) > first_day or len(fit_daily) < 28:
        raise BadInput(f"the history ({first_day} .. {last_day}) leaves {len(fit_daily)} days before the "
                       f"cut-off {cutoff.isoformat()}; the backtest needs at least 28", field="--holdout-months")
    start = month_start(first_day.year, first_day.month)
    cal = calibrate(store, since=start.isoformat(), until=cutoff.isoformat(), settings=settings)
    fitted = parse_scenario(cal.data, "calibrated scenario")
    book = load_price_book(fitted.site, prices_file=prices_file, scenario_prices=fitted.prices,
                           scenario_path=fitted.path)
    error = _pricing_error(store, fitted, book, fit_daily, settings, prices_file)
    scn = replace(fitted, months=fitted.months + holdout)
    model = trend_forecast(scn, book, fit_daily, pricing_error=error, **sim)
    rows, inside, abs_pct = [], 0, Decimal(0)
    for i in range(holdout):
        y, m = add_months(cy, cm, i)
        actual = price_history(store, _period(y, m), settings=settings, prices_file=prices_file)
        t = next(r for r in model["trend"]["months"] if r["month"] == month_label(y, m))
        a, f = Decimal(actual["total"]), Decimal(t["total"]["expected"])
        ok = Decimal(t["total"]["low80"]) <= a <= Decimal(t["total"]["high80"])
        inside += ok
        abs_pct += abs(f - a) / a * 100 if a else Decimal(0)
        rows.append({"month": month_label(y, m), "tasks_actual": actual["tasks"],
                     "tasks_expected": t["tasks"]["expected"], "actual": str(a), "expected": str(f),
                     "low80": t["total"]["low80"], "high80": t["total"]["high80"],
                     "low95": t["total"]["low95"], "high95": t["total"]["high95"],
                     "error": str(f - a), "error_pct": _pct(f - a, a), "inside80": ok})
    return {"currency": model["currency"], "cutoff": cutoff.isoformat(), "holdout_months": holdout,
            "fit_first_day": fit_daily[0][0], "fit_last_day": fit_daily[-1][0], "fit_days": len(fit_daily),
            "method": model["trend"]["method"], "pricing_error_pct": _pct(error, Decimal(1)),
            "months": rows, "inside80": inside, "mape": str((abs_pct / holdout).quantize(Decimal("0.01")))}


def _pricing_error(store, scn, book, daily, settings, prices_file) -> Decimal:
    """|forecast - actual| / actual of the last fitted month, the months priced at their observed counts."""
    observed = []
    for i in range(scn.months):
        y, m = add_months(*scn.start, i)
        days = (month_start(*add_months(y, m, 1)) - month_start(y, m)).days
        first = month_start(y, m).astimezone(SHANGHAI).date()
        labels = {(first + timedelta(days=k)).isoformat() for k in range(days)}
        observed.append(sum(n for d, n in daily if d in labels))
    forecast = month_totals(scn, book, observed)[-1]
    y, m = add_months(*scn.start, scn.months - 1)
    actual = Decimal(price_history(store, _period(y, m), settings=settings, prices_file=prices_file)["total"])
    if not actual:
        return Decimal(0)
    return round_money(abs(forecast - actual) / actual * 100) / 100


__all__ = ["backtest"]
