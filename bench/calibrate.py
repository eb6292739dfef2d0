"""Benchmark calibration and the trend on a store of N tasks (default 10,000,000; target < 30 s on 2 cores).

    .venv/bin/python bench/calibrate.py                  # N = 10 M over 120 days (builds a ~3 GB store once)
    .venv/bin/python bench/calibrate.py --tasks 1000000  # a quicker run

1. build: a synthetic history (costkit.testing.synthetic_history) of N tasks over 120 Asia/Shanghai days from
   2025-09-01: growth 0.3 % a day, weekly seasonality, 3 % daily noise, 4 % failures, three kinds (IA targets
   under 64 KB with Standard + IA sources; Archive sources read directly with IA targets deleted after 10 days;
   Standard), with object and bucket facts;
2. calibrate: `calibrate(store)` (the SQL of `scenario from-history`): wall time, peak RSS;
3. trend: the daily series from the store, the ETS fit and the simulated intervals, priced for 6 months.
Each phase runs in its own process. The store is kept under bench/.data/ (delete it when done).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from phases import rss_mb, run_phase

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

DAYS = 120
PRICES = """\
entries:
  - {item: imm.ImageSplicing, unit: 1000 calls, price: "0.4", currency: CNY,
     effective_from: "2025-07-28T11:00:00+08:00", confidence: illustrative, source: bench (illustrative)}
  - {item: oss.ArchiveDirectRead, unit: GB, price: "0.05", currency: CNY, confidence: illustrative,
     source: bench (illustrative)}
"""


def _spec(n: int):
    from costkit.testing.synthetic_history import HistorySpec, KindSpec
    growth, weekly, first = 0.003, (1.2, 1.1, 1.0, 1.0, 1.0, 0.8, 0.7), date(2025, 9, 1)
    base = n / sum((1 + growth) ** d * weekly[(first.weekday() + d) % 7] for d in range(DAYS))
    return HistorySpec(first_day=first, days=DAYS, base=base, daily_growth=growth,
                       weekly=weekly, noise=0.03, failure_rate=0.04,
                       hourly=[1] * 8 + [3] * 12 + [1] * 4,
                       kinds=[KindSpec(0.5, [("Standard", 2), ("IA", 1)], 2 << 20, "IA", 40 * 1024, None),
                              KindSpec(0.3, [("Archive", 1)], 3 << 20, "IA", 4 << 20, 240),
                              KindSpec(0.2, [("Standard", 3)], 1 << 20, "Standard", 1 << 20, None)])



def build(path: str, n: int) -> None:
    from costkit.store.db import Store
    from costkit.testing.synthetic_history import build_history
    if os.path.exists(path):
        os.remove(path)
    t0 = time.perf_counter()
    with Store.open(path) as st:
        written = build_history(st, _spec(n))
        st._con.execute("CHECKPOINT")
    print(json.dumps({"build_s": time.perf_counter() - t0, "tasks": written,
                      "size_mb": os.path.getsize(path) / 2**20}))


def calibrate_phase(path: str) -> None:
    from costkit.engine.calibrate import calibrate
    from costkit.store.db import Store
    with Store.open(path, create=False) as st:
        t0 = time.perf_counter()
        cal = calibrate(st)
        dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "rss_mb": rss_mb(), "tasks": cal.tasks, "kinds": len(cal.data["mix"]),
                      "failure_rate": str(cal.data["failure_rate"]),
                      "monthly_growth": str(cal.data["monthly_growth"])}))


def trend_phase(path: str) -> None:
    from dataclasses import replace
    from costkit.engine.calibrate import calibrate, daily_counts
    from costkit.engine.trend import trend_forecast
    from costkit.model.scenario import parse_scenario
    from costkit.prices.book import load_price_book
    from costkit.store.db import Store
    prices = Path(path).with_suffix(".prices.yaml")
    prices.write_text(PRICES)
    with Store.open(path, create=False) as st:
        scn = parse_scenario(calibrate(st).data)
        t0 = time.perf_counter()
        daily = daily_counts(st)
        t_series = time.perf_counter() - t0
    scn = replace(scn, months=6)
    book = load_price_book(scn.site, prices_file=str(prices))
    t1 = time.perf_counter()
    model = trend_forecast(scn, book, daily)
    dt = time.perf_counter() - t1
    print(json.dumps({"series_s": t_series, "fit_price_s": dt, "rss_mb": rss_mb(),
                      "method": model["trend"]["method"],
                      "last_month": model["trend"]["months"][-1]}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000_000)
    ap.add_argument("--store", help="store path (default bench/.data/calibrate-N.duckdb)")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing store of that size")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.store or str(HERE / ".data" / f"calibrate-{args.tasks}.duckdb")
    phases = {"build": lambda: build(path, args.tasks), "calibrate": lambda: calibrate_phase(path),
              "trend": lambda: trend_phase(path)}
    if args.phase:
        return phases[args.phase]() or 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    common = ["--tasks", str(args.tasks), "--store", path]
    print(f"cores: {os.cpu_count()}  tasks: {args.tasks:,}  store: {path}")
    if not (args.reuse and os.path.exists(path)):
        b = run_phase(__file__, "--phase", "build", *common)
        print(f"built {b['tasks']:,} tasks in {b['build_s']:.1f} s ({b['size_mb']:.0f} MB)")
    c = run_phase(__file__, "--phase", "calibrate", *common)
    print(f"calibrate: {c['seconds']:.2f} s wall, peak RSS {c['rss_mb']:.0f} MB, {c['tasks']:,} tasks, "
          f"{c['kinds']} kinds, failure rate {c['failure_rate']}, monthly growth {c['monthly_growth']}")
    t = run_phase(__file__, "--phase", "trend", *common)
    print(f"trend: daily series {t['series_s']:.2f} s + fit, simulate and price 6 months {t['fit_price_s']:.2f} s "
          f"({t['method']}); peak RSS {t['rss_mb']:.0f} MB")
    total = c["seconds"] + t["series_s"] + t["fit_price_s"]
    print(f"calibration + trend: {total:.1f} s (target < 30 s on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
