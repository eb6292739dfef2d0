"""A local IMM 2020-09-30 server on 127.0.0.1 that speaks the protocol the real SDK sends.

Used by the tests, the benchmark and `costkit demo` (so it lives in the installed package).
See ../shared/reference/imm-api.md sections 7-9 for the wire format it implements:

- `POST /`, action from `x-acs-action` (or the `Action` query parameter for v2-signed clients),
  every parameter in the query, nested values as JSON strings, booleans `True`/`False`;
- the ACS3-HMAC-SHA256 (and legacy v2 HMAC-SHA1) signature verified against the test secret;
- ListTasks (NextToken paging, time ranges, TaskTypes, Status, Sort/Order, RequestDefinition),
  GetTask, ListProjects, CreateImageSplicingTask;
- 7-day retention relative to an injectable "now";
- injected faults: throttling, 5xx, HTML gateway pages, dropped connections, duplicated tasks
  across pages, per-page latency.

Library use::

    with IMMServer(tasks=[make_task("p1", start=...)]) as srv:
        srv.add_fault("throttle", times=2, retry_after_ms=5)
        ... Config(endpoint=srv.host_port, protocol="http", access_key_id=srv.access_key_id, ...)

Script use: `python -m costkit.testing.imm_server --port 8080 --synthetic-month 2025-08`.
"""
from __future__ import annotations

import argparse
import bisect
import sys
import threading
from datetime import datetime, timedelta, timezone

from costkit.testing.imm_handler import SignedHandler
from costkit.testing.imm_synthetic import spread_tasks, synthetic_month_tasks
from costkit.testing.imm_tasks import EPOCH, fmt_time, make_task, parse_time, task_info, task_start
from costkit.testing.imm_wire import (FAULT_KINDS, ApiError, Fault, decode_token, encode_token, int_param,
                                      range_bound, request_id)
from costkit.testing.loopback import LoopbackServer

UTC = timezone.utc
RETENTION = timedelta(days=7)
TEST_ACCESS_KEY_ID = "test-ak"
TEST_ACCESS_KEY_SECRET = "test-secret"

__all__ = ["RETENTION", "TEST_ACCESS_KEY_ID", "TEST_ACCESS_KEY_SECRET", "FAULT_KINDS", "ApiError", "Fault",
           "IMMServer", "LoopbackServer", "fmt_time", "parse_time", "make_task", "main", "spread_tasks",
           "synthetic_month_tasks"]


