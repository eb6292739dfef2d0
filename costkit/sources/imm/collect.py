"""Collect ImageSplicing tasks from IMM ListTasks into the store.

How a collection runs:

- **Window.** From the project's checkpoint minus `OVERLAP` (late status changes; also from the start of
  the oldest task still Running in the store), until now. A project never collected, or not fully
  re-listed for `RECONCILE_EVERY`, is listed `NEW_PROJECT_LOOKBACK` back (IMM lists 7 days; whatever a
  server still lists is taken): a daily reconciliation that catches anything an incremental run missed. `--since`/`--until`
  override it. IMM lists a task for 7 days only (`RETENTION`), so a window that starts earlier than that
  cannot be recovered: `collect` warns when the last successful run is more than `RETENTION_WARNING` old.
- **Slices.** The window is cut into time slices (at most `MAX_SLICE`), fetched concurrently by worker
  threads, each with its own SDK client. Neighbouring slices overlap by `BOUNDARY_PAD` so a task stamped
  exactly on a boundary is listed whatever the server's range semantics; the upsert removes the duplicates.
- **Durability.** DuckDB is written by the calling thread only: workers send pages through a queue. Each
  page is one transaction. A project's checkpoint advances, in the same transaction as the page that
  completes a slice, only to the end of the contiguous prefix of completed slices; a crash (even SIGKILL)
  therefore leaves a checkpoint from which a rerun re-fetches everything not durably stored.
- **Retries.** Our own loop (the SDK does not retry non-JSON gateway pages): exponential backoff with full
  jitter, `RetryPolicy.attempts` attempts, on throttling (honouring `x-acs-retry-after`, in milliseconds),
  `Throttling*` error codes, HTTP 429 and 5xx, non-JSON pages and dropped or refused connections. Other
  4xx (bad credentials, forbidden, unknown project) fail at once. A failure raises `RuntimeFailure` (exit 1),
  records the run as failed and leaves the checkpoint at the last completed prefix.

Modules: `plan` (window and slices), `listing` (ListProjects, ListTasks pages), `client` (the SDK client
and one call with retries; the policy and error classes are `costkit.sources.retry`), `writer` (the queue
and the single writer, checkpoints); this module checks the arguments and runs them in order.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from costkit.core.errors import BadInput, CostkitError, RuntimeFailure
from costkit.sources.endpoint import parse_endpoint
from costkit.sources.imm.client import Caller, thread_clients
from costkit.sources.imm.listing import list_projects
from costkit.sources.imm.plan import ProjectSummary, aware, plan_project
from costkit.sources.imm.writer import run_slices
from costkit.sources.retry import RetryPolicy, describe

UTC = timezone.utc

# Eight slices in flight: the 20 ms-per-page benchmark needs them to beat the sequential floor 3x on a
# 2-core machine (the GIL, not the network, is then the limit); IMM throttling is retried with backoff.
DEFAULT_CONCURRENCY = 8
RUN_KIND = "listtasks"


@dataclass
class CollectSummary:
    """What `collect` did in one region: per-project summaries, seconds taken, retention warnings."""

    region: str
    projects: list[ProjectSummary]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(p.pages for p in self.projects)

    @property
    def new(self) -> int:
        return sum(p.new for p in self.projects)

    @property
    def updated(self) -> int:
        return sum(p.updated for p in self.projects)

    @property
    def unchanged(self) -> int:
        return sum(p.unchanged for p in self.projects)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.projects)

    def line(self) -> str:
        return (f"collected {len(self.projects)} project(s) in {self.region}: {self.new} new, "
                f"{self.updated} updated, {self.unchanged} unchanged tasks, {self.pages} pages, "
                f"{self.seconds:.1f} s")



def collect(store, *, region: str, projects=None, all_projects: bool = False, since: datetime | None = None,
            until: datetime | None = None, endpoint: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
            credentials=None, progress=None, now: datetime | None = None, retry: RetryPolicy | None = None,
            warn=None) -> CollectSummary:
    """Collect the ImageSplicing tasks of `projects` (or every project) in `region` into `store`.

    `since`/`until` (aware datetimes) override the default window; `now` is injectable for tests and the
    synthetic demo (default: the wall clock). `credentials` are static keys for tests (default: the
    Alibaba Cloud credential chain). `progress(done_slices, total_slices, tasks)` is called after each
    page; `warn(text)` receives retention warnings (default: stderr). Raises RuntimeFailure when a call
    fails for good, after recording the runs.
    """
    t0 = time.monotonic()
    projects, now, since, until = _checked(region, projects, all_projects, concurrency, endpoint, now, since,
                                           until)
    retry = retry or RetryPolicy()
    warn = warn or (lambda text: print(f"costkit: warning: {text}", file=sys.stderr, flush=True))
    warnings: list[str] = []

    def _warn(text):
        warnings.append(text)
        warn(text)

    stop = threading.Event()
    caller = Caller(retry, stop)
    client = thread_clients(region, endpoint, credentials)
    if all_projects:
        projects = list_projects(client(), caller)
        if not projects:
            return CollectSummary(region, [], time.monotonic() - t0, warnings)
    projects = list(dict.fromkeys(projects))

    plans = [plan_project(store, region, p, since, until, now, concurrency, _warn) for p in projects]
    for plan in plans:
        plan.run_id = store.begin_run(RUN_KIND, region, plan.project, plan.window_start, plan.window_end)
        plan.summary = ProjectSummary(plan.project, plan.window_start, plan.window_end,
                                      checkpoint=plan.old_checkpoint)
        plan.done = [False] * len(plan.slices)

    failure = run_slices(store, region, plans, client, caller, stop, concurrency, now, progress)
    summary = CollectSummary(region, [p.summary for p in plans], time.monotonic() - t0, warnings)
    if failure is not None:
        if isinstance(failure, CostkitError):
            raise RuntimeFailure(f"{failure} (run recorded as failed; checkpoint kept)") from None
        raise RuntimeFailure(f"collection failed: {describe(failure)}") from None
    return summary


def _checked(region, projects, all_projects, concurrency, endpoint, now, since, until):
    """The arguments of `collect`, checked: (projects as a list, now, since, until) in UTC; raises BadInput."""
    if not region or not str(region).strip():
        raise BadInput("a region is required", field="--region")
    if concurrency < 1 or concurrency > 64:
        raise BadInput(f"must be between 1 and 64, got {concurrency}", field="--concurrency")
    if isinstance(projects, str):
        projects = [projects]
    projects = [p for p in (projects or []) if p]
    if all_projects and projects:
        raise BadInput("give --project or --all-projects, not both")
    if not all_projects and not projects:
        raise BadInput("give at least one --project, or --all-projects")
    parse_endpoint(endpoint, region)  # reject a bad endpoint before anything else
    now = aware(now, "now") if now is not None else datetime.now(UTC)
    since = aware(since, "--since") if since is not None else None
    until = aware(until, "--until") if until is not None else None
    if since is not None and until is not None and since >= until:
        raise BadInput(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    return projects, now, since, until
