"""Command: advise (what to change to pay less: the month's tasks replayed through the engine under each
change; exit 3 with --fail-over when the possible saving is over the amount)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click

from costkit.cli.cost import PRICES_OPTION, SETTINGS_OPTION, SITE_OPTION
from costkit.cli.paths import check_writable, store_path
from costkit.core.errors import BadInput, CostkitError


class SavingOverThreshold(CostkitError):
    """The period's possible saving is over --fail-over (exit 3, for cron and CI)."""

    exit_code = 3


def _amount(text):
    if text is None:
        return None
    try:
        v = Decimal(text.strip())
    except InvalidOperation:
        v = None
    if v is None or not v.is_finite() or v < 0:
        raise BadInput(f"expected an amount of 0 or more in the book's currency, e.g. 10 or 2.50, got {text!r}",
                       field="--fail-over")
    return v


@click.command("advise")
@click.option("--month", help="Billing month YYYY-MM (Asia/Shanghai).")
@click.option("--since", help="Period start: ISO 8601 with offset, or YYYY-MM-DD (Asia/Shanghai midnight).")
@click.option("--until", help="Period end (exclusive), same forms as --since.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True)
@click.option("--out", type=str, help="Write here instead of stdout.")
@click.option("--fail-over", "fail_over", help="Exit 3 when the period's possible saving is over this amount.")
@SETTINGS_OPTION
@SITE_OPTION
@PRICES_OPTION
@click.pass_context
def advise_cmd(ctx, month, since, until, fmt, out, fail_over, settings_file, site, prices_file):
    """Find waste in the stored history and price each change by replaying the same tasks through the engine.

    Example: costkit advise --month 2025-08 --format html --out advise.html --fail-over 10"""
    from costkit.advise.run import advise
    from costkit.engine.period import parse_period
    from costkit.model.settings import load_settings
    from costkit.outputs.advise import render_advise
    from costkit.outputs.files import write_output
    from costkit.store.db import Store

    check_writable(out)
    period = parse_period(month, since, until)
    threshold = _amount(fail_over)
    settings = load_settings(settings_file, site=site)
    with Store.open(store_path(ctx, create=False), create=False) as store:
        model = advise(store, period, settings=settings, prices_file=prices_file)
    for w in model["warnings"]:
        click.echo(f"costkit: warning: {w}", err=True)
    write_output(render_advise(model, fmt), out)
    if out:
        click.echo(f"wrote {out}", err=True)
    saving = Decimal(model["possible_saving"]["period"])
    if threshold is not None and saving > threshold:
        raise SavingOverThreshold(f"{model['period']['label']}: possible saving {saving} {model['currency']} is "
                                  f"over --fail-over {threshold}")


def register(group: click.Group) -> None:
    group.add_command(advise_cmd)
