"""Command: collect (ImageSplicing tasks from IMM ListTasks into the store)."""
from __future__ import annotations

import sys

import click

from costkit.cli.paths import store_path

from costkit.sources.imm.collect import DEFAULT_CONCURRENCY
from costkit.core.errors import BadInput
from costkit.core.timeutil import parse_instant_or_date


def _instant(value, name):
    return None if value is None else parse_instant_or_date(value, field=name)


def register(group: click.Group) -> None:
    @group.command("collect")
    @click.option("--region", required=True, help="IMM region, e.g. cn-hangzhou.")
    @click.option("--project", "projects", multiple=True, help="IMM project (repeatable).")
    @click.option("--all-projects", is_flag=True, help="Every project of the region (ListProjects).")
    @click.option("--since", help="Window start, ISO 8601 with offset or a date (00:00 Asia/Shanghai) (default: the last checkpoint - 2 h; "
                                  "all that IMM still lists, i.e. 7 days, for a new project and once a day).")
    @click.option("--until", help="Window end, ISO 8601 with offset or a date (default: now).")
    @click.option("--endpoint", help="http://host:port, https://host, or a host name (https); "
                                     "default imm.<region>.aliyuncs.com.")
    @click.option("--concurrency", type=int, default=DEFAULT_CONCURRENCY, show_default=True,
                  help="ListTasks slices fetched in parallel.")
    @click.pass_context
    def collect_cmd(ctx, region, projects, all_projects, since, until, endpoint, concurrency):
        """Collect ImageSplicing tasks from IMM ListTasks into the store (credentials: the Alibaba Cloud
        default chain, e.g. ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET)."""
        from costkit.sources.imm.collect import collect
        from costkit.store.session import SessionStore

        since_dt, until_dt = _instant(since, "--since"), _instant(until, "--until")
        if concurrency < 1:
            raise BadInput(f"must be at least 1, got {concurrency}", field="--concurrency")
        # Test seam: tests pass static test keys and a fast retry policy through the context object.
        extra = dict((ctx.obj or {}).get("collect_kwargs") or {})
        progress = _progress_line() if sys.stderr.isatty() else None
        # Held only while each batch commits: readers can open the store in between.
        with SessionStore(store_path(ctx)) as store:
            summary = collect(store, region=region, projects=list(projects), all_projects=all_projects,
                              since=since_dt, until=until_dt, endpoint=endpoint, concurrency=concurrency,
                              progress=progress, warn=lambda t: click.echo(f"costkit: warning: {t}", err=True),
                              **extra)
        if progress is not None:
            click.echo("", err=True)
        for p in summary.projects:
            # Records the collector could not store (e.g. an undocumented Status): never a silent loss.
            if p.errors:
                click.echo(f"costkit: warning: {p.project}: {len(p.errors)} problem(s), first: {p.errors[0]}",
                           err=True)
        click.echo(summary.line())


def _progress_line():
    def show(done, total, tasks):
        click.echo(f"\rcollect: {done}/{total} slices, {tasks} tasks listed", err=True, nl=False)
    return show
