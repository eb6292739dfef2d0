"""Store ingest benchmark: upsert synthetic ImageSplicing records into a fresh DuckDB store.

Prints tasks/s for batches of 10,000 that are all new, all updated (Running -> Succeeded) and all unchanged,
for batches of 100 (one ListTasks page per call), and for normalising ListTasks items
(`taskrecord.from_api_task`). Target: >= 50,000 tasks/s for batched upserts (the slowest of the three).
Synthetic data; nothing leaves the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from costkit.store.db import Store  # noqa: E402
from costkit.sources.imm.taskrecord import from_api_task  # noqa: E402

UTC = timezone.utc


def synthetic_items(n: int, start: datetime) -> list[dict]:
    """ListTasks `Tasks[]` items spread over 30 days (synthetic)."""
    items = []
    for i in range(n):
        t0 = start + timedelta(seconds=i * 30 * 86400 / n)
        definition = {"Sources": [{"URI": f"oss://bkt/in/{i}-{k}.jpg", "Rotate": 90 * (k % 2)} for k in range(3)],
                      "TargetURI": f"oss://bkt/out/{i}.jpg", "Direction": "vertical", "ScaleType": "fit",
                      "Align": 800, "Padding": 4, "Margin": 8, "BackgroundColor": "#FFFFFF",
                      "ImageFormat": "jpg", "Quality": 85}
        items.append({"TaskId": f"ImageSplicing-{i:08d}", "TaskType": "ImageSplicing", "Status": "Succeeded",
                      "Code": "", "Message": "", "StartTime": t0.isoformat().replace("+00:00", "Z"),
                      "EndTime": (t0 + timedelta(seconds=2)).isoformat().replace("+00:00", "Z"), "Progress": 100,
                      "Tags": {"job": f"j{i % 50}"}, "UserData": json.dumps({"id": i}),
                      "TaskRequestDefinition": json.dumps(definition, separators=(",", ":"))})
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=100_000, help="tasks (default 100,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best figure of each kind is printed")
    args = ap.parse_args()
    n = args.n
    items = synthetic_items(n, datetime(2026, 10, 1, tzinfo=UTC))

    t = time.perf_counter()
    records = [from_api_task(it, region="cn-hangzhou", project="bench", origin="listtasks") for it in items]
    normalise = n / (time.perf_counter() - t)

    running = [dict(r, status="Running", end_time=None, code=None, message=None) for r in records]
    results: dict[str, float] = {}

    def note(label, rate):
        results[label] = max(results.get(label, 0.0), rate)

    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            size = 10_000
            with Store.open(os.path.join(d, "bulk.duckdb")) as store:
                now = datetime.now(UTC)
                for label, recs, expect in (("new (Running)", running, "new"),
                                            ("updated (Running -> Succeeded)", records, "updated"),
                                            ("unchanged", records, "unchanged")):
                    t = time.perf_counter()
                    for i in range(0, n, size):
                        counts = store.upsert_tasks(recs[i:i + size], seen_at=now)
                        assert getattr(counts, expect) == len(recs[i:i + size]), counts
                    note(f"{label}, batches of {size:,}", n / (time.perf_counter() - t))
                assert store.count_tasks() == n
            pages = records[: min(n, 20_000)]
            with Store.open(os.path.join(d, "pages.duckdb")) as store:
                now = datetime.now(UTC)
                t = time.perf_counter()
                for i in range(0, len(pages), 100):
                    store.upsert_tasks(pages[i:i + 100], seen_at=now)
                note("new, batches of 100 (one ListTasks page)", len(pages) / (time.perf_counter() - t))

    print(f"store ingest benchmark: {n:,} synthetic ImageSplicing tasks, best of {args.repeat} runs, "
          f"nproc={os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    for label, rate in results.items():
        print(f"  upsert {label:<46} {rate:>10,.0f} tasks/s")
    print(f"  {'normalise ListTasks items (from_api_task)':<53} {normalise:>10,.0f} tasks/s")
    bulk = min(v for k, v in results.items() if "10,000" in k)
    print(f"target >= 50,000 tasks/s: {'met' if bulk >= 50_000 else 'NOT met'} ({bulk:,.0f})")


if __name__ == "__main__":
    main()
