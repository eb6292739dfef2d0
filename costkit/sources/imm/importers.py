"""Import task dumps and notifications into the store (`costkit import`).

Kinds, detected per file unless forced:
- `listtasks`: a ListTasks response, raw API JSON `{RequestId, ProjectName, Tasks: [...]}` or the SDK's
  `to_map()` of the response, `{"headers": ..., "statusCode": ..., "body": {...}}`;
- `gettask`: a GetTask response (raw or `to_map()`);
- `jsonl`: JSON Lines, one task object per line (ListTasks items or GetTask bodies, which may add
  `region`/`project` fields); a line may also hold a whole ListTasks page, an envelope or an event;
- `mns`: MNS/RocketMQ notification envelopes (`content` is an escaped JSON string), also inside an MNS
  HTTP push in JSON format (`Message`, plain or base64);
- `eventbridge`: EventBridge CloudEvents (`data` is an object).
A file may hold one object, a JSON array of them, or JSON Lines.

Only ImageSplicing tasks are stored; other task types are skipped and counted. Dumps carry no region:
it comes from a `region` field or `--region`. Every file is parsed and checked before anything is
stored, so a bad record (named by file and line, or by index in an array) fails the import with nothing
stored; with `skip_bad` the bad records are skipped and listed instead. Each file is stored in one
transaction, with a row in the `imports` table (the span of its task start times counts as coverage).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from costkit.core.errors import BadInput, one_line
from costkit.sources.imm.taskrecord import (
    SPLICING,
    from_api_task,
    from_eventbridge_event,
    from_mns_envelope,
    is_eventbridge_event,
    is_mns_envelope,
    notification_task_type,
    task_type_of,
)

from costkit.sources.imm.taskrecord import DUMP_KINDS as KINDS  # noqa: E402  (the CLI reads the kinds without loading pandas)


@dataclass
class BadRecord:
    """A record skipped with --skip-bad: the file, where in it ("line 7", "Tasks[3]", "[2]"), and why."""

    file: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.reason}"


@dataclass
class FileImport:
    """One parsed file: its kind, the ImageSplicing records, what was skipped, and what was stored."""

    file: str
    kind: str
    records: list = field(default_factory=list)
    skipped_other_types: int = 0
    bad: list = field(default_factory=list)
    counts: object = None         # the store's UpsertCounts, once `costkit.store.ingest` stored the file
    warnings: list = field(default_factory=list)


# A dump larger than this is refused before it is read (JSON is parsed in memory).
MAX_DUMP_BYTES = 2 * 1024**3


class _Bad(Exception):
    """A bad record inside a file; carries the location (line number or index text)."""

    def __init__(self, reason: str, *, line: int | None = None, where: str | None = None):
        super().__init__(reason)
        self.reason, self.line, self.where = reason, line, where


def _unwrap_sdk(doc):
    """Unwrap what a tool put around the object; other values unchanged.

    - an SDK `to_map()` response ({headers, statusCode, body}) becomes its body;
    - an MNS HTTP push in JSON format ({TopicName, MessageId, Message, ...}) becomes the envelope in
      `Message` (JSON text, or base64 of it when the topic encodes message bodies).
    """
    if isinstance(doc, dict) and isinstance(doc.get("body"), dict) and ("statusCode" in doc or "headers" in doc):
        return doc["body"]
    if isinstance(doc, dict) and isinstance(doc.get("Message"), str) and "TopicName" in doc:
        text = doc["Message"]
        for decode in (lambda t: t, lambda t: base64.b64decode(t, validate=True).decode("utf-8")):
            try:
                inner = json.loads(decode(text))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                continue
            if isinstance(inner, dict):
                return inner
    return doc


def _item_kind(obj) -> str | None:
    """What one JSON object is: "listtasks" (a page), "task", "mns", "eventbridge"; None if unknown."""
    obj = _unwrap_sdk(obj)
    if not isinstance(obj, dict):
        return None
    if is_mns_envelope(obj):
        return "mns"
    if is_eventbridge_event(obj):
        return "eventbridge"
    if isinstance(obj.get("Tasks"), list):
        return "listtasks"
    if "TaskId" in obj:
        return "task"
    return None


def _first(obj: dict, *names):
    for n in names:
        v = obj.get(n)
        if isinstance(v, str) and v.strip():
            return v
    return None


class _Parser:
    """Parses one file into records; collects skips and bad records."""

    def __init__(self, path, kind: str | None, region: str | None, skip_bad: bool):
        self.path, self.kind, self.region, self.skip_bad = str(path), kind, region, skip_bad
        self.out = FileImport(file=self.path, kind=kind or "?")

    # -- errors --
    def bad(self, reason: str, *, line=None, where=None) -> None:
        if not self.skip_bad:
            raise BadInput(f"{where}: {reason}" if where else reason, path=self.path, line=line)
        place = " ".join(p for p in (f"line {line}" if line is not None else None, where) if p)
        self.out.bad.append(BadRecord(self.path, place or "?", reason))

    # -- records --
    def keep(self, record: dict, line, where) -> None:
        """Keep a record; a task that ends before it starts is kept as IMM reported it, with a warning."""
        start, end = record["start_time"], record["end_time"]
        if start is not None and end is not None and end < start:
            place = " ".join(p for p in (f"line {line}" if line is not None else None, where) if p)
            self.out.warnings.append(
                f"{self.path}: {place + ': ' if place else ''}task {record['task_id']}: EndTime {end.isoformat()} "
                f"is before StartTime {start.isoformat()}; stored as reported")
        self.out.records.append(record)

    def add_task(self, task, *, project=None, line=None, where=None) -> None:
        try:
            if not isinstance(task, dict):
                raise _Bad(f"expected a task object, got {type(task).__name__}")
            ttype = task_type_of(task)
            if ttype is not None and ttype != SPLICING:
                self.out.skipped_other_types += 1
                return
            region = _first(task, "region", "Region", "RegionId") or self.region
            if not region:
                raise _Bad("no region: task dumps do not carry one; pass --region")
            proj = _first(task, "ProjectName", "project", "Project") or project
            self.keep(from_api_task(task, region=region, project=proj, origin="import"), line, where)
        except (_Bad, BadInput) as e:
            self.bad(getattr(e, "reason", str(e)), line=line, where=where)

    def add_notification(self, obj, kind: str, *, line=None, where=None) -> None:
        try:
            if not isinstance(obj, dict):
                raise _Bad(f"expected a notification object, got {type(obj).__name__}")
            if kind == "mns" and not is_mns_envelope(obj):
                raise _Bad("not an MNS/RocketMQ envelope (no content with subject or type)")
            if kind == "eventbridge" and not is_eventbridge_event(obj):
                raise _Bad("not an EventBridge event (no data with specversion)")
            ttype = notification_task_type(obj)
            if ttype is not None and ttype != SPLICING:
                self.out.skipped_other_types += 1
                return
            convert = from_mns_envelope if kind == "mns" else from_eventbridge_event
            self.keep(convert(obj, default_region=self.region), line, where)
        except (_Bad, BadInput) as e:
            self.bad(getattr(e, "reason", str(e)), line=line, where=where)

    def add_page(self, page: dict, *, line=None, prefix="") -> None:
        tasks = page.get("Tasks")
        if not isinstance(tasks, list):
            self.bad("Tasks: expected a list", line=line, where=prefix or None)
            return
        if not self.region and not any(isinstance(t, dict) and _first(t, "region", "Region") for t in tasks):
            if tasks:
                # A file-level problem: every record would fail the same way.
                raise BadInput("ListTasks responses carry no region; pass --region", path=self.path, line=line)
        project = _first(page, "ProjectName")
        for i, task in enumerate(tasks):
            self.add_task(task, project=project, line=line, where=f"{prefix}Tasks[{i}]")

    def add_item(self, obj, *, line=None, where=None) -> None:
        """One element of an array or one line of JSON Lines, detected or forced by --kind."""
        kind = self.kind
        detected = _item_kind(obj)
        obj = _unwrap_sdk(obj)
        if kind in ("mns", "eventbridge"):
            self.add_notification(obj, kind, line=line, where=where)
        elif detected == "listtasks" and kind in (None, "listtasks", "jsonl"):
            self.add_page(obj, line=line, prefix=f"{where}." if where else "")
        elif kind is None and detected in ("mns", "eventbridge"):
            self.add_notification(obj, detected, line=line, where=where)
        elif kind is None and detected is None:
            self.bad("not a task, ListTasks page, notification envelope or EventBridge event",
                     line=line, where=where)
        else:
            self.add_task(obj, line=line, where=where)

    # -- files --
    def parse(self) -> FileImport:
        try:
            return self._parse()
        except RecursionError:
            raise BadInput("JSON nested too deeply", path=self.path) from None

    def _parse(self) -> FileImport:
        try:
            if Path(self.path).stat().st_size > MAX_DUMP_BYTES:
                raise BadInput(f"larger than {MAX_DUMP_BYTES // 1024**3} GiB; split it into smaller files",
                               path=self.path)
            text = Path(self.path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise BadInput("no such file", path=self.path) from None
        except IsADirectoryError:
            raise BadInput("is a directory, not a file", path=self.path) from None
        except UnicodeDecodeError as e:
            raise BadInput(f"not UTF-8 text (byte {e.start})", path=self.path) from None
        except OSError as e:
            raise BadInput(f"cannot read: {e.strerror}", path=self.path) from None
        if not text.strip():
            raise BadInput("empty file", path=self.path)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            self.parse_lines(text, e)
        except ValueError as e:  # an integer of thousands of digits
            raise BadInput(f"not valid JSON: {one_line(e)}", path=self.path) from None
        else:
            self.parse_document(doc)
        return self.out

    def parse_document(self, doc) -> None:
        kind = self.kind
        body = _unwrap_sdk(doc)
        if isinstance(body, list):
            self.out.kind = kind or _array_kind(body)
            for i, item in enumerate(body):
                self.add_item(item, where=f"[{i}]")
            return
        detected = _item_kind(body)
        if kind == "listtasks" or (kind is None and detected == "listtasks"):
            if detected != "listtasks":
                raise BadInput("not a ListTasks response (no Tasks list)", path=self.path)
            self.out.kind = "listtasks"
            self.add_page(body)
        elif kind in ("gettask", "jsonl") or (kind is None and detected == "task"):
            if not isinstance(body, dict):
                raise BadInput("expected a task object", path=self.path)
            self.out.kind = kind or "gettask"
            if not self.region and not _first(body, "region", "Region"):
                raise BadInput("GetTask responses carry no region; pass --region", path=self.path)
            self.add_task(body, line=1 if kind == "jsonl" else None, where="task")
        elif kind in ("mns", "eventbridge") or (kind is None and detected in ("mns", "eventbridge")):
            self.out.kind = kind or detected
            self.add_notification(body, self.out.kind, where="envelope" if self.out.kind == "mns" else "event")
        else:
            raise BadInput("cannot tell what this file holds (not a ListTasks or GetTask response, task JSON "
                           "Lines, MNS/RocketMQ envelope or EventBridge event); set --kind", path=self.path)

    def parse_lines(self, text: str, whole_error: ValueError) -> None:
        lines = text.splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
        try:
            json.loads(lines[first])
        except (ValueError, RecursionError):
            # Not JSON Lines either: report the document's own syntax error, with its line.
            raise BadInput(f"not valid JSON: {whole_error.msg} (column {whole_error.colno})",
                           path=self.path, line=whole_error.lineno) from None
        self.out.kind = self.kind or "jsonl"
        kinds = set()
        for n, ln in enumerate(lines, start=1):
            if not ln.strip():
                continue
            try:
                obj = json.loads(ln)
            except json.JSONDecodeError as e:
                self.bad(f"not valid JSON: {e.msg} (column {e.colno})", line=n)
                continue
            except (ValueError, RecursionError) as e:
                self.bad(f"not valid JSON: {'nested too deeply' if isinstance(e, RecursionError) else one_line(e)}",
                         line=n)
                continue
            kinds.add(_item_kind(obj))
            self.add_item(obj, line=n)
        if self.kind is None and len(kinds - {None}) == 1 and kinds & {"mns", "eventbridge"}:
            self.out.kind = next(iter(kinds - {None}))


def _array_kind(items: list) -> str:
    kinds = {_item_kind(i) for i in items} - {None}
    if len(kinds) == 1:
        k = next(iter(kinds))
        return "jsonl" if k == "task" else k
    return "mixed" if kinds else "array"


def parse_file(path, *, kind: str | None = None, region: str | None = None, skip_bad: bool = False) -> FileImport:
    """Parse one file; return its ImageSplicing records, skipped count and (with skip_bad) bad records.

    Raises BadInput naming the file and the record's line or index on a bad record (without skip_bad), or
    when the file cannot be read or recognised.
    """
    if kind is not None and kind not in KINDS:
        raise BadInput(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    return _Parser(path, kind, region, skip_bad).parse()


def parse_files(paths, *, kind: str | None = None, region: str | None = None,
                skip_bad: bool = False) -> list[FileImport]:
    """Parse every file first (see `parse_file`); return them in order. Nothing is stored."""
    return [parse_file(p, kind=kind, region=region, skip_bad=skip_bad) for p in paths]

