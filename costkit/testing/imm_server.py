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
import base64
import bisect
import hashlib
import hmac
import itertools
import json
import random
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

UTC = timezone.utc
RETENTION = timedelta(days=7)
TEST_ACCESS_KEY_ID = "test-ak"
TEST_ACCESS_KEY_SECRET = "test-secret"

# Parameters the SDK sends as compact JSON strings.
_JSON_PARAMS = {"TaskTypes", "StartTimeRange", "EndTimeRange", "Sources", "Notification",
                "CredentialConfig", "Tags", "Tag"}
_BOOL_PARAMS = {"RequestDefinition"}
_UNSIGNED_HEADERS = {"authorization", "content-length", "accept-encoding"}

FAULT_KINDS = {
    "throttle",         # 503 JSON + x-acs-retry-after (ms): ThrottlingException
    "throttling_user",  # 400 JSON Code=Throttling.User: ClientException
    "server_503",       # 503 JSON ServiceUnavailable, no retry-after: ServerException
    "html_502",         # 502 HTML gateway page: UnretryableException (not JSON)
    "drop",             # close the socket without a reply
    "error",            # any status/code/message given in the fault (e.g. 403 Forbidden, 429, 500)
    "truncated",        # 200 with a cut-off JSON body
    "short_body",       # Content-Length larger than what is sent, then the socket closes
    "slow",             # the reply comes after `delay` seconds (then served normally)
}


# ---------------------------------------------------------------------------------------------
# Task records (wire form, PascalCase, as ListTasks returns them plus ProjectName)

def fmt_time(dt: datetime | None) -> str:
    """UTC ISO 8601 with milliseconds, as IMM writes it."""
    if dt is None:
        return ""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text) -> datetime | None:
    if not text:
        return None
    t = str(text).strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


_ids = itertools.count(1)


def make_task(project: str, *, start: datetime, task_id: str | None = None, status: str = "Succeeded",
              duration: timedelta = timedelta(seconds=3), task_type: str = "ImageSplicing",
              sources: list[dict] | None = None, target_uri: str | None = None, image_format: str = "jpg",
              tags: dict | None = None, user_data: str = "", code: str = "", message: str = "",
              extra_definition: dict | None = None) -> dict:
    """A task as the server holds it: TaskInfo wire fields plus ProjectName."""
    if task_id is None:
        task_id = f"{task_type}-{uuid.UUID(int=random.Random(next(_ids)).getrandbits(128))}"
    if sources is None:
        sources = [{"URI": f"oss://bkt/in/{task_id}/a.jpg"}, {"URI": f"oss://bkt/in/{task_id}/b.jpg", "Rotate": 90}]
    if target_uri is None:
        target_uri = f"oss://bkt/out/{task_id}.{image_format}"
    definition = {"ProjectName": project}
    if task_type == "ImageSplicing":
        definition.update({"Sources": sources, "TargetURI": target_uri, "ImageFormat": image_format,
                           "Direction": "vertical", "ScaleType": "fit", "Quality": 80})
    definition.update(extra_definition or {})
    if tags:
        definition["Tags"] = tags
    if user_data:
        definition["UserData"] = user_data
    if status == "Failed" and not code:
        code, message = "InvalidParameter.SourceNotFound", "The source image does not exist."
    return {
        "ProjectName": project, "TaskId": task_id, "TaskType": task_type, "Status": status,
        "Code": code, "Message": message, "StartTime": fmt_time(start),
        "EndTime": "" if status == "Running" else fmt_time(start + duration),
        "Progress": 50 if status == "Running" else 100, "Tags": dict(tags or {}), "UserData": user_data,
        "TaskRequestDefinition": json.dumps(definition, separators=(",", ":")),
    }


