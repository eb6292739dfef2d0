"""Commands: import, tasks, coverage (the task-history store)."""
from __future__ import annotations

import io
import json
from datetime import datetime

import click

from costkit.cli.conventions import info, quiet_option, store_option, wide_option
from costkit.cli.paths import store_path

from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.sources.imm.taskrecord import DUMP_KINDS, STATUSES
from costkit.core.timeutil import parse_instant_or_date, show_time
from costkit.outputs.text import text_table

FORMAT_VERSION = 1   # of the `tasks` and `coverage` JSON

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
    """Left-aligned columns in display width, fitting 100 columns unless --wide (outputs.text.text_table)."""
    return text_table(headers, rows, right=set(), rule=False).rstrip("\n")


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=str)
@click.option("--kind", type=click.Choice(DUMP_KINDS), help="Force the file kind instead of detecting it.")
@click.option("--region", help="Region of ListTasks/GetTask dumps (they do not carry one).")
@click.option("--skip-bad", is_flag=True, help="Skip bad records and list them, instead of failing the file.")
@store_option
@quiet_option
@click.pass_context
def import_cmd(ctx, files, kind, region, skip_bad):
    """Import ListTasks/GetTask dumps, task JSON Lines, MNS/RocketMQ envelopes or EventBridge events.

    \b
    Examples:
      costkit import --store history.duckdb listtasks-*.json
      costkit import --kind mns --region cn-hangzhou notifications.jsonl -q
    """
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
    info(summary.line())

@click.command("tasks")
@click.option("--project", help="Only this project.")
@click.option("--region", help="Only this region.")
@click.option("--since", help="Tasks started at or after this time (ISO 8601 with offset, or a date: 00:00 "
                              "Asia/Shanghai).")
@click.option("--until", help="Tasks started before this time.")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@store_option
@wide_option
@click.pass_context
def tasks_cmd(ctx, project, region, since, until, status, fmt):
    """List the stored tasks (times in the table: Asia/Shanghai; JSON and CSV: ISO 8601 with offset).

    \b
    Examples:
      costkit tasks --store history.duckdb --since 2025-08-01 --status succeeded
      costkit tasks --project photos --format json > tasks.json
    """
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
        click.echo(json.dumps({"format_version": FORMAT_VERSION, "tasks": objs}, ensure_ascii=False, indent=2))
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
        rows = [[r.task_id, r.region, r.project, r.status, show_time(r.start_time), show_time(r.end_time),
                 len(r.sources), r.target_uri, r.origin] for r in df.itertuples(index=False)]
        click.echo(_table(rows, ["TASK_ID", "REGION", "PROJECT", "STATUS", "START", "END", "SOURCES",
                                 "TARGET", "ORIGIN"]))
        click.echo(f"{len(objs)} task{'s' if len(objs) != 1 else ''}")

@click.command("coverage")
@click.option("--project", help="Only this project.")
@click.option("--region", help="Only this region.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@store_option
@wide_option
@click.pass_context
def coverage_cmd(ctx, project, region, fmt):
    """Show, per project, the windows collected and the gaps (IMM keeps tasks 7 days), and what each
    source covered: collection (collect), notifications (listen) and imported files (import).

    \b
    Examples:
      costkit coverage --store history.duckdb
      costkit coverage --project photos --format json
    """
    from costkit.store.db import Store
    with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
        df = store.coverage(region=region, project=project)
        by_source = store.coverage_sources(region=region, project=project)
    objs = [{"region": r.region, "project": r.project, "kind": r.kind, "start": _iso(r.start),
             "end": _iso(r.end), "via": r.via, "note": r.note} for r in df.itertuples(index=False)]
    if fmt == "json":
        click.echo(json.dumps({"format_version": FORMAT_VERSION, "coverage": objs}, ensure_ascii=False,
                              indent=2))
        return
    if not objs:
        click.echo("nothing collected or imported yet")
        return
    rows = [[r.region, r.project, r.kind, show_time(r.start) or "(unknown)", show_time(r.end),
             r.via or "", r.note or ""] for r in df.itertuples(index=False)]
    click.echo(_table(rows, ["REGION", "PROJECT", "KIND", "START", "END", "VIA", "NOTE"]))
    if not by_source.empty:
        click.echo("")
        names = {"collect": "collection (collect)", "listen": "notifications (listen)",
                 "import": "imported files (import)"}
        rows = [[r.region, r.project, names.get(r.source, r.source), show_time(r.first), show_time(r.last),
                 int(r.n), show_time(r.at)] for r in by_source.itertuples(index=False)]
        click.echo(_table(rows, ["REGION", "PROJECT", "SOURCE", "FROM", "TO", "RUNS", "LAST RUN"]))


def register(group: click.Group) -> None:
    for cmd in (import_cmd, tasks_cmd, coverage_cmd):
        group.add_command(cmd)
