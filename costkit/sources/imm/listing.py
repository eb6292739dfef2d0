"""Listing IMM: ListProjects, and the pages of ListTasks for one time slice, as task records."""
from __future__ import annotations

from dataclasses import dataclass, field

from costkit.core.errors import BadInput, RuntimeFailure, one_line
from costkit.sources.imm.client import Restart
from costkit.sources.imm.plan import BOUNDARY_PAD, Plan, fmt
from costkit.sources.retry import BadPage

TASK_TYPE = "ImageSplicing"
PAGE_SIZE = 100


@dataclass
class Page:
    """One ListTasks page on its way to the writer; a slice's last page has `last`, a failed slice sends
    one with `error`."""

    plan: Plan
    index: int
    records: list
    last: bool
    error: BaseException | None = None
    listed: int = 0               # tasks on the page, before filtering
    skipped: int = 0              # other task types
    bad: list = field(default_factory=list)


def list_projects(client, caller) -> list[str]:
    """The region's project names (ListProjects, every page), in the order listed."""
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


def list_tasks_body(client, request) -> dict:
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


def fetch_slice(client, caller, region, plan: Plan, index: int, put) -> None:
    """List slice `index` of `plan` page by page, `put`ting each Page (the last one with `last`)."""
    from alibabacloud_imm20200930 import models as m

    start, end = plan.slices[index]
    what = f"ListTasks {plan.project} {fmt(start)}..{fmt(end)}"
    restarts = 0
    while True:
        token, seen = "", set()
        try:
            while True:
                req = m.ListTasksRequest(
                    project_name=plan.project, task_types=[TASK_TYPE], request_definition=True,
                    max_results=PAGE_SIZE, next_token=token, sort="StartTime", order="asc",
                    start_time_range=m.TimeRange(start=fmt(start - BOUNDARY_PAD), end=fmt(end + BOUNDARY_PAD)))
                body = caller(what, list_tasks_body, client(), req)
                token = body.get("NextToken") or ""
                tasks = [t for t in (body.get("Tasks") or []) if isinstance(t, dict)]
                if token and token in seen:
                    raise RuntimeFailure(f"{what}: the server returned the same NextToken twice")
                seen.add(token)
                put(normalise(region, plan, index, tasks, not token))
                if not token:
                    return
        except Restart as e:
            # An expired or rejected NextToken: list the slice again (the upsert absorbs repeats).
            restarts += 1
            if restarts > 3:
                raise RuntimeFailure(f"{what}: the server kept rejecting NextToken: {e}") from None


def normalise(region, plan: Plan, index: int, tasks: list, last: bool) -> Page:
    """Tasks of one page as records (in the worker thread, off the writer's path)."""
    from costkit.sources.imm.taskrecord import from_api_task

    page = Page(plan, index, [], last, listed=len(tasks))
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