def synthetic_month_tasks(month: str = "2025-08", *, project: str = "demo-synthetic", per_day: int = 120,
                          seed: int = 20250801) -> list[dict]:
    """A deterministic, clearly synthetic month of tasks (tags {"synthetic": "true"}).

    Mostly ImageSplicing (about 4 % Failed, a few Running near the end), plus some MediaConvert and
    ImageToPDF tasks that a collector must skip. Days follow Asia/Shanghai (the billing month).
    """
    from zoneinfo import ZoneInfo

    year, mon = (int(x) for x in month.split("-"))
    sh = ZoneInfo("Asia/Shanghai")
    start = datetime(year, mon, 1, tzinfo=sh)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=sh)
    rng = random.Random(f"{seed}-{month}-{project}")
    tasks = []
    day = start
    n = 0
    while day < end:
        weekday_factor = 0.6 if day.weekday() >= 5 else 1.0
        count = int(per_day * weekday_factor * rng.uniform(0.8, 1.2))
        for _ in range(count):
            n += 1
            # Busier in Shanghai working hours.
            hour = rng.choices(range(24), weights=[1] * 8 + [4] * 10 + [2] * 6)[0]
            t = day + timedelta(hours=hour, seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
            if t >= end:
                continue
            kind = rng.random()
            task_type = "ImageSplicing" if kind < 0.88 else ("MediaConvert" if kind < 0.95 else "ImageToPDF")
            status = "Failed" if rng.random() < 0.04 else "Succeeded"
            if t > end - timedelta(minutes=20) and rng.random() < 0.5:
                status = "Running"
            images = rng.choice([2, 2, 3, 4, 4, 6, 8, 10])
            fmt = rng.choice(["jpg", "jpg", "jpg", "png", "webp"])
            tid = f"{task_type}-synthetic-{month}-{n:06d}"
            sources = [{"URI": f"oss://demo-synthetic-bucket/in/{tid}/{i}.jpg",
                        **({"Rotate": 90} if i == 1 and rng.random() < 0.2 else {})} for i in range(images)]
            tasks.append(make_task(
                project, start=t.astimezone(UTC), task_id=tid, status=status, task_type=task_type,
                duration=timedelta(milliseconds=rng.randrange(800, 9000)), sources=sources,
                target_uri=f"oss://demo-synthetic-bucket/out/{tid}.{fmt}", image_format=fmt,
                tags={"synthetic": "true", "team": rng.choice(["catalog", "ads", "ugc"])},
                user_data=json.dumps({"synthetic": True, "n": n})))
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)
    return tasks


# ---------------------------------------------------------------------------------------------
# Faults

@dataclass
class Fault:
    kind: str
    times: int | None = 1          # how many requests it hits (None: all)
    skip: int = 0                  # matching requests to let through first
    action: str | None = "ListTasks"
    retry_after_ms: int = 10
    status: int = 400
    code: str = ""
    message: str = ""
    match: object = None           # optional predicate on the decoded params
    delay: float = 0.0             # for "slow"
    seen: int = 0
    fired: int = 0

    def take(self, action: str, params: dict) -> bool:
        if self.action is not None and action != self.action:
            return False
        if self.match is not None and not self.match(params):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# ---------------------------------------------------------------------------------------------
# Server

