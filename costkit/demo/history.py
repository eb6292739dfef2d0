"""The demo's task history: a SYNTHETIC month of splices collected from a local IMM server.

`run_synthetic_collection` starts `costkit.testing.imm_server` on 127.0.0.1 with a deterministic,
clearly labelled synthetic month (project `demo-synthetic`, tags `{"synthetic": "true"}`, some Failed
tasks, some MediaConvert/ImageToPDF tasks that the collector skips), then collects it through the real
SDK with static test credentials, as a daily cron job would: the server's clock (and so its 7-day
retention) and the collector's clock both advance one day per run. After the month, the tasks still
Running at its end finish and a last run picks up the change. No account and no traffic off loopback.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from costkit.sources.imm.collect import collect
from costkit.testing.imm_server import (TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, IMMServer, fmt_time, parse_time,
                                 synthetic_month_tasks)
from costkit.core.timeutil import SHANGHAI, add_months, month_start, parse_month

UTC = timezone.utc
SYNTHETIC_PROJECT = "demo-synthetic"
SYNTHETIC_REGION = "cn-hangzhou"


@dataclass
class SyntheticCollection:
    month: str
    region: str
    project: str
    runs: int = 0
    pages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    served_splices: int = 0        # ImageSplicing tasks the server holds for the month
    served_other: int = 0          # other task types (skipped by the collector)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"SYNTHETIC {self.month}: {self.runs} daily collections from a local IMM server "
                f"(project {self.project}): {self.new} new, {self.updated} updated, {self.unchanged} unchanged "
                f"tasks, {self.pages} pages, {self.seconds:.1f} s")


def run_synthetic_collection(store_path, month: str = "2025-08", *, region: str = SYNTHETIC_REGION,
                             project: str = SYNTHETIC_PROJECT, per_day: int = 120,
                             concurrency: int = 2, skip_runs=()) -> SyntheticCollection:
    """Collect a synthetic month into the store at `store_path` (a path, or an open `Store`).

    `skip_runs`: billing days (YYYY-MM-DD, UTC+8) whose daily run does not happen (a collector outage). An
    outage longer than IMM's 7-day retention really loses tasks, and the next run warns about the window.
    """
    year, mon = parse_month(month)
    tasks = synthetic_month_tasks(month, project=project, per_day=per_day)
    result = SyntheticCollection(month, region, project,
                                 served_splices=sum(t["TaskType"] == "ImageSplicing" for t in tasks),
                                 served_other=sum(t["TaskType"] != "ImageSplicing" for t in tasks))
    start = month_start(year, mon).astimezone(UTC)
    end = month_start(*add_months(year, mon, 1)).astimezone(UTC)
    t0 = time.monotonic()
    srv = IMMServer(tasks, now=start, record_requests=False).start()
    try:
        if hasattr(store_path, "upsert_tasks"):
            _collect_month(store_path, srv, result, start, end, concurrency, set(skip_runs))
        else:
            from costkit.store.db import Store
            with Store.open(store_path) as store:
                _collect_month(store, srv, result, start, end, concurrency, set(skip_runs))
    finally:
        srv.stop()
    result.seconds = time.monotonic() - t0
    return result


def _collect_month(store, srv: IMMServer, result: SyntheticCollection, start: datetime, end: datetime,
                   concurrency: int, skip_runs: set = frozenset()) -> None:
    def run(now: datetime, since: datetime | None = None):
        srv.now = now
        s = collect(store, region=result.region, projects=[result.project], endpoint=srv.endpoint,
                    credentials=(TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET), concurrency=concurrency,
                    now=now, since=since, warn=result.warnings.append)
        result.runs += 1
        result.pages += s.pages
        result.new += s.new
        result.updated += s.updated
        result.unchanged += s.unchanged

    # Daily, just after midnight UTC+8 (the billing day), then once more at the end of the month.
    day = start + timedelta(days=1)
    first = True
    while day <= end:
        if day.astimezone(SHANGHAI).date().isoformat() not in skip_runs:
            run(day + timedelta(minutes=10), since=start - timedelta(hours=1) if first else None)
            first = False
        day += timedelta(days=1)
    # Splices still Running at the month's end finish; a later run records the final status.
    finish = end + timedelta(hours=1)
    for t in srv.tasks:
        if t["Status"] == "Running":
            t.update(Status="Succeeded", Progress=100,
                     EndTime=fmt_time(parse_time(t["StartTime"]) + timedelta(seconds=40)))
    run(finish)
