"""Command: audit (the month's bill reconciled with the priced task history; exit 3 when out of tolerance)."""
from __future__ import annotations

import click

from costkit.cli.conventions import info, quiet_option, store_option
from costkit.cli.paths import OUT_HELP, check_writable, store_path

from costkit.core.errors import VarianceOutOfTolerance
from costkit.cli.bills import MAPPING_OPTION
from costkit.cli.cost import PRICES_OPTION, SETTINGS_OPTION, SITE_OPTION


@click.command("audit")
@click.option("--month", required=True, help="Billing month YYYY-MM (UTC+8).")
@click.option("--tolerance", default="1%", show_default=True,
              help="Relative tolerance per item: 1% or 0.01 (of the expected amount).")
@click.option("--floor", "floor", default="0.05", show_default=True,
              help="Absolute tolerance floor in the bill's currency: an item is within tolerance when "
                   "|variance| <= max(tolerance x |expected|, floor).")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "csv"]), default="html", show_default=True)
@click.option("--out", type=str, help=OUT_HELP)
@click.option("--account", help="Only this account's bill lines (purchase account); default: every account.")
@click.option("--source", hidden=True, help="Bill source as stored (csv, api:<account>); prefer --account.")
@PRICES_OPTION
@SETTINGS_OPTION
@SITE_OPTION
@MAPPING_OPTION
@store_option
@quiet_option
@click.pass_context
def audit_cmd(ctx, month, tolerance, floor, fmt, out, account, source, prices_file, settings_file, site, mapping_file):
    """Reconcile a month's bill with the stored task history: variances per day and item, explained.

    Exit 0 when every item is within tolerance, 3 when one is not (the report is written first).

    \b
    Examples:
      costkit audit --store history.duckdb --month 2025-09 --out audit-2025-09.html
      costkit audit --month 2025-09 --format json --out - -q | jq .total
    """
    from costkit.audit.reconcile import build_audit
    from costkit.audit.tolerance import parse_floor, parse_tolerance
    from costkit.outputs.audit import render_audit
    from costkit.model.settings import load_settings
    from costkit.store.db import Store
    from costkit.core.timeutil import parse_month
    from costkit.outputs.files import write_output

    out = check_writable(out)
    parse_month(month, field="--month")
    tol, fl = parse_tolerance(tolerance), parse_floor(floor)
    settings = load_settings(settings_file, site=site)
    with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
        model = build_audit(store, month, tolerance=tol, floor=fl, prices_file=prices_file, settings=settings,
                            source=source, mapping=mapping_file, account=account)
    write_output(render_audit(model, fmt), out)
    if model["learnt_from_this_bill"]["warning"]:
        click.echo(f"costkit: warning: {model['learnt_from_this_bill']['warning']}", err=True)
    if out:
        info(f"wrote {out}", err=True)
    for r in model["items"]:
        info(f"{r['item']}: billed {r['billed_net']}, expected {r['expected']}, variance {r['variance']} "
                   f"{model['currency']} ({r['status']}): {r['explanation']}", err=True)
    if model["out_of_tolerance"]:
        raise VarianceOutOfTolerance(
            f"{month}: {', '.join(model['out_of_tolerance'])} outside the tolerance "
            f"({model['tolerance']['relative_pct']}%, floor {model['tolerance']['floor']} {model['currency']})")


def register(group: click.Group) -> None:
    group.add_command(audit_cmd)
