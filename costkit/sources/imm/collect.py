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
"""
from __future__ import annotations

import math
import queue
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from costkit.sources.credentials import tea_config_kwargs
from costkit.core.errors import BadInput, CostkitError, RuntimeFailure, one_line

UTC = timezone.utc

TASK_TYPE = "ImageSplicing"
OVERLAP = timedelta(hours=2)               # re-read before the checkpoint: late Running -> Succeeded/Failed
RECONCILE_EVERY = timedelta(hours=24)      # re-list all that IMM still lists at least this often
NEW_PROJECT_LOOKBACK = timedelta(days=30)  # IMM lists 7 days; asking further costs one request
RETENTION = timedelta(days=7)
RETENTION_WARNING = timedelta(days=6)      # warn when the last successful run is older than this
MAX_SLICE = timedelta(days=1)
MIN_SLICE = timedelta(hours=1)
BOUNDARY_PAD = timedelta(seconds=1)
CLOCK_SKEW = timedelta(minutes=5)          # a default `until` also asks a little past our clock
PAGE_SIZE = 100
RETRY_AFTER_CAP = 60.0                     # seconds: an absurd x-acs-retry-after is not obeyed blindly
# Eight slices in flight: the 20 ms-per-page benchmark needs them to beat the sequential floor 3x on a
# 2-core machine (the GIL, not the network, is then the limit); IMM throttling is retried with backoff.
DEFAULT_CONCURRENCY = 8
INGEST_BATCH = 2000                        # tasks per store transaction at most...
INGEST_WAIT = 0.05                         # ...gathered for at most this long (a commit costs ~10 ms)
RUN_KIND = "listtasks"
CONNECT_TIMEOUT_MS = 5_000
READ_TIMEOUT_MS = 10_000                  # the SDK default; a hung reply is retried


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with full jitter; tests inject a tiny base and a seeded rng."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 20.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after_ms=None) -> float:
        jitter = self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after_ms:
            try:
                return max(min(float(retry_after_ms) / 1000.0, RETRY_AFTER_CAP), jitter)
            except (TypeError, ValueError):
                pass
        return jitter


@dataclass
class ProjectSummary:
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
class CollectSummary:
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


# ---------------------------------------------------------------------------------------------
# Client and errors

def parse_endpoint(endpoint: str | None, region: str) -> tuple[str, str]:
    """`http://host:port`, `https://host` or a bare host name (https); return (host[:port], protocol)."""
    if not endpoint:
        return f"imm.{region}.aliyuncs.com", "https"
    text = endpoint.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.username:
            raise BadInput(f"expected http://host[:port], https://host[:port] or a host name, got {endpoint!r}",
                           field="--endpoint")
        try:
            parts.port
        except ValueError:
            raise BadInput(f"bad port in {endpoint!r}", field="--endpoint") from None
        return parts.netloc, parts.scheme
    if not text or any(c in text for c in "/ ?#@"):
        raise BadInput(f"expected http://host[:port], https://host[:port] or a host name, got {endpoint!r}",
                       field="--endpoint")
    return text, "https"


def make_client(region: str, endpoint: str | None, credentials=None):
    """An IMM SDK client. `credentials`: None for the default Alibaba Cloud chain, a credentials client
    (`alibabacloud_credentials.client.Client`), or static keys as a dict or tuple
    (access_key_id, access_key_secret[, security_token])."""
    from alibabacloud_imm20200930.client import Client
    from alibabacloud_tea_openapi.models import Config

    host, protocol = parse_endpoint(endpoint, region)
    kw = dict(endpoint=host, protocol=protocol, region_id=region, connect_timeout=CONNECT_TIMEOUT_MS,
              read_timeout=READ_TIMEOUT_MS)
    kw.update(tea_config_kwargs(credentials))
    return Client(Config(**kw))


class _Restart(Exception):
    """The server rejected a NextToken: list the slice again from its first page."""


class _Stopped(Exception):
    """Another slice failed; stop quietly."""


def _describe(e: BaseException) -> str:
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

    if isinstance(e, (ClientException, ServerException, ThrottlingException)):
        data = e.data if isinstance(e.data, dict) else {}
        msg = data.get("Message") or data.get("message") or ""
        rid = getattr(e, "request_id", None) or data.get("RequestId")
        text = f"{e.code} (HTTP {e.status_code}"
        text += f", request id {rid})" if rid else ")"
        return text + (f": {one_line(msg, 200)}" if msg else "")
    inner = getattr(e, "inner_exception", None)
    if inner is not None:
        if isinstance(inner, RuntimeError) and "json" in str(inner).lower():
            return "the endpoint answered with a non-JSON page (a gateway error?)"
        return f"{type(inner).__name__}: {one_line(getattr(inner, 'message', None) or inner, 200)}"
    return f"{type(e).__name__}: {one_line(e, 200)}"


_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidCredentials",
                     "InvalidSecurityToken", "IncompleteSignature", "MissingAuthorization")


class BadPage(Exception):
    """A 200 answer that is not a ListTasks page: retried like a gateway fault."""


def _classify(e: BaseException):
    """(retry?, retry_after_ms, restart?) for an exception from an SDK call."""
    if isinstance(e, BadPage):
        return True, None, False
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
    from darabonba.exceptions import UnretryableException as DaraUnretryable
    from Tea.exceptions import TeaException, UnretryableException as TeaUnretryable

    if isinstance(e, ThrottlingException):
        return True, e.retry_after, False
    if isinstance(e, ClientException):
        code = str(e.code or "")
        if code.startswith("Throttling") or e.status_code == 429 or code in ("ServiceUnavailable",
                                                                             "RequestTimeout"):
            return True, e.retry_after, False
        if "NextToken" in code or "Token" in code and "Security" not in code:
            return False, None, True
        return False, None, False
    if isinstance(e, ServerException):
        return True, e.retry_after, False
    if isinstance(e, (DaraUnretryable, TeaUnretryable)):
        from alibabacloud_credentials.exceptions import CredentialException
        if isinstance(getattr(e, "inner_exception", None), CredentialException):
            return False, None, False  # no credentials: retrying will not find any
        return True, None, False   # non-JSON gateway page, dropped or refused connection, timeout
    if isinstance(e, TeaException):
        status = getattr(e, "status_code", None) or getattr(e, "statusCode", None)
        return bool(status and (status >= 500 or status == 429)), getattr(e, "retry_after", None), False
    try:
        import requests
        if isinstance(e, requests.exceptions.RequestException):
            return True, None, False
    except ImportError:  # pragma: no cover
        pass
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True, None, False
    return False, None, False


def _fatal_message(what: str, e: BaseException) -> str:
    from alibabacloud_credentials.exceptions import CredentialException

    inner = getattr(e, "inner_exception", None)
    if isinstance(e, CredentialException) or isinstance(inner, CredentialException):
        return (f"{what}: no usable Alibaba Cloud credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID and "
                f"ALIBABA_CLOUD_ACCESS_KEY_SECRET, a CLI profile or a RAM role): {one_line(inner or e, 160)}")
    msg = f"{what} failed: {_describe(e)}"
    code = str(getattr(e, "code", "") or "")
    if code.startswith(_CREDENTIAL_CODES):
        msg += " (check the AccessKey: ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or the credentials chain)"
    elif code.startswith(("Forbidden", "NoPermission")):
        msg += " (the RAM user or role needs imm:ListTasks and imm:ListProjects)"
    return msg


class _Caller:
    """Runs one SDK call with bounded retries; interruptible through `stop`."""

    def __init__(self, policy: RetryPolicy, stop: threading.Event, sleep=None):
        self.policy, self.stop = policy, stop
        self._sleep = sleep or (lambda s: stop.wait(s))
        self.retries = 0
        self._lock = threading.Lock()

    def __call__(self, what: str, fn, *args):
        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                raise _Stopped()
            try:
                return fn(*args)
            except CostkitError:
                raise
            except Exception as e:
                retry, retry_after, restart = _classify(e)
                if restart:
                    raise _Restart(_describe(e)) from None
                if not retry:
                    raise RuntimeFailure(_fatal_message(what, e)) from None
                if attempt == attempts:
                    raise RuntimeFailure(f"{what}: gave up after {attempts} attempts; last error: "
                                         f"{_describe(e)}") from None
                with self._lock:
                    self.retries += 1
                self._sleep(self.policy.delay(attempt, retry_after))
        raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Windows and slices

def _fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(dt: datetime, name: str) -> datetime:
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
class _Plan:
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


@dataclass
class _Page:
    plan: _Plan
    index: int
    records: list
    last: bool
    error: BaseException | None = None
    listed: int = 0               # tasks on the page, before filtering
    skipped: int = 0              # other task types
    bad: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The collection

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
    now = _aware(now, "now") if now is not None else datetime.now(UTC)
    since = _aware(since, "--since") if since is not None else None
    until = _aware(until, "--until") if until is not None else None
    if since is not None and until is not None and since >= until:
        raise BadInput(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    retry = retry or RetryPolicy()
    warn = warn or (lambda text: print(f"costkit: warning: {text}", file=sys.stderr, flush=True))
    warnings: list[str] = []

    def _warn(text):
        warnings.append(text)
        warn(text)

    stop = threading.Event()
    caller = _Caller(retry, stop)
    local = threading.local()

    def client():
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = make_client(region, endpoint, credentials)
        return c

    if all_projects:
        projects = _list_projects(client(), caller)
        if not projects:
            return CollectSummary(region, [], time.monotonic() - t0, warnings)
    projects = list(dict.fromkeys(projects))

    plans = [_plan(store, region, p, since, until, now, concurrency, _warn) for p in projects]
    for plan in plans:
        plan.run_id = store.begin_run(RUN_KIND, region, plan.project, plan.window_start, plan.window_end)
        plan.summary = ProjectSummary(plan.project, plan.window_start, plan.window_end,
                                      checkpoint=plan.old_checkpoint)
        plan.done = [False] * len(plan.slices)

    pages: queue.Queue = queue.Queue(maxsize=max(8 * concurrency, 2 * INGEST_BATCH // PAGE_SIZE))
    jobs = [(plan, i) for i in range(max(len(p.slices) for p in plans)) for plan in plans if i < len(plan.slices)]

    abandoned = threading.Event()  # the main loop no longer reads the queue

    def put(item):
        while not abandoned.is_set():
            try:
                pages.put(item, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set() and item.error is None and not item.last:
                    raise _Stopped()

    def worker(plan: _Plan, index: int):
        try:
            _fetch_slice(client, caller, region, plan, index, put)
        except BaseException as e:  # always report, so the main loop can count the slice
            if not isinstance(e, _Stopped):
                stop.set()  # the run has failed: other slices stop before their next request
            put(_Page(plan, index, [], True, error=e))

    total = len(jobs)
    finished = 0
    fetched = 0
    failure: BaseException | None = None
    seen_at = now
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="costkit-collect")
    try:
        for plan, i in jobs:
            pool.submit(worker, plan, i)
        while finished < total:
            # Take what is queued (up to INGEST_BATCH tasks) into one transaction: DuckDB commits are
            # costly, and a batch of pages is as atomic as one page.
            batch = [pages.get()]
            size = len(batch[0].records)
            open_slices = total - finished - (batch[0].last or batch[0].error is not None)
            deadline = time.monotonic() + INGEST_WAIT
            while size < INGEST_BATCH and open_slices > 0:
                try:
                    batch.append(pages.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
                size += len(batch[-1].records)
                open_slices -= batch[-1].last or batch[-1].error is not None
            good = []
            for page in batch:
                if page.error is None:
                    good.append(page)
                    continue
                finished += 1
                if isinstance(page.error, _Stopped):
                    continue
                page.plan.failed = True
                err = page.error
                page.plan.summary.errors.append(str(err) if isinstance(err, CostkitError) else _describe(err))
                if failure is None:
                    failure = err
                stop.set()
            if good:
                fetched += _ingest(store, region, good, seen_at)
                finished += sum(1 for p in good if p.last)
            if progress is not None:
                progress(finished, total, fetched)
    except BaseException:
        stop.set()
        abandoned.set()
        raise
    finally:
        stop.set()
        abandoned.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for plan in plans:
            s = plan.summary
            s.ok = not plan.failed and all(plan.done) and failure is None
            if failure is not None and not plan.failed and not all(plan.done):
                s.errors.append("stopped: another slice failed")
            store.finish_run(plan.run_id, pages=s.pages, new=s.new, updated=s.updated,
                             unchanged=s.unchanged, errors=list(s.errors), ok=s.ok)

    summary = CollectSummary(region, [p.summary for p in plans], time.monotonic() - t0, warnings)
    if failure is not None:
        if isinstance(failure, CostkitError):
            raise RuntimeFailure(f"{failure} (run recorded as failed; checkpoint kept)") from None
        raise RuntimeFailure(f"collection failed: {_describe(failure)}") from None
    return summary


def _list_projects(client, caller) -> list[str]:
    from alibabacloud_imm20200930 import models as m

    names, token, seen = [], "", set()
    while True:
        body = caller("ListProjects", client.list_projects,
                      m.ListProjectsRequest(max_results=100, next_token=token or None)).body
        names += [p.project_name for p in (body.projects or []) if p and p.project_name]
        token = body.next_token or ""
        if not token:
            return list(dict.fromkeys(names))
        if token in seen:
            raise RuntimeFailure("ListProjects returned the same NextToken twice")
        seen.add(token)


def _plan(store, region, project, since, until, now, concurrency, warn) -> _Plan:
    checkpoint = store.get_checkpoint(region, project)
    checkpoint = checkpoint.astimezone(UTC) if checkpoint is not None else None
    last_ok = _last_collected_until(store, region, project)
    if last_ok is not None and checkpoint is not None:
        last_ok = max(last_ok, checkpoint)  # a failed run may still have stored a prefix durably
    if last_ok is not None and now - last_ok > RETENTION_WARNING:
        lost_until = now - RETENTION
        if lost_until > last_ok:
            warn(f"{project}: the last successful collection ended {_fmt(last_ok)}, more than 6 days ago; "
                 f"tasks from {_fmt(last_ok)} to {_fmt(lost_until)} may already be lost (IMM lists tasks for "
                 f"7 days only). Import notifications or dumps for that window.")
        else:
            warn(f"{project}: the last successful collection ended {_fmt(last_ok)}, more than 6 days ago; "
                 f"tasks from then will drop out of ListTasks from {_fmt(last_ok + RETENTION)}.")
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
        raise BadInput(f"{project}: the window start {_fmt(start)} is not before its end {_fmt(end)}")
    # An explicit --since is sliced evenly; a default window needs dense slices only where IMM still lists.
    dense_from = None if since is not None else now - RETENTION - timedelta(hours=1)
    slices = make_slices(start, query_end, concurrency, dense_from=dense_from)
    # The checkpoint may only advance over a window that joins on to what is already covered.
    joins = checkpoint is None or start <= checkpoint
    # The run records only what IMM could still list, so coverage never claims a window it lost.
    recorded_start = min(max(start, now - RETENTION), end - timedelta(microseconds=1))
    return _Plan(project, recorded_start, end, query_end, slices, joins, checkpoint)


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


def _list_tasks_body(client, request) -> dict:
    """ListTasks through the SDK's own request path (query building, ACS3 signing, error mapping), returning
    the response body as a dict.

    This is `Client.list_tasks_with_options` of alibabacloud_imm20200930 5.0.3 (pinned) without its last
    step: building TaskInfo models only for us to turn them back into dicts cost about an eighth of the
    collector's CPU per page.
    """
    from alibabacloud_tea_openapi import utils_models
    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.runtime import RuntimeOptions

    query = {
        "MaxResults": request.max_results,
        "NextToken": request.next_token,
        "Order": request.order,
        "ProjectName": request.project_name,
        "RequestDefinition": request.request_definition,
        "Sort": request.sort,
        "StartTimeRange": Utils.array_to_string_with_specified_style(request.start_time_range, "StartTimeRange",
                                                                     "json"),
        "TaskTypes": Utils.array_to_string_with_specified_style(request.task_types, "TaskTypes", "json"),
    }
    req = utils_models.OpenApiRequest(query=Utils.query({k: v for k, v in query.items() if v is not None}))
    params = utils_models.Params(action="ListTasks", version="2020-09-30", protocol="HTTPS", pathname="/",
                                 method="POST", auth_type="AK", style="RPC", req_body_type="formData",
                                 body_type="json")
    body = client.call_api(params, req, RuntimeOptions()).get("body")
    if not isinstance(body, dict):
        raise BadPage(f"ListTasks answered a {type(body).__name__}, not a JSON object")
    tasks = body.get("Tasks")
    if (tasks is None and ("Code" in body or "Message" in body)) or (tasks is not None and not isinstance(tasks, list)):
        # An error object (or a mangled list) with status 200: taking it as an empty last page would end the
        # listing early and lose tasks in silence.
        raise BadPage(f"ListTasks answered 200 without a task list: Code={body.get('Code')!r} "
                      f"Message={one_line(body.get('Message') or '', 120)!r}")
    return body


def _fetch_slice(client, caller, region, plan: _Plan, index: int, put) -> None:
    from alibabacloud_imm20200930 import models as m

    start, end = plan.slices[index]
    what = f"ListTasks {plan.project} {_fmt(start)}..{_fmt(end)}"
    restarts = 0
    while True:
        token, seen = "", set()
        try:
            while True:
                req = m.ListTasksRequest(
                    project_name=plan.project, task_types=[TASK_TYPE], request_definition=True,
                    max_results=PAGE_SIZE, next_token=token, sort="StartTime", order="asc",
                    start_time_range=m.TimeRange(start=_fmt(start - BOUNDARY_PAD), end=_fmt(end + BOUNDARY_PAD)))
                body = caller(what, _list_tasks_body, client(), req)
                token = body.get("NextToken") or ""
                tasks = [t for t in (body.get("Tasks") or []) if isinstance(t, dict)]
                if token and token in seen:
                    raise RuntimeFailure(f"{what}: the server returned the same NextToken twice")
                seen.add(token)
                put(_normalise(region, plan, index, tasks, not token))
                if not token:
                    return
        except _Restart as e:
            # An expired or rejected NextToken: list the slice again (the upsert absorbs repeats).
            restarts += 1
            if restarts > 3:
                raise RuntimeFailure(f"{what}: the server kept rejecting NextToken: {e}") from None


def _normalise(region, plan: _Plan, index: int, tasks: list, last: bool) -> _Page:
    """Tasks of one page as records (in the worker thread, off the writer's path)."""
    from costkit.sources.imm.taskrecord import from_api_task

    page = _Page(plan, index, [], last, listed=len(tasks))
    for t in tasks:
        kind = t.get("TaskType")
        if not kind:
            # The listing was filtered to TaskTypes=["ImageSplicing"]: an untyped task is one of ours.
            t = dict(t, TaskType=TASK_TYPE)
        elif kind != TASK_TYPE:
            page.skipped += 1  # the server ignored TaskTypes
            continue
        try:
            page.records.append(from_api_task(t, region=region, project=plan.project, origin="listtasks"))
        except BadInput as e:
            page.bad.append(f"task {t.get('TaskId')!r} skipped: {e}")
    return page


def _ingest(store, region, pages: list, seen_at) -> int:
    """Upsert pages (and advance checkpoints of completed slices) in one transaction."""
    by_plan: dict[int, tuple[_Plan, dict]] = {}
    for page in pages:
        plan = page.plan
        s = plan.summary
        s.skipped += page.skipped
        s.errors.extend(page.bad)
        _, recs = by_plan.setdefault(id(plan), (plan, {}))
        for rec in page.records:
            # A task listed twice in one run (slice overlap, duplicate across pages) is written once,
            # unless it changed in between; within a batch the most final status wins.
            sig = (rec.get("status"), rec.get("code"), rec.get("end_time"))
            if plan.seen.get(rec["task_id"]) == sig:
                continue
            prev = recs.get(rec["task_id"])
            if prev is not None and prev.get("status") != "Running" and rec.get("status") == "Running":
                continue
            plan.seen[rec["task_id"]] = sig
            recs[rec["task_id"]] = rec
    with store.transaction():
        for plan, recs in by_plan.values():
            if recs:
                c = store.upsert_tasks(list(recs.values()), seen_at=seen_at)
                plan.summary.new += c.new
                plan.summary.updated += c.updated
                plan.summary.unchanged += c.unchanged
        for page in pages:
            if page.last:
                _complete_slice(store, region, page.plan, page.index)
    for page in pages:
        page.plan.summary.pages += 1
    return sum(p.listed for p in pages)


def _complete_slice(store, region, plan: _Plan, index: int) -> None:
    """Mark a slice done; move the checkpoint to the end of the contiguous prefix of done slices."""
    plan.done[index] = True
    while plan.prefix < len(plan.done) and plan.done[plan.prefix]:
        plan.prefix += 1
    if plan.advance_checkpoint and plan.prefix > 0:
        reached = min(plan.slices[plan.prefix - 1][1], plan.window_end)
        s = plan.summary
        if s.checkpoint is None or reached > s.checkpoint:
            store.set_checkpoint(region, plan.project, reached)
            s.checkpoint = reached