class IMMServer(LoopbackServer):
    """IMM on 127.0.0.1:port. Mutate `tasks` (and call `invalidate()` after changing StartTime)."""

    def __init__(self, tasks: list[dict] | None = None, *, projects: list[str] | None = None,
                 now: datetime | None = None, retention: timedelta | None = RETENTION, latency: float = 0.0,
                 access_key_id: str = TEST_ACCESS_KEY_ID, access_key_secret: str = TEST_ACCESS_KEY_SECRET,
                 duplicate_across_pages: bool = False, verify_signature: bool = True,
                 host: str = "127.0.0.1", port: int = 0, record_requests: bool = True):
        self.tasks: list[dict] = tasks if tasks is not None else []
        self.projects = projects            # None: the projects that tasks mention
        self.now = now                      # None: the wall clock; a datetime or a callable
        self.retention = retention
        self.latency = latency              # seconds per ListTasks page, or a function of the params
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.duplicate_across_pages = duplicate_across_pages
        # Fields left out of ListTasks items (a leaner or older API answer), e.g. {"TaskType"}.
        self.omit_task_fields: set = set()
        self.verify_signature = verify_signature
        self.record_requests = record_requests
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict]] = []   # (action, decoded params), in arrival order
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._index_key = None
        self._index: dict = {}
        self._selections: dict = {}
        self._gen = 0
        self._init_server(host, port)

    # -- test helpers
    def add_fault(self, kind: str, **kw) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        f = Fault(kind, **kw)
        with self._lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def invalidate(self) -> None:
        with self._lock:
            self._index_key = None
            self._gen += 1

    def update_task(self, task_id: str, **fields) -> dict:
        for t in self.tasks:
            if t["TaskId"] == task_id:
                t.update(fields)
                self.invalidate()
                return t
        raise KeyError(task_id)

    def current_now(self) -> datetime:
        n = self.now() if callable(self.now) else self.now
        return n if n is not None else datetime.now(UTC)

    def listed_tasks(self, project: str | None = None, task_type: str | None = "ImageSplicing") -> list[dict]:
        """What ListTasks can still return (within retention): the set a collection should store."""
        cutoff = self._cutoff()
        return [t for t in self.tasks
                if (project is None or t["ProjectName"] == project)
                and (task_type is None or t["TaskType"] == task_type)
                and (cutoff is None or task_start(t) >= cutoff)]

    def request_count(self, action: str = "ListTasks") -> int:
        with self._lock:
            return self.counts.get(action, 0)

    # -- internals
    def _cutoff(self):
        return None if self.retention is None else self.current_now() - self.retention

    def _project_index(self, project: str):
        """Tasks of a project sorted by start time (cached until the task list changes)."""
        with self._lock:
            key = (id(self.tasks), len(self.tasks), self._gen)
            if self._index_key != key:
                idx: dict[str, tuple[list, list]] = {}
                for t in sorted(self.tasks, key=lambda t: (task_start(t), t["TaskId"])):
                    times, items = idx.setdefault(t["ProjectName"], ([], []))
                    times.append(task_start(t))
                    items.append(t)
                self._index, self._index_key = idx, key
            return self._index.get(project, ([], []))

    def _next_fault(self, action: str, params: dict) -> Fault | None:
        with self._lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            for f in self.faults:
                if f.take(action, params):
                    return f
        return None

    def _known_projects(self) -> list[str]:
        if self.projects is not None:
            return list(self.projects)
        return sorted({t["ProjectName"] for t in self.tasks})

    def _check_project(self, params) -> str:
        project = params.get("ProjectName")
        if not project:
            raise ApiError(400, "MissingProjectName", "ProjectName is mandatory for this action.")
        if self.projects is not None and project not in self.projects:
            raise ApiError(404, "ResourceNotFound", f"The specified project {project} does not exist.")
        return project

    # -- actions
    def _list_query(self, params: dict, times: list):
        """(lo, hi) of the project's start `times` by StartTimeRange and retention, plus the other ListTasks filters:
        (EndTimeRange start, end, TaskTypes, Status, Sort, Order); ApiError when one is invalid."""
        lo, hi = 0, len(times)
        cutoff = self._cutoff()
        srange = params.get("StartTimeRange") or {}
        s_start = range_bound(srange, "Start")
        s_end = range_bound(srange, "End")
        if cutoff is not None:
            s_start = max(s_start, cutoff) if s_start else cutoff
        if s_start:
            lo = bisect.bisect_left(times, s_start)
        if s_end:
            hi = bisect.bisect_right(times, s_end)
        erange = params.get("EndTimeRange") or {}
        e_start, e_end = range_bound(erange, "Start"), range_bound(erange, "End")
        types = params.get("TaskTypes")
        if types is not None and not isinstance(types, list):
            raise ApiError(400, "InvalidParameter.TaskTypes", "TaskTypes must be a JSON array.")
        status = params.get("Status")
        if status and status not in ("Running", "Succeeded", "Failed"):
            raise ApiError(400, "InvalidParameter.Status", f"Status {status} is not supported.")
        sort = params.get("Sort") or "TaskId"
        order = params.get("Order") or "asc"
        if sort not in ("TaskId", "StartTime", "EndTime") or order not in ("asc", "desc"):
            raise ApiError(400, "InvalidParameter.Sort", "Sort must be TaskId, StartTime or EndTime; "
                                                         "Order asc or desc.")
        return lo, hi, (e_start, e_end, types, status, sort, order)

    @staticmethod
    def _select(items: list[dict], filters) -> list[dict]:
        """The tasks of `items` that pass the filters, in the asked order."""
        e_start, e_end, types, status, sort, order = filters
        selected = []
        for t in items:
            if types and t["TaskType"] not in types:
                continue
            if status and t["Status"] != status:
                continue
            if e_start or e_end:
                et = parse_time(t["EndTime"])
                if et is None or (e_start and et < e_start) or (e_end and et > e_end):
                    continue
            selected.append(t)
        if sort == "TaskId":
            selected.sort(key=lambda t: t["TaskId"])
        elif sort == "EndTime":
            selected.sort(key=lambda t: (not t["EndTime"], parse_time(t["EndTime"]) or EPOCH, t["TaskId"]))
        if order == "desc":
            selected.reverse()
        return selected

    def list_tasks(self, params: dict) -> dict:
        project = self._check_project(params)
        max_results = int_param(params, "MaxResults", 100)
        if not 1 <= max_results <= 100:
            raise ApiError(400, "InvalidParameter.MaxResults", "MaxResults must be between 1 and 100.")
        offset = decode_token(params.get("NextToken") or "")
        times, items = self._project_index(project)
        lo, hi, filters = self._list_query(params, times)
        e_start, e_end, types, status, sort, order = filters
        # Pages of one listing share its selection (cheap paging for the benchmark); filters on mutable
        # fields (Status, EndTime) and orders by them are recomputed every time.
        cache_key = None
        if not status and not (e_start or e_end) and sort != "EndTime":
            cache_key = (self._index_key, project, lo, hi, tuple(types or ()), sort, order)
            with self._lock:
                selected = self._selections.get(cache_key)
        else:
            selected = None
        if selected is None:
            selected = self._select(items[lo:hi], filters)
            if cache_key is not None:
                with self._lock:
                    if len(self._selections) > 256:
                        self._selections.clear()
                    self._selections[cache_key] = selected
        page = selected[offset:offset + max_results]
        nxt = offset + len(page)
        if self.duplicate_across_pages and len(page) > 1:
            nxt -= 1  # the last task of this page opens the next page as well
        token = encode_token(nxt) if nxt < len(selected) and page else ""
        with_def = params.get("RequestDefinition") is True
        return {"RequestId": request_id(), "ProjectName": project, "MaxResults": max_results,
                "NextToken": token, "Tasks": [{k: v for k, v in task_info(t, with_def).items() if k not in self.omit_task_fields}
                          for t in page]}

    def get_task(self, params: dict) -> dict:
        project = self._check_project(params)
        task_id, task_type = params.get("TaskId"), params.get("TaskType")
        if not task_id or not task_type:
            raise ApiError(400, "MissingParameter", "TaskId and TaskType are mandatory.")
        cutoff = self._cutoff()
        for t in self.tasks:
            if t["ProjectName"] == project and t["TaskId"] == task_id and t["TaskType"] == task_type:
                if cutoff is not None and task_start(t) < cutoff:
                    break
                body = task_info(t, params.get("RequestDefinition") is True)
                body.pop("Progress", None)
                body.update(RequestId=request_id(), ProjectName=project, EventId=f"evt-{task_id}")
                return body
        raise ApiError(404, "ResourceNotFound", f"The specified task {task_id} does not exist.")

    def list_projects(self, params: dict) -> dict:
        max_results = int_param(params, "MaxResults", 100)
        if not 1 <= max_results <= 200:
            raise ApiError(400, "InvalidParameter.MaxResults", "MaxResults must be between 1 and 200.")
        names = [p for p in self._known_projects() if p.startswith(params.get("Prefix") or "")]
        offset = decode_token(params.get("NextToken") or "")
        page = names[offset:offset + max_results]
        nxt = offset + len(page)
        return {"RequestId": request_id(), "NextToken": encode_token(nxt) if nxt < len(names) else "",
                "Projects": [{"ProjectName": p, "CreateTime": "2024-01-01T00:00:00.000Z",
                              "UpdateTime": "2024-01-01T00:00:00.000Z", "Description": "", "Tags": []}
                             for p in page]}

    def create_image_splicing_task(self, params: dict) -> dict:
        project = self._check_project(params)
        if not params.get("Sources") or not params.get("TargetURI"):
            raise ApiError(400, "MissingParameter", "Sources and TargetURI are mandatory.")
        t = make_task(project, start=self.current_now(), status="Running", sources=params["Sources"],
                      target_uri=params["TargetURI"], image_format=params.get("ImageFormat") or "jpg",
                      tags=params.get("Tags"), user_data=params.get("UserData") or "")
        with self._lock:
            self.tasks.append(t)
        return {"RequestId": request_id(), "TaskId": t["TaskId"], "EventId": f"evt-{t['TaskId']}"}

    ACTIONS = {"ListTasks": list_tasks, "GetTask": get_task, "ListProjects": list_projects,
               "CreateImageSplicingTask": create_image_splicing_task}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A local IMM 2020-09-30 test server on 127.0.0.1 (synthetic data).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--synthetic-month", metavar="YYYY-MM", help="serve a synthetic month of splices")
    ap.add_argument("--project", default="demo-synthetic")
    ap.add_argument("--tasks", type=int, default=0, help="serve N ImageSplicing tasks spread over --days")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="latency per ListTasks page")
    ap.add_argument("--no-retention", action="store_true", help="list tasks older than 7 days too")
    args = ap.parse_args(argv)
    tasks: list[dict] = []
    now = None
    if args.synthetic_month:
        tasks += synthetic_month_tasks(args.synthetic_month, project=args.project)
        # "Now" is the end of that month, so its last 7 days are listed (or all with --no-retention).
        now = max(parse_time(t["StartTime"]) for t in tasks) + timedelta(minutes=5)
    if args.tasks:
        tasks += spread_tasks(args.tasks, days=args.days, project=args.project)
    srv = IMMServer(tasks, now=now, latency=args.latency_ms / 1000,
                    retention=None if args.no_retention else RETENTION, port=args.port,
                    record_requests=False).start()
    print(f"IMM test server on {srv.endpoint} (access key {srv.access_key_id!r}, {len(tasks)} synthetic tasks)",
          flush=True)
    srv.serve_until_interrupted()
    return 0


IMMServer.handler_class = SignedHandler
IMMServer.thread_name = "imm-server"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
