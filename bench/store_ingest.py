"""Store ingest benchmark: upsert synthetic ImageSplicing records into a fresh DuckDB store.

Prints tasks/s for bulk batches (10,000), for ListTasks-page batches (100), for re-ingesting the same tasks
(all unchanged) and for normalising ListTasks items (`taskrecord.from_api_task`). Target: >= 50,000 tasks/s.
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

from costkit.store import Store  # noqa: E402
from costkit.taskrecord import from_api_task  # noqa: E402

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
    ap.add_argument("-n", type=int, default=200_000, help="tasks (default 200,000)")
    args = ap.parse_args()
    n = args.n
    items = synthetic_items(n, datetime(2026, 10, 1, tzinfo=UTC))

    t = time.perf_counter()
    records = [from_api_task(it, region="cn-hangzhou", project="bench", origin="listtasks") for it in items]
    normalise = n / (time.perf_counter() - t)

    results = {}
    with tempfile.TemporaryDirectory() as d:
        for label, size in (("bulk batches of 10,000", 10_000), ("page batches of 100", 100)):
            path = os.path.join(d, f"{size}.duckdb")
            recs = records if size >= 1000 else records[: min(n, 20_000)]
            with Store.open(path) as store:
                now = datetime.now(UTC)
                t = time.perf_counter()
                for i in range(0, len(recs), size):
                    store.upsert_tasks(recs[i:i + size], seen_at=now)
                results[f"new tasks, {label}"] = len(recs) / (time.perf_counter() - t)
                if size >= 1000:
                    t = time.perf_counter()
                    for i in range(0, len(recs), size):
                        counts = store.upsert_tasks(recs[i:i + size], seen_at=now)
                    assert counts.unchanged == len(recs[i:i + size])
                    results[f"unchanged tasks, {label}"] = len(recs) / (time.perf_counter() - t)
                assert store.count_tasks() == len(recs)

    print(f"store ingest benchmark: {n:,} synthetic ImageSplicing tasks, nproc={os.cpu_count()}")
    for label, rate in results.items():
        print(f"  upsert {label:<36} {rate:>12,.0f} tasks/s")
    print(f"  normalise ListTasks items (from_api_task)    {normalise:>12,.0f} tasks/s")
    bulk = results["new tasks, bulk batches of 10,000"]
    print(f"target >= 50,000 tasks/s: {'met' if bulk >= 50_000 else 'NOT met'} ({bulk:,.0f})")


if __name__ == "__main__":
    main()
