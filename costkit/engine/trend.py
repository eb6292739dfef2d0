"""The volume trend (`estimate --trend`): the store's daily task series projected with an exponential
smoothing state-space model (statsmodels' ETSModel: additive error and trend, weekly seasonality additive or
multiplicative, whichever has the lower AIC), and monthly prediction intervals priced through the engine.

The monthly intervals come from simulated daily paths (the fitted model's own error law, a fixed seed, so the
figures are reproducible): each path is summed per month and the 2.5, 10, 90 and 97.5 percentiles of those
sums give the 95 % and 80 % intervals; the expected value is the mean. ETS paths take the fitted parameters
as known, so each path also draws the error of the estimated level and slope (a least-squares line through the
series within weekdays; see `_trend_uncertainty`), which dominates a month or more ahead. Days the store already holds count as
observed (no uncertainty). Each of the five task-count paths (low 95, low 80, expected, high 80, high 95, by
month) is priced by the forecast engine, so the intervals are on volume and the money follows the prices,
mix and storage accrual exactly.

statsmodels is an optional extra (`pip install 'costkit[trend]'`, with threadpoolctl to keep BLAS on one
thread while fitting): it brings scipy, which `estimate` without `--trend` does not need.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from costkit.core.errors import BadInput, RuntimeFailure
from costkit.core.money import round_money
from costkit.core.timeutil import SHANGHAI, add_months, month_label, month_start
from costkit.engine.forecast import build_forecast, month_totals
from costkit.model.scenario import Scenario

MIN_DAYS = 28
REPETITIONS = 2000
SEED = 20250901
BANDS = ("low95", "low80", "expected", "high80", "high95")
_QUANTILES = {"low95": 2.5, "low80": 10, "high80": 90, "high95": 97.5}


def _statsmodels():
    try:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    except ImportError:
        raise RuntimeFailure("--trend needs statsmodels: pip install 'costkit[trend]'") from None
    return ETSModel


class Fit:
    """A fitted daily model: the statsmodels results, whether it was fitted on ln(tasks), its name and AIC
    (on the scale of the counts: a log fit's AIC carries the Jacobian term 2 x sum ln y, so they compare)."""

    def __init__(self, res, log: bool, name: str, aic: float, series=None):
        self.res, self.log, self.name, self.aic, self.series = res, log, name, aic, series


def _trend_uncertainty(series, days: int, repetitions: int, rng):
    """Draws (days x repetitions) of the error of an estimated linear trend at 1..days after the series:
    the standard errors of a least-squares line through the series within weekdays (weekday means removed),
    level and slope drawn once per path. ETS paths carry the model's noise with its parameters taken as
    known; this adds the uncertainty of the fitted level and slope, which dominates a month or more ahead."""
    import numpy as np
    n = len(series)
    x = np.arange(n, dtype=float)
    xa, ya = x.copy(), np.asarray(series, dtype=float).copy()
    for wd in range(7):
        idx = np.arange(wd, n, 7)
        xa[idx] -= xa[idx].mean()
        ya[idx] -= ya[idx].mean()
    sxx = float((xa ** 2).sum())
    slope = float((xa * ya).sum()) / sxx
    resid = ya - slope * xa
    sigma = float(np.sqrt((resid ** 2).sum() / max(1, n - 8)))
    h = (n - 1 - x.mean()) + np.arange(1, days + 1, dtype=float)
    z = rng.standard_normal((2, repetitions))
    return sigma / np.sqrt(n) * z[0][None, :] + sigma / np.sqrt(sxx) * h[:, None] * z[1][None, :]


def _one_thread():
    """BLAS on one thread while fitting: the optimiser makes hundreds of tiny calls, and a thread pool per call
    is many times slower than none (most of all on a busy 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # the trend extra brings it; without it the fit is only slower
        from contextlib import nullcontext
        return nullcontext()
    return threadpool_limits(1)


def fit_daily(counts: list[int]) -> Fit:
    """The best (lowest AIC) of ETS(A,A,A) and ETS(A,A,M) on the counts and ETS(A,A,A) on their logarithm
    (exponential growth), each with weekly seasonality. Fewer than MIN_DAYS days: BadInput."""
    if len(counts) < MIN_DAYS:
        raise BadInput(f"the history holds {len(counts)} days of tasks; a trend needs at least {MIN_DAYS}",
                       field="--trend")
    ETSModel = _statsmodels()
    import numpy as np
    y = np.asarray(counts, dtype=float)
    candidates = [(y, False, "add", "ETS(A,A,A)")]
    if y.min() > 0:
        candidates += [(y, False, "mul", "ETS(A,A,M)"), (np.log(y), True, "add", "ETS(A,A,A) on ln(tasks)")]
    best = None
    for series, log, seasonal, name in candidates:
        with warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore")   # convergence chatter of the optimiser; the AIC decides
            try:
                res = ETSModel(series, error="add", trend="add", seasonal=seasonal, seasonal_periods=7).fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
        aic = float(res.aic) + (2 * float(series.sum()) if log else 0.0)
        if np.isfinite(aic) and (best is None or aic < best.aic):
            best = Fit(res, log, f"{name} with weekly seasonality (statsmodels ETSModel)", aic, series)
    if best is None:
        raise RuntimeFailure("the trend model did not fit the daily series")
    return best


def simulate_days(fit: Fit, days: int, *, repetitions: int = REPETITIONS, seed: int = SEED):
    """Simulated daily task counts after the series: an array (days x repetitions), clipped at 0."""
    import numpy as np
    if days <= 0:
        return np.zeros((0, repetitions))
    rng = np.random.default_rng(seed)
    with _one_thread():
        sims = fit.res.simulate(nsimulations=days, repetitions=repetitions, anchor="end", rng=rng)
    sims = np.asarray(sims).reshape(days, repetitions) + _trend_uncertainty(fit.series, days, repetitions, rng)
    if fit.log:
        sims = np.exp(np.minimum(sims, 50))
    return np.clip(sims, 0, None)


def _month_days(scn: Scenario) -> list[list[date]]:
    out = []
    for i in range(scn.months):
        y, m = add_months(*scn.start, i)
        a = month_start(y, m).astimezone(SHANGHAI).date()
        b = month_start(*add_months(y, m, 1)).astimezone(SHANGHAI).date()
        out.append([a + timedelta(days=k) for k in range((b - a).days)])
    return out


def trend_counts(scn: Scenario, daily: list[tuple[str, int]], **sim) -> tuple[dict, dict]:
    """({band: [tasks per scenario month]}, info) from the daily series `daily` [(YYYY-MM-DD, tasks)] (the
    store's, consecutive days). Days of the horizon in the series are observed, days after it simulated;
    a horizon starting before the series is BadInput."""
    import numpy as np
    fit = fit_daily([n for _, n in daily])
    first, last = date.fromisoformat(daily[0][0]), date.fromisoformat(daily[-1][0])
    months = _month_days(scn)
    if months[0][0] < first:
        raise BadInput(f"the scenario starts {month_label(*scn.start)}, before the history's first day "
                       f"{first.isoformat()}", field="start")
    horizon_end = months[-1][-1]
    sims = simulate_days(fit, (horizon_end - last).days, **sim)
    observed = dict(daily)
    bands = {b: [] for b in BANDS}
    for days in months:
        known = sum(observed.get(d.isoformat(), 0) for d in days if d <= last)
        rows = [(d - last).days - 1 for d in days if d > last]
        totals = known + (sims[rows].sum(axis=0) if rows else np.zeros(sims.shape[1]))
        bands["expected"].append(int(round(float(totals.mean()))))
        for b, q in _QUANTILES.items():
            bands[b].append(int(round(float(np.percentile(totals, q)))))
    info = {"method": fit.name, "history_first_day": first.isoformat(), "history_last_day": last.isoformat(),
            "history_days": len(daily), "history_tasks": sum(n for _, n in daily),
            "repetitions": sims.shape[1] if sims.size else 0, "aic": round(fit.aic, 2)}
    return bands, info


_Z = {"low80": -1.2816, "high80": 1.2816, "low95": -1.96, "high95": 1.96}
_PROBE = 100_000   # tasks in the probe month that prices one kind alone


def cost_spread(scn: Scenario, book) -> float:
    """The coefficient of variation of the cost of one task across the scenario's kinds and outcomes
    (succeeded or failed), from the engine's price of each alone over the first month: a month of n tasks
    drawn from that mix has a mean cost per task with a relative standard deviation of this / sqrt(n)."""
    kinds = scn.mix or []
    fail = float(scn.failure_rate)
    probe = replace(scn, months=1)
    costs = []
    for k in kinds or [None]:
        share = float(k.share) if k else 1.0
        for rate, p in ((0, 1 - fail), (1, fail)):
            if p <= 0:
                continue
            one = replace(k, share=Decimal(1), values={**k.values, "failure_rate": Decimal(rate)}) if k else None
            s1 = replace(probe, mix=[one] if one else None, failure_rate=Decimal(rate))
            costs.append((share * p, float(month_totals(s1, book, [_PROBE])[0]) / _PROBE))
    mean = sum(w * c for w, c in costs)
    if mean <= 0:
        return 0.0
    return math.sqrt(sum(w * (c - mean) ** 2 for w, c in costs)) / mean


def trend_forecast(scn: Scenario, book, daily, *, pricing_error: Decimal | None = None, **sim) -> dict:
    """The forecast model priced on the trend's expected volume, with `trend`: the method, and per month the
    tasks and totals of each band (money as decimal strings). Each money band is the priced volume band
    widened, in quadrature, by the month's relative standard deviation from the mix (`cost_spread` / sqrt of
    the month's tasks) and `pricing_error` (a share: the pricing model's own error, measured by the backtest
    on a fitted month)."""
    bands, info = trend_counts(scn, daily, **sim)
    model = build_forecast(scn, book, counts=bands["expected"])
    totals = {b: (month_totals(scn, book, bands[b]) if b != "expected" else
                  [Decimal(m["total"]) for m in model["months"]]) for b in BANDS}
    spread = cost_spread(scn, book)
    pe = float(pricing_error or 0)
    rows = []
    for i, m in enumerate(model["months"]):
        e = totals["expected"][i]   # money stays Decimal; the spread is a statistic (a float)
        rel = Decimal(repr(math.sqrt(spread ** 2 / max(1, bands["expected"][i]) + pe ** 2)))
        t = {"expected": e}
        for b, z in _Z.items():
            half = ((totals[b][i] - e) ** 2 + (Decimal(repr(z)) * rel * e) ** 2).sqrt()
            t[b] = max(Decimal(0), e + half if z > 0 else e - half)
        rows.append({"month": m["month"], "tasks": {b: bands[b][i] for b in BANDS},
                     "total": {b: str(round_money(t[b])) for b in BANDS}})
    model["trend"] = {**info, "cost_spread": round(spread, 4), "pricing_error": str(pricing_error or 0),
                      "months": rows,
                      "note": "volume projected from the store's daily series; monthly_growth is not used"}
    model["assumptions"].append({"key": "trend", "value": info["method"], "defaulted": False,
                                 "description": f"tasks per month projected from {info['history_days']} days "
                                                "of history (80 % and 95 % prediction intervals)"})
    return model


__all__ = ["BANDS", "MIN_DAYS", "Fit", "cost_spread", "fit_daily", "simulate_days", "trend_counts", "trend_forecast"]
