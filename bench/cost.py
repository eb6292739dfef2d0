"""Benchmark `costkit cost`: price one month of N stored tasks (4 sources on average, mixed classes).

    .venv/bin/python bench/cost.py                      # N = 1,000,000
    .venv/bin/python bench/cost.py --tasks 10000000     # 10 M (builds a ~4 GB store; takes a few minutes)

Each phase runs in its own process so the peak RSS printed is the pricing run's own:
1. build: a store of N tasks completing over September 2025 (Asia/Shanghai) plus their object facts
   (a pool of source images in Standard / IA / Archive / ColdArchive, some restored; one target per task in
   Standard / IA, 5 % deleted mid-month, 1 % without facts) and two buckets;
2. price: `price_history(--month 2025-09)`: wall time, peak RSS, tasks/s;
3. lines: `cost --lines` (one row per task x item x billing day x price segment, the default granularity) to a
   Parquet file: rows, wall time, peak RSS (target <= 60 s and <= 2 GB on 2 cores for 1 M tasks);
4. scan: a bare scan of the same tables (every column the engine reads): the I/O floor;
5. naive: the per-row Python reference (costkit.testing.cost_reference: the usage model and the Pricer per
   task and source, exact Fractions) over a 100,000-task store built the same way, compared per task with
   the engine; the engine prices that sample too and must agree on every item to the cent.
The store is kept under bench/.data/ (delete it when done).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from phases import rss_mb, run_phase

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PRICES = """\
entries:
  - {item: imm.ImageSplicing, unit: 1000 calls, price: "0.4", currency: CNY,
     effective_from: "2025-07-28T11:00:00+08:00", confidence: illustrative, source: bench (illustrative)}
  - {item: oss.ArchiveDirectRead, unit: GB, price: "0.05", currency: CNY, confidence: illustrative,
     source: bench (illustrative)}
  - {item: oss.GetRequest, selectors: {storage_class: DeepColdArchive}, unit: 10000 requests, price: "0.1",
     currency: CNY, confidence: illustrative, source: bench (illustrative)}
