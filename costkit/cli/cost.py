"""Commands: inventory (OSS object and bucket facts) and cost (the priced task history)."""
from __future__ import annotations

import sys

import click

from costkit.cli.paths import check_writable, store_path

from costkit.core.errors import BadInput

SETTINGS_OPTION = click.option("--settings", "settings_file", envvar="COSTKIT_SETTINGS",
                               type=str,
                               help="Settings YAML (site, defaults for unknown objects, usage model, buckets); "
                                    "env COSTKIT_SETTINGS.")
SITE_OPTION = click.option("--site", type=click.Choice(["cn", "intl"]), default=None,
                           help="Price book site (default: the settings' site, else cn).")
PRICES_OPTION = click.option("--prices", "prices_file", type=str,
                             help="User price file (same schema as the price books) on top of the bundled book.")


def register(group: click.Group) -> None:
    @group.command("inventory")
    @click.option("--region", help="Only tasks of this region; also the OSS region when --endpoint is not given "
                                   "(default: each task's region).")
    @click.option("--endpoint", help="OSS endpoint, e.g. http://127.0.0.1:9000 or https://oss-cn-hangzhou"
                                     "-internal.aliyuncs.com (default: the bucket's location).")
    @click.option("--concurrency", type=int, default=8, show_default=True, help="Parallel OSS requests.")
    @click.option("--max-age", "max_age", help="Re-read facts older than this many days (default: only "
                                                "unknown URIs).")
    @SETTINGS_OPTION
    @SITE_OPTION
    @PRICES_OPTION
    @click.pass_context
    def inventory_cmd(ctx, region, endpoint, concurrency, max_age, settings_file, site, prices_file):
        """Read size, class, Last-Modified and restore state of every source and target the stored tasks
        reference (credentials: the Alibaba Cloud default chain); cache them in the store."""
        from costkit.engine.inventory import run_inventory
        from costkit.sources.oss.inventory import parse_max_age
        from costkit.model.settings import load_settings
        from costkit.store.db import Store

        if concurrency < 1:
            raise BadInput(f"must be at least 1, got {concurrency}", field="--concurrency")
        settings = load_settings(settings_file, site=site)
        extra = dict((ctx.obj or {}).get("inventory_kwargs") or {})  # test seam: keys, retry policy
        progress = None
        if sys.stderr.isatty():
            def progress(done, total):
                click.echo(f"\rinventory: {done}/{total} jobs", err=True, nl=False)
        with Store.open(store_path(ctx, create=False), create=False) as store:
            summary = run_inventory(store, region=region, endpoint=endpoint, concurrency=concurrency,
                                    max_age=parse_max_age(max_age), settings=settings, prices_file=prices_file,
                                    progress=progress, **extra)
        if progress is not None:
            click.echo("", err=True)
        for w in summary.warnings:
            click.echo(f"costkit: warning: {w}", err=True)
        click.echo(summary.line())

    @group.command("cost")
    @click.option("--month", help="Billing month YYYY-MM (Asia/Shanghai).")
    @click.option("--since", help="Period start: ISO 8601 with offset, or YYYY-MM-DD (Asia/Shanghai midnight).")
    @click.option("--until", help="Period end (exclusive), same forms as --since.")
    @click.option("--by", "by", default="item", show_default=True, help="item, day, project or tag:KEY.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet"]), default=None,
                  help="table, json or csv (report); csv or parquet with --lines. Default: table / csv.")
    @click.option("--out", type=str, help="Write here instead of stdout.")
    @click.option("--lines", is_flag=True, help="Write the charge lines (one row per task, hour and item).")
    @SETTINGS_OPTION
    @SITE_OPTION
    @PRICES_OPTION
    @click.pass_context
    def cost_cmd(ctx, month, since, until, by, fmt, out, lines, settings_file, site, prices_file):
        """Price the stored task history for a period with the usage model and the price book."""
        from costkit.engine.history import price_history
        from costkit.engine.lines import write_lines
        from costkit.engine.period import parse_by, parse_period
        from costkit.outputs.cost import render_report
        from costkit.model.settings import load_settings
        from costkit.store.db import Store
        from costkit.outputs.files import write_output

        check_writable(out)
        period = parse_period(month, since, until)
        group_by = parse_by(by)
        settings = load_settings(settings_file, site=site)
        if lines:
            fmt = fmt or "csv"
            if fmt not in ("csv", "parquet"):
                raise BadInput("--lines writes csv or parquet", field="--format")
            if not out:
                if fmt == "parquet":
                    raise BadInput("parquet needs --out PATH", field="--out")
        else:
            fmt = fmt or "table"
            if fmt == "parquet":
                raise BadInput("parquet is for --lines; the report is table, json or csv", field="--format")
        with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
            if lines:
                n = write_lines(store, period, out, fmt=fmt, settings=settings, prices_file=prices_file)
                if out:
                    click.echo(f"wrote {n} charge lines to {out}", err=True)
                return
            report = price_history(store, period, by=group_by, settings=settings, prices_file=prices_file)
        for w in report["warnings"]:
            click.echo(f"costkit: warning: {w}", err=True)
        write_output(render_report(report, fmt), out)
        if out:
            click.echo(f"wrote {out}", err=True)
