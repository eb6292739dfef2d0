"""Commands: render (a saved JSON report in another format) and diff (two saved reports, item by item)."""
from __future__ import annotations

import click

from costkit.cli.paths import check_writable
from costkit.outputs.files import write_output


@click.command("render")
@click.argument("report", type=str)
@click.option("--format", "fmt", type=click.Choice(["html", "table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--out", type=str, help="Write here instead of stdout.")
def render_cmd(report, fmt, out):
    """Re-render a saved estimate, cost or audit REPORT (its --format json output; - reads stdin).

    The report's format_version is checked: an unknown version is refused (exit 2).
    """
    from costkit.outputs.saved import read_report, render_saved
    check_writable(out)
    text = render_saved(read_report(report), fmt, path=report)
    write_output(text, out)
    if out:
        click.echo(f"wrote {out}", err=True)


@click.command("diff")
@click.argument("a", type=str)
@click.argument("b", type=str)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--out", type=str, help="Write here instead of stdout.")
def diff_cmd(a, b, fmt, out):
    """Compare two saved reports A and B item by item: two forecasts, or two months of cost or audit.

    Differences are B - A, with the percentage of A.
    """
    from costkit.outputs.diff import diff_reports, diff_table
    from costkit.outputs.saved import read_report
    from costkit.outputs.text import to_json
    check_writable(out)
    model = diff_reports(read_report(a), read_report(b), paths=(a, b))
    write_output(to_json(model) if fmt == "json" else diff_table(model), out)
    if out:
        click.echo(f"wrote {out}", err=True)


def register(group: click.Group) -> None:
    for cmd in (render_cmd, diff_cmd):
        group.add_command(cmd)
