"""Benchmark: collect 100,000 tasks spread over 30 days from the local IMM server (20 ms per page).

Prints collection tasks/s, pages, the sequential floor (pages x latency), the speed-up over that floor at
the default concurrency (target >= 3x), and the store's ingest rate (target >= 50,000 tasks/s).
The server runs in its own process (as a real endpoint would); all traffic stays on 127.0.0.1.

    python bench/collect.py [--tasks 100000] [--days 30] [--latency-ms 20] [--concurrency 4]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from costkit.sources.imm.collect import DEFAULT_CONCURRENCY, collect  # noqa: E402
from costkit.store.db import Store  # noqa: E402
from costkit.sources.imm.taskrecord import from_api_task  # noqa: E402
from costkit.testing.imm_server import (TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET,  # noqa: E402
                                        spread_tasks)

UTC = timezone.utc


def start_server(tasks: int, days: float, latency_ms: float):
    cmd = [sys.executable, "-m", "costkit.testing.imm_server", "--port", "0", "--tasks", str(tasks),
           "--days", str(days), "--latency-ms", str(latency_ms), "--project", "bench", "--no-retention"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        raise SystemExit(f"the IMM test server did not start: {line!r}")
    endpoint = line.split(" on ", 1)[1].split()[0]
    return proc, endpoint


def ingest_rate(n: int, batch: int = 1000, repeat: int = 3) -> float:
    """Upsert n normalised records into a fresh store in pages of `batch`; best tasks/s of `repeat`."""
    region = "cn-bench"
    records = [from_api_task(t, region=region, project="ingest", origin="listtasks")
               for t in spread_tasks(n, days=30, project="ingest", seed=11)]
    best = 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "ingest.duckdb") as st:
            seen = datetime.now(UTC)
            t0 = time.perf_counter()
            for i in range(0, n, batch):
                st.upsert_tasks(records[i:i + batch], seen_at=seen)
            best = max(best, n / (time.perf_counter() - t0))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = ap.parse_args(argv)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"nproc {os.cpu_count()} (load average {load}); {args.tasks} tasks over {args.days:g} days; {args.latency_ms:g} ms per page; "
          f"concurrency {args.concurrency}", flush=True)
    proc, endpoint = start_server(args.tasks, args.days, args.latency_ms)
    try:
        now = datetime.now(UTC)
        with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "bench.duckdb") as st:
            t0 = time.perf_counter()
            s = collect(st, region="cn-bench", projects=["bench"], endpoint=endpoint,
                        since=now - timedelta(days=args.days, hours=1), until=now,
                        concurrency=args.concurrency, warn=lambda t: None,
                        credentials=(TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET))
            elapsed = time.perf_counter() - t0
            stored = st.count_tasks()
    finally:
        proc.terminate()
        proc.wait(10)
    if stored != args.tasks:
        print(f"ERROR: stored {stored} tasks, expected {args.tasks}", file=sys.stderr)
        return 1
    floor = s.pages * args.latency_ms / 1000
    ratio = floor / elapsed
    print(f"collect: {stored} tasks, {s.pages} pages in {elapsed:.2f} s = {stored / elapsed:,.0f} tasks/s")
    print(f"sequential floor: {s.pages} pages x {args.latency_ms:g} ms = {floor:.2f} s; "
          f"speed-up {ratio:.2f}x (target >= 3x) {'OK' if ratio >= 3 else 'BELOW TARGET'}")
    rate = ingest_rate(args.tasks)
    print(f"store ingest: {rate:,.0f} tasks/s of new tasks in pages of 1000, best of 3 (target >= 50,000) "
          f"{'OK' if rate >= 50_000 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