class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 for one handler class; subclasses set `handler_class` and
    `thread_name`. Keep-alive connections are tracked in `_conns` so `stop()` can close them."""

    handler_class: type = None
    thread_name = "loopback-server"

    def _init_server(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._stopped = False
        self._conns: set = set()
        self._thread: threading.Thread | None = None

    def start(self):
        server = self

        class Handler(self.handler_class):
            imm = server  # the handler reads keys, faults and connection bookkeeping from here

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._stopped = False
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None and not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()
            # Keep-alive connections outlive serve_forever: close them so a stopped server answers nothing.
            with self._lock:
                conns, self._conns = list(self._conns), set()
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def serve_until_interrupted(self) -> None:
        """Block until Ctrl-C (script use), then stop."""
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
                and (cutoff is None or _start(t) >= cutoff)]

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
                for t in sorted(self.tasks, key=lambda t: (_start(t), t["TaskId"])):
                    times, items = idx.setdefault(t["ProjectName"], ([], []))
                    times.append(_start(t))
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
    def list_tasks(self, params: dict) -> dict:
        project = self._check_project(params)
        max_results = _int_param(params, "MaxResults", 100)
        if not 1 <= max_results <= 100:
            raise ApiError(400, "InvalidParameter.MaxResults", "MaxResults must be between 1 and 100.")
        offset = _decode_token(params.get("NextToken") or "")
        times, items = self._project_index(project)
        lo, hi = 0, len(items)
        cutoff = self._cutoff()
        srange = params.get("StartTimeRange") or {}
        s_start = _range_bound(srange, "Start")
        s_end = _range_bound(srange, "End")
        if cutoff is not None:
            s_start = max(s_start, cutoff) if s_start else cutoff
        if s_start:
            lo = bisect.bisect_left(times, s_start)
        if s_end:
            hi = bisect.bisect_right(times, s_end)
        erange = params.get("EndTimeRange") or {}
        e_start, e_end = _range_bound(erange, "Start"), _range_bound(erange, "End")
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
            selected = []
            for t in items[lo:hi]:
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
                selected.sort(key=lambda t: (not t["EndTime"], parse_time(t["EndTime"]) or _EPOCH, t["TaskId"]))
            if order == "desc":
                selected.reverse()
            if cache_key is not None:
                with self._lock:
                    if len(self._selections) > 256:
                        self._selections.clear()
                    self._selections[cache_key] = selected
        page = selected[offset:offset + max_results]
        nxt = offset + len(page)
        if self.duplicate_across_pages and len(page) > 1:
            nxt -= 1  # the last task of this page opens the next page as well
        token = _encode_token(nxt) if nxt < len(selected) and page else ""
        with_def = params.get("RequestDefinition") is True
        return {"RequestId": _request_id(), "ProjectName": project, "MaxResults": max_results,
                "NextToken": token, "Tasks": [{k: v for k, v in _task_info(t, with_def).items() if k not in self.omit_task_fields}
                          for t in page]}

    def get_task(self, params: dict) -> dict:
        project = self._check_project(params)
        task_id, task_type = params.get("TaskId"), params.get("TaskType")
        if not task_id or not task_type:
            raise ApiError(400, "MissingParameter", "TaskId and TaskType are mandatory.")
        cutoff = self._cutoff()
        for t in self.tasks:
            if t["ProjectName"] == project and t["TaskId"] == task_id and t["TaskType"] == task_type:
                if cutoff is not None and _start(t) < cutoff:
                    break
                body = _task_info(t, params.get("RequestDefinition") is True)
                body.pop("Progress", None)
                body.update(RequestId=_request_id(), ProjectName=project, EventId=f"evt-{task_id}")
                return body
        raise ApiError(404, "ResourceNotFound", f"The specified task {task_id} does not exist.")

    def list_projects(self, params: dict) -> dict:
        max_results = _int_param(params, "MaxResults", 100)
        if not 1 <= max_results <= 200:
            raise ApiError(400, "InvalidParameter.MaxResults", "MaxResults must be between 1 and 200.")
        names = [p for p in self._known_projects() if p.startswith(params.get("Prefix") or "")]
        offset = _decode_token(params.get("NextToken") or "")
        page = names[offset:offset + max_results]
        nxt = offset + len(page)
        return {"RequestId": _request_id(), "NextToken": _encode_token(nxt) if nxt < len(names) else "",
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
        return {"RequestId": _request_id(), "TaskId": t["TaskId"], "EventId": f"evt-{t['TaskId']}"}

    ACTIONS = {"ListTasks": list_tasks, "GetTask": get_task, "ListProjects": list_projects,
               "CreateImageSplicingTask": create_image_splicing_task}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _start(t: dict) -> datetime:
    return parse_time(t.get("StartTime")) or _EPOCH


def _task_info(t: dict, with_definition: bool) -> dict:
    out = {k: t.get(k) for k in ("TaskId", "TaskType", "Status", "Code", "Message", "StartTime", "EndTime",
                                 "Progress", "Tags", "UserData")}
    if with_definition:
        out["TaskRequestDefinition"] = t.get("TaskRequestDefinition", "")
    return out


def _int_param(params, name, default):
    v = params.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ApiError(400, f"InvalidParameter.{name}", f"{name} must be an integer.")


def _range_bound(rng, key):
    v = rng.get(key) if isinstance(rng, dict) else None
    if not v:
        return None
    try:
        return parse_time(v)
    except ValueError:
        raise ApiError(400, "InvalidParameter.TimeRange", f"{key} is not an ISO 8601 time: {v}")


def _encode_token(offset: int, prefix: str = "o") -> str:
    """An opaque NextToken for a listing offset."""
    return base64.urlsafe_b64encode(f"{prefix}:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str, prefix: str = "o") -> int:
    """The offset in a NextToken from `_encode_token` (an empty token is the first page)."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        assert text.startswith(prefix + ":")
        return int(text[len(prefix) + 1:])
    except Exception:
        raise ApiError(400, "InvalidParameter.NextToken", "The NextToken is invalid.")


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    imm: IMMServer

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.imm._lock:
            self.imm._conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        with self.imm._lock:
            self.imm._conns.discard(self.connection)

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        raw = dict(pairs)
        action = self.headers.get("x-acs-action") or raw.get("Action") or ""
        imm = self.imm
        try:
            fault = imm._next_fault(action, _decode_params_lenient(raw))
            if fault is not None and self._fault(fault):
                return
            self._verify(url.path or "/", pairs, body)
            params = _decode_params(raw)
            if imm.record_requests:
                with imm._lock:
                    imm.requests.append((action, params))
            handler = IMMServer.ACTIONS.get(action)
            if handler is None:
                raise ApiError(400, "InvalidAction.NotFound", f"Specified api {action} is not found.")
            if action == "ListTasks" and imm.latency:
                delay = imm.latency(params) if callable(imm.latency) else imm.latency
                if delay:
                    time.sleep(delay)
            self._json(200, handler(imm, params))
        except ApiError as e:
            self._error(e.status, e.code, e.message, e.headers)

    # -- replies
    def _json(self, status, obj, headers=None):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, code, message, headers=None):
        rid = _request_id()
        self._json(status, {"RequestId": rid, "HostId": "imm.127.0.0.1", "Code": code, "Message": message,
                            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&requestId={rid}"},
                   headers)

    def _fault(self, f: Fault) -> bool:
        if f.kind == "throttle":
            self._error(503, "Throttling", "Request was denied due to request throttling.",
                        {"x-acs-retry-after": str(f.retry_after_ms)})
        elif f.kind == "throttling_user":
            self._error(400, "Throttling.User", "Request was denied due to user flow control.")
        elif f.kind == "server_503":
            self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the "
                                                   "server.")
        elif f.kind == "html_502":
            page = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                    b"</h1></center><hr><center>Tengine</center></body></html>")
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif f.kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif f.kind == "error":
            self._error(f.status, f.code or "Error", f.message or "Injected error.")
        elif f.kind == "truncated":
            data = b'{"RequestId":"X","NextToken":"","Tasks":[{"TaskId":"ImageSpl'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif f.kind == "short_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b'{"RequestId":"X","Tasks":[')
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif f.kind == "slow":
            time.sleep(f.delay)
            return False
        return True

    # -- signature
    def _verify(self, path, pairs, body):
        imm = self.imm
        if not imm.verify_signature:
            return
        auth = self.headers.get("Authorization")
        if auth:
            return self._verify_acs3(auth, path, pairs, body)
        q = dict(pairs)
        if "Signature" in q:
            return self._verify_v2(q)
        raise ApiError(400, "MissingAuthorization", "The request is not signed (no Authorization header).")

    def _verify_acs3(self, auth, path, pairs, body):
        imm = self.imm
        try:
            algo, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            ak, signed, sig = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
        except (ValueError, KeyError):
            raise ApiError(400, "InvalidAuthorization", "The Authorization header is malformed.")
        if algo != "ACS3-HMAC-SHA256":
            raise ApiError(400, "InvalidAuthorization", f"Unsupported signature algorithm {algo}.")
        if ak != imm.access_key_id:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        names = signed.split(";")
        if any(n.lower() in _UNSIGNED_HEADERS for n in names) or "x-acs-date" not in names:
            raise ApiError(400, "InvalidAuthorization", "SignedHeaders is invalid.")
        canon_headers = ""
        for n in sorted(names):
            values = self.headers.get_all(n) or []
            canon_headers += f"{n}:{','.join(sorted(v.strip() for v in values))}\n"
        canon_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))
        payload = hashlib.sha256(body).hexdigest()
        if (self.headers.get("x-acs-content-sha256") or payload) != payload:
            raise ApiError(400, "InvalidContentSha256", "x-acs-content-sha256 does not match the body.")
        canonical = f"{self.command}\n{path}\n{canon_query}\n{canon_headers}\n{signed}\n{payload}"
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expect = hmac.new(imm.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expect, sig):
            raise ApiError(400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun "
                                                         "standards.")

    def _verify_v2(self, q):
        imm = self.imm
        if q.get("AccessKeyId") != imm.access_key_id:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        signed = {k: v for k, v in q.items() if k != "Signature"}
        cq = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(signed.items()))
        to_sign = f"{self.command}&%2F&{quote_plus(cq, safe='~')}"
        digest = hmac.new((imm.access_key_secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), q["Signature"]):
            raise ApiError(400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun "
                                                         "standards.")