"""



def build(path: str, n: int) -> None:
    from costkit.store.db import Store
    if os.path.exists(path):
        os.remove(path)
    pool = max(1000, n // 2)
    t0 = time.perf_counter()
    with Store.open(path) as st:
        con = st._con
        # September 2025 in Asia/Shanghai = [2025-08-31T16:00Z, 2025-09-30T16:00Z): 720 hours.
        con.execute(f"""
            INSERT INTO tasks (region, project, task_id, task_type, status, start_time, end_time, sources,
                               target_uri, image_format, tags, origin, first_seen, last_seen, key_hash)
            SELECT 'cn-hangzhou', 'proj-' || (i % 20), 'ImageSplicing-' || i, 'ImageSplicing',
                   CASE WHEN hash(i) % 25 = 0 THEN 'Failed' ELSE 'Succeeded' END,
                   TIMESTAMPTZ '2025-08-31 16:00:00+00' + to_microseconds((i::HUGEINT * 2592000000000 // {n})::BIGINT),
                   TIMESTAMPTZ '2025-08-31 16:00:05+00' + to_microseconds((i::HUGEINT * 2592000000000 // {n})::BIGINT),
                   list_transform(range((1 + hash(i * 3) % 7)::BIGINT),
                                  lambda j: {{'uri': 'oss://src-bkt/img/' || ((i * 7 + j * 104729) % {pool}) || '.jpg',
                                        'rotate': NULL::INTEGER}}),
                   'oss://dst-bkt/out/' || (i // 1000) || '/t' || i || '.jpg', 'jpg',
                   '{{"team":"t' || (i % 5) || '"}}', 'import', now(), now(), (hash(i) >> 1)::BIGINT
            FROM range({n}) r(i)""")
        con.execute(f"""
            INSERT INTO objects
            SELECT 'oss://src-bkt/img/' || k || '.jpg', 'src-bkt', 'img/' || k || '.jpg',
                   102400 + hash(k) % 5000000,
                   CASE WHEN k % 10 < 6 THEN 'Standard' WHEN k % 10 < 8 THEN 'IA'
                        WHEN k % 10 = 8 THEN 'Archive' ELSE 'ColdArchive' END,
                   TIMESTAMPTZ '2025-06-01 00:00:00+00',
                   CASE WHEN k % 40 = 8 THEN 'restored' END,
                   CASE WHEN k % 40 = 8 THEN TIMESTAMPTZ '2025-12-01 00:00:00+00' END,
                   false, NULL, now(), 'list', NULL
            FROM range({pool}) r(k)""")
        con.execute(f"""
            INSERT INTO objects
            SELECT 'oss://dst-bkt/out/' || (i // 1000) || '/t' || i || '.jpg', 'dst-bkt',
                   'out/' || (i // 1000) || '/t' || i || '.jpg',
                   40960 + hash(i * 5) % 2000000, CASE WHEN i % 3 = 0 THEN 'IA' ELSE 'Standard' END,
                   TIMESTAMPTZ '2025-09-01 00:00:00+00', NULL, NULL,
                   i % 20 = 7, CASE WHEN i % 20 = 7 THEN TIMESTAMPTZ '2025-09-20 00:00:00+00' END, now(), 'list', NULL
            FROM range({n}) r(i) WHERE i % 100 <> 42""")
        con.execute("""
            INSERT INTO buckets VALUES
              ('src-bkt', true, 'oss-cn-hangzhou', 'Standard', 'LRS', false, true, 'api', now()),
              ('dst-bkt', true, 'oss-cn-hangzhou', 'Standard', 'LRS', false, false, 'api', now())""")
        con.execute("CHECKPOINT")
    print(json.dumps({"build_s": time.perf_counter() - t0, "size_mb": os.path.getsize(path) / 2**20}))


def _prices_file(path: str) -> str:
    p = Path(path).with_suffix(".prices.yaml")
    p.write_text(PRICES)
    return str(p)


def price(path: str) -> None:
    from costkit.engine.history import price_history
    from costkit.engine.period import parse_period
    from costkit.store.db import Store
    with Store.open(path, create=False) as st:
        t0 = time.perf_counter()
        report = price_history(st, parse_period("2025-09"), prices_file=_prices_file(path))
        dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "rss_mb": rss_mb(), "tasks": report["tasks"], "total": report["total"],
                      "items": report["items"]}))


def lines(path: str, granularity: str = "day") -> None:
    from costkit.engine.lines import write_lines
    from costkit.engine.period import parse_period
    from costkit.store.db import Store
    out = Path(path).with_suffix(f".lines-{granularity}.parquet")
    with Store.open(path, create=False) as st:
        t0 = time.perf_counter()
        n = write_lines(st, parse_period("2025-09"), str(out), fmt="parquet", prices_file=_prices_file(path),
                        granularity=granularity)
        dt = time.perf_counter() - t0
    size = out.stat().st_size / 2**20
    out.unlink()
    print(json.dumps({"seconds": dt, "rss_mb": rss_mb(), "rows": n, "parquet_mb": size}))


def scan(path: str) -> None:
    from costkit.store.db import Store
    with Store.open(path, create=False) as st:
        con = st._con
        t0 = time.perf_counter()
        con.execute("""
            SELECT count(*), sum(len(sources)), count(target_uri), count(project), count(tags), max(end_time),
                   count(status) FROM tasks""").fetchall()
        con.execute("""SELECT count(uri), sum(size), count(storage_class), count(restore_state), count(gone),
                              count(gone_since), max(restore_expiry) FROM objects""").fetchall()
        dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt}))


def naive(path: str) -> None:
    """The naive per-row reference (costkit.testing.cost_reference): per task and source, the usage model
    and the Pricer in Python with exact Fractions. Also prices the same store with the engine and checks
    that every item agrees to the cent."""
    from costkit.engine.history import price_history
    from costkit.engine.period import parse_period
    from costkit.store.db import Store
    from costkit.testing.cost_reference import reference_cost

    period = parse_period("2025-09")
    with Store.open(path, create=False) as st:
        t0 = time.perf_counter()
        ref = reference_cost(st, period, prices_file=_prices_file(path))
        dt = time.perf_counter() - t0
        eng = price_history(st, period, prices_file=_prices_file(path))
    same = all(str(ref["rounded"][k]) == v for k, v in eng["items"].items())
    print(json.dumps({"seconds": dt, "tasks": ref["tasks"], "same": same,
                      "total": str(sum(ref["rounded"].values()))}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--store", help="store path (default bench/.data/cost-N.duckdb)")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing store of that size")
    ap.add_argument("--memory-limit", help="COSTKIT_MEMORY_LIMIT for the pricing run, e.g. 2GB (DuckDB spills beyond)")
    ap.add_argument("--granularity", default="day", choices=["hour", "day", "month"],
                    help="charge-line granularity of the lines phase (default: day)")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive reference (phase 5)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.store or str(HERE / ".data" / f"cost-{args.tasks}.duckdb")
    if args.phase == "build":
        return build(path, args.tasks) or 0
    if args.phase == "price":
        return price(path) or 0
    if args.phase == "lines":
        return lines(path, args.granularity) or 0
    if args.phase == "scan":
        return scan(path) or 0
    if args.phase == "naive":
        return naive(path) or 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    common = ["--tasks", str(args.tasks), "--store", path]
    print(f"cores: {os.cpu_count()}  tasks: {args.tasks:,}  store: {path}")
    if not (args.reuse and os.path.exists(path)):
        b = run_phase(__file__, "--phase", "build", *common)
        print(f"built store in {b['build_s']:.1f} s ({b['size_mb']:.0f} MB)")
    env = dict(os.environ, COSTKIT_MEMORY_LIMIT=args.memory_limit) if args.memory_limit else None
    p = run_phase(__file__, "--phase", "price", *common, env=env)
    ln = run_phase(__file__, "--phase", "lines", "--granularity", args.granularity, *common, env=env)
    print(f"price one month{' (memory limit ' + args.memory_limit + ')' if args.memory_limit else ''}: "
          f"{p['seconds']:.2f} s wall, peak RSS {p['rss_mb']:.0f} MB, "
          f"{p['tasks'] / p['seconds']:,.0f} tasks/s (total {p['total']} CNY)")
    print(f"cost --lines (granularity {args.granularity}, Parquet): {ln['rows']:,} rows in {ln['seconds']:.2f} s "
          f"wall, peak RSS {ln['rss_mb']:.0f} MB, {ln['parquet_mb']:.0f} MB file (target <= 60 s, <= 2048 MB)")
    s = run_phase(__file__, "--phase", "scan", *common)
    print(f"bare scan of the same tables: {s['seconds']:.2f} s -> engine / scan = {p['seconds'] / s['seconds']:.1f}x")
    if args.no_naive:
        return 0
    sample = path if args.tasks == args.sample else str(Path(path).with_name(f"cost-{args.sample}.duckdb"))
    if not (args.reuse and os.path.exists(sample)) and sample != path:
        run_phase(__file__, "--phase", "build", "--tasks", str(args.sample), "--store", sample)
    nv = run_phase(__file__, "--phase", "naive", "--tasks", str(args.sample), "--store", sample)
    per_engine = p["seconds"] / p["tasks"]
    per_naive = nv["seconds"] / nv["tasks"]
    print(f"naive per-row Python loop (usage model + Pricer per task and source, exact Fractions): "
          f"{nv['tasks']:,} tasks in {nv['seconds']:.1f} s ({per_naive * 1e6:.0f} us/task) vs engine "
          f"{per_engine * 1e6:.2f} us/task -> naive is {per_naive / per_engine:.0f}x slower per task (target >= 50x); "
          f"same items to the cent as the engine on that sample: {nv['same']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
