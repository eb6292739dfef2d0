"""One IMM task as a normalised record: what the store keeps, whatever the task came from.

Sources of a task: a ListTasks `Tasks[]` item, a GetTask body (PascalCase wire names, which is also what
the SDK's `to_map()` gives), the `content` of an MNS/RocketMQ notification envelope (an escaped JSON
string) or the `data` object of an EventBridge CloudEvent. See ../shared/reference/imm-api.md sections 3,
4 and 10.

A record is a plain dict with the keys in `RECORD_KEYS`. Times are timezone-aware UTC datetimes or None.
Malformed input raises `costkit.errors.BadInput`; the caller adds the file and line.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from costkit.core.errors import BadInput
from costkit.core.timeutil import YEAR_MAX, YEAR_MIN

UTC = timezone.utc

# Kinds of task dump `costkit import` reads (detected per file, or forced with --kind).
DUMP_KINDS = ("listtasks", "gettask", "jsonl", "mns", "eventbridge")
STATUSES = ("Running", "Succeeded", "Failed")
FINAL_STATUSES = ("Succeeded", "Failed")
_STATUS_BY_LOWER = {x.lower(): x for x in STATUSES}
ORIGINS = ("listtasks", "notification", "import")
SPLICING = "ImageSplicing"

RECORD_KEYS = ("region", "project", "task_id", "task_type", "status", "code", "message", "start_time",
               "end_time", "sources", "target_uri", "image_format", "options", "tags", "user_data", "origin")

# Splicing options other than Sources, TargetURI and ImageFormat: wire name -> (record key, type).
OPTION_FIELDS = {
    "Direction": ("direction", str),
    "ScaleType": ("scale_type", str),
    "Align": ("align", int),
    "Padding": ("padding", int),
    "Margin": ("margin", int),
    "BackgroundColor": ("background_color", str),
    "Quality": ("quality", int),
}
OPTION_KEYS = tuple(k for k, _ in OPTION_FIELDS.values())

# The store keeps these options and Rotate as INTEGER (32-bit); a value past it is bad input, not a crash.
INT_MIN, INT_MAX = -2**31, 2**31 - 1
# A text field longer than this is not an IMM task (UserData is at most 2,048 bytes; URIs about 1 KB).
MAX_TEXT = 64 * 1024

_EPOCH_DIGITS = re.compile(r"^\d{10,16}$")
_SUBJECT = re.compile(r"^acs:imm:(?P<region>[^:]*):(?P<uid>[^:]*):(?P<project>[^/]*)/imm:Task:(?P<type>.*)$")


class RecordError(BadInput):
    """A malformed task record; `reason` is the message without the location (for --skip-bad lists)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_time(value, *, field: str) -> datetime | None:
    """Parse an IMM time leniently; return an aware UTC datetime, or None when missing or empty.

    Accepts ISO 8601 with `Z` or an offset (`+08:00`, `+0800`), any fraction length (`.36Z`,
    nanoseconds are cut to microseconds), epoch milliseconds (number or digit string, as in notification
    `time`) and epoch seconds. IMM documents its times as UTC, so an ISO time without an offset is UTC.
    """
    if value is None:
        return None
    if type(value) is str and value.endswith("Z") and len(value) > 10:
        # The common IMM form, e.g. 2024-08-20T07:03:07.36Z: fromisoformat reads it directly.
        try:
            dt = datetime.fromisoformat(value).astimezone(UTC)
            if YEAR_MIN <= dt.year <= YEAR_MAX:
                return dt
        except (ValueError, OverflowError):
            pass  # the general path below gives the error message
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool):
        raise RecordError(f"{field}: not a time: {value!r}")
    elif isinstance(value, (int, float)):
        dt = _from_epoch(value, field)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _EPOCH_DIGITS.match(text):
            dt = _from_epoch(int(text), field)
        else:
            if text[-1] in "Zz":
                text = text[:-1] + "+00:00"
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise RecordError(f"{field}: not an ISO 8601 time: {value!r}") from None
    else:
        raise RecordError(f"{field}: not a time: {value!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        dt = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        dt = None
    if dt is None or not YEAR_MIN <= dt.year <= YEAR_MAX:
        raise RecordError(f"{field}: {value!r} is outside the years {YEAR_MIN}..{YEAR_MAX}")
    return dt


def _from_epoch(n, field: str) -> datetime:
    # 13 digits and more are milliseconds (notification `time`); fewer are seconds.
    try:
        seconds = n / 1000 if abs(n) >= 1e11 else n
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"{field}: epoch time out of range: {n!r}") from None


