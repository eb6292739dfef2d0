"""The window a project's collection covers, and its time slices (see `costkit.sources.imm.collect`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from costkit.core.errors import BadInput

UTC = timezone.utc

OVERLAP = timedelta(hours=2)               # re-read before the checkpoint: late Running -> Succeeded/Failed
RECONCILE_EVERY = timedelta(hours=24)      # re-list all that IMM still lists at least this often
NEW_PROJECT_LOOKBACK = timedelta(days=30)  # IMM lists 7 days; asking further costs one request
RETENTION = timedelta(days=7)
RETENTION_WARNING = timedelta(days=6)      # warn when the last successful run is older than this
MAX_SLICE = timedelta(days=1)
MIN_SLICE = timedelta(hours=1)
BOUNDARY_PAD = timedelta(seconds=1)
CLOCK_SKEW = timedelta(minutes=5)          # a default `until` also asks a little past our clock


def fmt(dt: datetime) -> str:
    """`dt` as ISO 8601 UTC to the second, as ListTasks takes it ("2026-11-20T02:00:00Z")."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aware(dt: datetime, name: str) -> datetime:
    """`dt` in UTC; BadInput naming `name` when it has no offset."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise BadInput(f"timestamp has no UTC offset: {dt.isoformat()}", field=name)
    return dt.astimezone(UTC)


def make_slices(start: datetime, end: datetime, concurrency: int,
                dense_from: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """Cut [start, end) into contiguous slices: enough to keep the workers busy, at most a day each.

    Before `dense_from` (past IMM's retention, where little or nothing is listed) one slice is enough.
    """
    out, t = [], start
    if dense_from is not None and start < dense_from < end:
        out.append((start, dense_from))
        t = dense_from
    span = end - t
    # A multiple of the worker count, so the last round of slices keeps every worker busy.
    per_round = max(1, concurrency)
    count = max(2 * per_round, math.ceil(span / MAX_SLICE))
    count = math.ceil(count / per_round) * per_round
    size = max(MIN_SLICE, span / count)
    while t < end:
        out.append((t, min(end, t + size)))
        t += size
    return out


@dataclass
class ProjectSummary:
    """What one project's collection run did: its window, pages, task counts, errors and checkpoint."""

    project: str
    window_start: datetime
    window_end: datetime
    pages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0            # other task types the server returned anyway
    errors: list[str] = field(default_factory=list)
    ok: bool = False
    checkpoint: datetime | None = None


@dataclass
class Plan:
    """One project's run: its window, slices and progress (which slices are done, the checkpoint prefix)."""

    project: str
    window_start: datetime
    window_end: datetime          # what the checkpoint may advance to
    query_end: datetime           # what the last slice asks for (past `window_end` by CLOCK_SKEW)
    slices: list
    advance_checkpoint: bool
    old_checkpoint: datetime | None
    run_id: object = None
    done: list = field(default_factory=list)
    prefix: int = 0
    summary: ProjectSummary | None = None
    failed: bool = False
    seen: dict = field(default_factory=dict)


def plan_project(store, region, project, since, until, now, concurrency, warn) -> Plan:
    """The window and slices of `project`'s run (module docstring of `costkit.sources.imm.collect`);
    `warn(text)` receives the retention warning."""
    checkpoint = store.get_checkpoint(region, project)
    checkpoint = checkpoint.astimezone(UTC) if checkpoint is not None else None
    last_ok = _last_collected_until(store, region, project)
    if last_ok is not None and checkpoint is not None:
        last_ok = max(last_ok, checkpoint)  # a failed run may still have stored a prefix durably
    if last_ok is not None and now - last_ok > RETENTION_WARNING:
        lost_until = now - RETENTION
        if lost_until > last_ok:
            warn(f"{project}: the last successful collection ended {fmt(last_ok)}, more than 6 days ago; "
                 f"tasks from {fmt(last_ok)} to {fmt(lost_until)} may already be lost (IMM lists tasks for "
                 f"7 days only). Import notifications or dumps for that window.")
        else:
            warn(f"{project}: the last successful collection ended {fmt(last_ok)}, more than 6 days ago; "
                 f"tasks from then will drop out of ListTasks from {fmt(last_ok + RETENTION)}.")
    if since is not None:
        start = since
    elif checkpoint is not None and not _reconcile_due(store, region, project, now):
        start = checkpoint - OVERLAP
        start = min(start, _oldest_running(store, region, project, now) or start)
    else:
        start = now - NEW_PROJECT_LOOKBACK
    end = until if until is not None else now
    query_end = end if until is not None else end + CLOCK_SKEW
    if start >= end:
        raise BadInput(f"{project}: the window start {fmt(start)} is not before its end {fmt(end)}")
    # An explicit --since is sliced evenly; a default window needs dense slices only where IMM still lists.
    dense_from = None if since is not None else now - RETENTION - timedelta(hours=1)
    slices = make_slices(start, query_end, concurrency, dense_from=dense_from)
    # The checkpoint may only advance over a window that joins on to what is already covered.
    joins = checkpoint is None or start <= checkpoint
    # The run records only what IMM could still list, so coverage never claims a window it lost.
    recorded_start = min(max(start, now - RETENTION), end - timedelta(microseconds=1))
    return Plan(project, recorded_start, end, query_end, slices, joins, checkpoint)


def _reconcile_due(store, region, project, now) -> bool:
    """True when no successful run re-listed the whole retention window in the last RECONCILE_EVERY."""
    t = store.last_ok_window_end(region, project, min_span=RETENTION - OVERLAP)
    return t is None or now - t.astimezone(UTC) >= RECONCILE_EVERY


def _last_collected_until(store, region, project) -> datetime | None:
    """The window end of the latest successful run: IMM may have dropped tasks since then.

    (Not `last_successful_run`, which is the wall-clock finish time: wrong when `now` is injected.)
    """
    t = store.last_ok_window_end(region, project)
    return None if t is None else t.astimezone(UTC)


def _oldest_running(store, region, project, now) -> datetime | None:
    """Start of the oldest task still Running in the store (within retention): re-list from there."""
    t = store.oldest_running_start(region, project)
    if t is None:
        return None
    t = t.astimezone(UTC) - BOUNDARY_PAD
    return t if t >= now - RETENTION - timedelta(hours=1) else None

