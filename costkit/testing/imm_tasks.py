"""Task records of the local IMM server (wire form, PascalCase, as ListTasks returns them plus ProjectName)."""
from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def task_start(t: dict) -> datetime:
    """A task's StartTime (the epoch when it has none)."""
    return parse_time(t.get("StartTime")) or EPOCH


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


def task_info(t: dict, with_definition: bool) -> dict:
    """The TaskInfo a listing returns for a held task (TaskRequestDefinition only when asked for)."""
    out = {k: t.get(k) for k in ("TaskId", "TaskType", "Status", "Code", "Message", "StartTime", "EndTime",
                                 "Progress", "Tags", "UserData")}
    if with_definition:
        out["TaskRequestDefinition"] = t.get("TaskRequestDefinition", "")
    return out
