"""Commands: import, tasks, coverage (the task-history store)."""
from __future__ import annotations

import io
import json
from datetime import datetime

import click

from costkit.cli.paths import store_path

from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.sources.imm.taskrecord import DUMP_KINDS, STATUSES
from costkit.core.timeutil import parse_instant_or_date

def _instant(value: str | None, option: str) -> datetime | None:
    """An option's time: ISO 8601 with an offset, or a date meaning 00:00 in Asia/Shanghai (billing days)."""
    return None if value is None else parse_instant_or_date(value, field=option)


def _iso(ts) -> str | None:
    """ISO 8601 with offset for a pandas/py timestamp; None for a missing one."""
    if ts is None or ts != ts:  # NaT is not equal to itself
        return None
    return ts.isoformat()


def _task_objects(df) -> list[dict]:
    """The rows of a tasks frame as the JSON objects of `costkit tasks --format json`."""
    out = []
    for r in df.itertuples(index=False):
        out.append({
            "task_id": r.task_id, "region": r.region, "project": r.project, "status": r.status,
            "start_time": _iso(r.start_time), "end_time": _iso(r.end_time),
            "sources": [s["uri"] for s in r.sources], "target_uri": r.target_uri,
            "tags": r.tags, "user_data": r.user_data, "origin": r.origin,
        })
    return out


def _table(rows: list[list], headers: list[str]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def register(group: click.Group) -> None:
    @group.command("import")
    @click.argument("files", nargs=-1, required=True, type=str)
    @click.option("--kind", type=click.Choice(DUMP_KINDS), help="Force the file kind instead of detecting it.")
    @click.option("--region", help="Region of ListTasks/GetTask dumps (they do not carry one).")
    @click.option("--skip-bad", is_flag=True, help="Skip bad records and list them, instead of failing the file.")
    @click.pass_context
    def import_cmd(ctx, files, kind, region, skip_bad):
        """Import ListTasks/GetTask dumps, task JSON Lines, MNS/RocketMQ envelopes or EventBridge events."""
        # Parse and check every file before the store is even opened: a bad file leaves no trace.
        from costkit.sources.imm.importers import parse_files
        from costkit.store.ingest import store_parsed
        from costkit.store.db import Store

        target = store_path(ctx)
        parsed = parse_files(files, kind=kind, skip_bad=skip_bad, region=region)
        with Store.open(target) as store:
            summary = store_parsed(store, parsed)
        for f in parsed:
            for w in f.warnings:
                click.echo(f"costkit: warning: {w}", err=True)
        for bad in summary.bad:
            click.echo(f"costkit: skipped bad record: {bad}", err=True)
        click.echo(summary.line())

    @group.command("tasks")
    @click.option("--project", help="Only this project.")
    @click.option("--region", help="Only this region.")
    @click.option("--since", help="Tasks started at or after this time (ISO 8601 with offset, or a date in UTC+8).")
    @click.option("--until", help="Tasks started before this time.")
    @click.option("--status", type=click.Choice(STATUSES, case_sensitive=False))
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
    @click.pass_context
    def tasks_cmd(ctx, project, region, since, until, status, fmt):
        """List the stored tasks."""
        since_dt, until_dt = _instant(since, "--since"), _instant(until, "--until")
        if since_dt is not None and until_dt is not None and until_dt <= since_dt:
            raise BadInput("--until must be after --since", field="--until")  # as `cost` does
        if status:
            status = {s.lower(): s for s in STATUSES}[status.lower()]
        from costkit.store.db import Store
        with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
            df = store.tasks_frame(project=project, since=since_dt, until=until_dt, status=status, region=region)
        objs = _task_objects(df)
        if fmt == "json":
            click.echo(json.dumps(objs, ensure_ascii=False, indent=2))
        elif fmt == "csv":
            buf = io.StringIO()
            w = csvsafe.DictWriter(buf, fieldnames=list(objs[0]) if objs else [
                "task_id", "region", "project", "status", "start_time", "end_time", "sources", "target_uri",
                "tags", "user_data", "origin"], lineterminator="\n")
            w.writeheader()
            for o in objs:
                # Lists and objects as JSON text: unambiguous in one cell.
                w.writerow({**o, "sources": json.dumps(o["sources"], ensure_ascii=False),
                            "tags": json.dumps(o["tags"], ensure_ascii=False, sort_keys=True)})
            click.echo(buf.getvalue(), nl=False)
        else:
            rows = [[o["task_id"], o["region"], o["project"], o["status"], o["start_time"], o["end_time"],
                     len(o["sources"]), o["target_uri"], o["origin"]] for o in objs]
            click.echo(_table(rows, ["TASK_ID", "REGION", "PROJECT", "STATUS", "START", "END", "SOURCES",
                                     "TARGET", "ORIGIN"]))
            click.echo(f"{len(objs)} task{'s' if len(objs) != 1 else ''}")

    @group.command("coverage")
    @click.option("--project", help="Only this project.")
    @click.option("--region", help="Only this region.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    @click.pass_context
    def coverage_cmd(ctx, project, region, fmt):
        """Show, per project, the windows collected and the gaps (IMM keeps tasks 7 days), and what each
        source covered: collection (collect), notifications (listen) and imported files (import)."""
        from costkit.store.db import Store
        with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
            df = store.coverage(region=region, project=project)
            by_source = store.coverage_sources(region=region, project=project)
        objs = [{"region": r.region, "project": r.project, "kind": r.kind, "start": _iso(r.start),
                 "end": _iso(r.end), "via": r.via, "note": r.note} for r in df.itertuples(index=False)]
        if fmt == "json":
            click.echo(json.dumps(objs, ensure_ascii=False, indent=2))
            return
        if not objs:
            click.echo("nothing collected or imported yet")
            return
        rows = [[o["region"], o["project"], o["kind"], o["start"] or "(unknown)", o["end"],
                 o["via"] or "", o["note"] or ""] for o in objs]
        click.echo(_table(rows, ["REGION", "PROJECT", "KIND", "START", "END", "VIA", "NOTE"]))
        if not by_source.empty:
            click.echo("")
            names = {"collect": "collection (collect)", "listen": "notifications (listen)",
                     "import": "imported files (import)"}
            rows = [[r.region, r.project, names.get(r.source, r.source), _iso(r.first), _iso(r.last), int(r.n),
                     _iso(r.at)] for r in by_source.itertuples(index=False)]
            click.echo(_table(rows, ["REGION", "PROJECT", "SOURCE", "FROM", "TO", "RUNS", "LAST RUN"]))