def _text(value, field: str) -> str | None:
    """A string field; empty means absent (IMM sends "" for an unset Code, Message or UserData)."""
    if type(value) is str:  # the common case, first: this runs ~15 times per task
        return value or None
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise RecordError(f"{field}: expected a string, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    return text if text != "" else None


def _int(value, field: str) -> int | None:
    if type(value) is int and INT_MIN <= value <= INT_MAX:
        return value
    n = _int_any(value, field)
    if n is not None and not INT_MIN <= n <= INT_MAX:
        raise RecordError(f"{field}: {n} is out of range ({INT_MIN}..{INT_MAX}, a 32-bit integer)")
    return n


def _int_any(value, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,30}\s*", value):
        return int(value)
    raise RecordError(f"{field}: expected an integer, got {value!r}")


def _json_value(value, field: str):
    """A value that may arrive as a JSON string (request definitions, Tags in some dumps)."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as e:
            raise RecordError(f"{field}: not valid JSON ({e.msg} at char {e.pos})") from None
    return value


def _sources(value) -> list[dict]:
    value = _json_value(value, "Sources")
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"Sources: expected a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordError(f"Sources[{i}]: expected an object with URI, got {type(item).__name__}")
        uri = item.get("URI", item.get("Uri", item.get("uri")))
        if not isinstance(uri, str) or not uri.strip():
            raise RecordError(f"Sources[{i}].URI: missing or empty")
        rotate = _int(item.get("Rotate", item.get("rotate")), f"Sources[{i}].Rotate")
        out.append({"uri": uri, "rotate": rotate})
    return out


def _tags(value) -> dict:
    value = _json_value(value, "Tags")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"Tags: expected an object, got {type(value).__name__}")
    return dict(value)


def _user_data(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    # Some dumps decode UserData; keep it as the compact JSON text IMM would echo back.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def task_type_of(task: dict) -> str | None:
    """The task's type: TaskType, or the prefix of a TaskId such as `ImageSplicing-…`; None if unknown."""
    t = task.get("TaskType")
    if isinstance(t, str) and t:
        return t
    tid = task.get("TaskId")
    if isinstance(tid, str) and "-" in tid:
        return tid.split("-", 1)[0] or None
    return None


def from_api_task(task: dict, *, region: str, project: str, origin: str) -> dict:
    """Normalise one task (ListTasks item, GetTask body, notification content); return a record dict.

    The splicing inputs come from `TaskRequestDefinition` (a JSON string, or an already decoded object);
    when it is absent they are read from the task itself, where notifications presumably carry them.
    """
    if not isinstance(task, dict):
        raise RecordError(f"expected a task object, got {type(task).__name__}")
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    task_id = task.get("TaskId")
    if not isinstance(task_id, str) or not task_id.strip():
        raise RecordError("TaskId: missing or empty")
    if not region or not isinstance(region, str):
        raise RecordError("region: missing")
    if not project or not isinstance(project, str):
        raise RecordError("ProjectName: missing")
    task_type = task_type_of(task)
    if task_type is None:
        raise RecordError("TaskType: missing, and the TaskId has no type prefix")
    status = task.get("Status")
    if status not in STATUSES:
        # Tolerate case only ("succeeded"); anything else is not a status IMM documents.
        status = _STATUS_BY_LOWER.get(status.strip().lower()) if isinstance(status, str) else None
        if status is None:
            raise RecordError(f"Status: {task.get('Status')!r} is not one of {', '.join(STATUSES)}")

    definition = _json_value(task.get("TaskRequestDefinition"), "TaskRequestDefinition")
    if definition is None:
        definition = task
    elif not isinstance(definition, dict):
        raise RecordError(f"TaskRequestDefinition: expected an object, got {type(definition).__name__}")

    options = {}
    for wire, (key, kind) in OPTION_FIELDS.items():
        raw = definition.get(wire)
        options[key] = _int(raw, wire) if kind is int else _text(raw, wire)

    record = {
        "region": region,
        "project": project,
        "task_id": task_id,
        "task_type": task_type,
        "status": status,
        "code": _text(task.get("Code"), "Code"),
        "message": _text(task.get("Message"), "Message"),
        "start_time": parse_time(task.get("StartTime"), field="StartTime"),
        "end_time": parse_time(task.get("EndTime"), field="EndTime"),
        "sources": _sources(definition.get("Sources")),
        "target_uri": _text(definition.get("TargetURI"), "TargetURI"),
        "image_format": _text(definition.get("ImageFormat"), "ImageFormat"),
        "options": options,
        "tags": _tags(task.get("Tags")),
        "user_data": _user_data(task.get("UserData")),
        "origin": origin,
    }
    _check_texts(record)
    return record


def _check_texts(record: dict) -> None:
    """Every text of a record is storable: valid Unicode (a lone surrogate such as "\\ud83d", half an emoji
    cut by a tool, cannot be written as UTF-8) and at most MAX_TEXT characters. Raises RecordError."""
    wire = {"region": "region", "project": "ProjectName", "task_id": "TaskId", "task_type": "TaskType",
            "code": "Code", "message": "Message", "target_uri": "TargetURI", "image_format": "ImageFormat",
            "user_data": "UserData"}
    texts = [(name, record[k]) for k, name in wire.items() if record[k] is not None]
    texts += [(f"Sources[{i}].URI", src["uri"]) for i, src in enumerate(record["sources"])]
    texts += [(w, record["options"][k]) for w, (k, _) in OPTION_FIELDS.items() if isinstance(record["options"][k], str)]
    if record["tags"]:
        texts.append(("Tags", json.dumps(record["tags"], ensure_ascii=False)))
    joined = "".join(t for _, t in texts)
    if joined.isascii() and len(joined) <= MAX_TEXT:
        return  # the common case: one check per record
    for name, text in texts:
        if len(text) > MAX_TEXT:
            raise RecordError(f"{name}: {len(text)} characters, more than {MAX_TEXT}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise RecordError(f"{name}: not valid Unicode: a lone surrogate {text[e.start]!r} at character "
                              f"{e.start} (an emoji cut in half?)") from None


# --- notifications -------------------------------------------------------------------------------

def parse_subject(subject) -> dict:
    """Split `acs:imm:<region>:<uid>:<project>/imm:Task:<TaskType>`; return {region, project, task_type}
    (values None when the subject is absent or shaped otherwise)."""
    m = _SUBJECT.match(subject) if isinstance(subject, str) else None
    if not m:
        return {"region": None, "project": None, "task_type": None}
    return {"region": m["region"] or None, "project": m["project"] or None, "task_type": m["type"] or None}


def is_mns_envelope(obj) -> bool:
    """True for an MNS/RocketMQ task notification envelope (a `content` field next to `subject`/`type`)."""
    return isinstance(obj, dict) and "content" in obj and ("subject" in obj or "type" in obj)


def is_eventbridge_event(obj) -> bool:
    """True for an EventBridge CloudEvent (`data` next to `specversion` or the aliyun* fields)."""
    return isinstance(obj, dict) and "data" in obj and (
        "specversion" in obj or "aliyunregionid" in obj or "aliyuneventbusname" in obj)


def _type_from_event_type(value) -> str | None:
    if isinstance(value, str) and value.startswith("imm:Task:"):
        return value[len("imm:Task:"):] or None
    return None


def mns_task(envelope: dict) -> dict:
    """The task object inside an MNS/RocketMQ envelope: `content` decoded a second time."""
    if not isinstance(envelope, dict):
        raise RecordError(f"expected a notification envelope object, got {type(envelope).__name__}")
    content = envelope.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError as e:
            raise RecordError(f"content: not an escaped JSON object ({e.msg} at char {e.pos})") from None
    if not isinstance(content, dict):
        raise RecordError("content: expected a task object (an escaped JSON string)")
    return content


def notification_task_type(obj: dict) -> str | None:
    """The task type that a notification (MNS/RocketMQ envelope or EventBridge event) is about."""
    inner = obj.get("data") if is_eventbridge_event(obj) else None
    if is_mns_envelope(obj):
        try:
            inner = mns_task(obj)
        except BadInput:
            inner = None
    if isinstance(inner, dict):
        t = task_type_of(inner)
        if t:
            return t
    return _type_from_event_type(obj.get("type")) or parse_subject(obj.get("subject"))["task_type"]


def _notification_record(task: dict, envelope: dict, region, *, default_region) -> dict:
    subject = parse_subject(envelope.get("subject"))
    project = task.get("ProjectName") or subject["project"]
    region = region or subject["region"] or default_region
    if not region:
        raise RecordError("region: not in the notification subject; pass --region")
    if "TaskType" not in task:
        t = _type_from_event_type(envelope.get("type")) or subject["task_type"]
        if t:
            task = {**task, "TaskType": t}
    return from_api_task(task, region=region, project=project, origin="notification")


def from_mns_envelope(envelope: dict, *, default_region: str | None = None) -> dict:
    """Normalise an MNS/RocketMQ notification; return a record (origin "notification").

    Project: content ProjectName, else the subject. Region: the subject, else `default_region`.
    """
    return _notification_record(mns_task(envelope), envelope, None, default_region=default_region)


def from_eventbridge_event(event: dict, *, default_region: str | None = None) -> dict:
    """Normalise an EventBridge CloudEvent; return a record (origin "notification").

    Region: `aliyunregionid`, else the subject, else `default_region`. Project: data ProjectName or subject.
    """
    if not isinstance(event, dict):
        raise RecordError(f"expected an EventBridge event object, got {type(event).__name__}")
    data = event.get("data")
    if isinstance(data, str):  # tolerate a re-serialised event
        data = _json_value(data, "data")
    if not isinstance(data, dict):
        raise RecordError("data: expected a task object")
    return _notification_record(data, event, event.get("aliyunregionid") or None, default_region=default_region)