def _decode_params(raw: dict) -> dict:
    params = {}
    for k, v in raw.items():
        if k in _JSON_PARAMS and v != "":
            try:
                v = json.loads(v)
            except ValueError:
                raise ApiError(400, f"InvalidParameter.{k}", f"{k} is not valid JSON.")
        elif k in _BOOL_PARAMS:
            if v.lower() not in ("true", "false"):
                raise ApiError(400, f"InvalidParameter.{k}", f"{k} must be true or false.")
            v = v.lower() == "true"
        params[k] = v
    return params


def _decode_params_lenient(raw: dict) -> dict:
    try:
        return _decode_params(raw)
    except ApiError:
        return dict(raw)


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


def spread_tasks(n: int, *, days: float, project: str = "bench", end: datetime | None = None,
                 seed: int = 7) -> list[dict]:
    """n ImageSplicing tasks spread evenly over the `days` before `end` (default: now - 1 min)."""
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    span = timedelta(days=days).total_seconds()
    rng = random.Random(seed)
    return [make_task(project, start=end - timedelta(seconds=span * (i + rng.random()) / n),
                      task_id=f"ImageSplicing-{seed}-{i:07d}", status="Failed" if i % 50 == 0 else "Succeeded")
            for i in range(n)]


IMMServer.handler_class = _Handler
IMMServer.thread_name = "imm-server"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
