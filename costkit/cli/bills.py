"""Commands: import-bill, fetch-bill, bill-lines, prices learn, export."""
from __future__ import annotations

import click

from costkit.cli.conventions import info, quiet_option, store_option, wide_option
from costkit.cli.paths import OUT_HELP, check_writable, store_path

from costkit.core.errors import BadInput
from costkit.core.timeutil import parse_month
from costkit.cli.cost import PRICES_OPTION, SETTINGS_OPTION, SITE_OPTION

BILL_LINES_FORMAT_VERSION = 1   # of the `bill-lines` JSON

ACCOUNT_OPTION = click.option("--account", help="Only this account's lines (the purchase account, 资源购买账号ID / "
                                                "BillAccountID); default: every account the month holds.")
# Kept for older scripts: one stored source (csv, api:<account>); --account is the way to choose now.
SOURCE_OPTION = click.option("--source", hidden=True, help="Bill source as stored (csv, api:<account>).")
MAPPING_OPTION = click.option("--mapping", "mapping_file", type=str,
                              help="Bill mapping file (default: the bundled costkit/data/bill-mapping.yaml).")


def _month(value, name="--month"):
    if value is not None:
        parse_month(value, field=name)
    return value


def _report_unmapped(store, summary, mapping_file) -> None:
    """Print the unmapped lines of each imported month (they are stored; the audit reports them too)."""
    from costkit.sources.bills.mapping import unmapped_summary
    from costkit.store.bills import mapped_bill_lines

    for month in sorted(summary.months):
        frame = mapped_bill_lines(store, month, source=summary.source, mapping=mapping_file)
        if frame.empty:
            continue
        n_un = int((~frame["mapped"]).sum())
        info(f"{month}: {len(frame) - n_un} lines mapped to costkit items, {n_un} unmapped")
        for text in unmapped_summary(frame):
            info(f"  unmapped: {text}")


@click.command("import-bill")
@click.argument("file", type=str)
@click.option("--month", help="Billing month YYYY-MM (UTC+8); every line must be in it (default: the months "
                              "the file holds).")
@click.option("--currency", help="Currency when the file has no Currency/币种 column (CNY, USD).")
@MAPPING_OPTION
@store_option
@quiet_option
@click.pass_context
def import_bill_cmd(ctx, file, month, currency, mapping_file):
    """Import a console bill-details CSV (UTF-8, UTF-8 with BOM or GB18030; Chinese or English headers).

    Files covering other products, accounts or days add to the month; importing the same scope again
    replaces what that import brought; lines already stored by another import are stored once (skipped).

    \b
    Examples:
      costkit import-bill --store history.duckdb bill-2025-09.csv
      costkit import-bill oss-lines.csv --month 2025-09 --currency CNY -q
    """
    from costkit.sources.bills.mapping import load_mapping
    from costkit.store.bills import import_bill_csv
    from costkit.store.db import Store

    _month(month)
    if mapping_file:
        load_mapping(mapping_file)  # bad mapping: fail before touching the store
    with Store.open(store_path(ctx)) as store:
        summary = import_bill_csv(store, file, month=month, currency=currency)
        info(summary.line())
        _report_unmapped(store, summary, mapping_file)


@click.command("fetch-bill")
@click.option("--month", required=True, help="Billing cycle YYYY-MM (UTC+8; the API keeps 18 months).")
@click.option("--endpoint", help="http://host:port, https://host or a host name (default: business.aliyuncs.com "
                                 "for cn-* regions, else the international site's business.ap-southeast-1."
                                 "aliyuncs.com).")
@click.option("--product-code", "product_codes", multiple=True,
              help="Only this ProductCode (repeatable), e.g. oss, imm. Default: every product.")
@click.option("--region", default="cn-hangzhou", show_default=True,
              help="Region id for the SDK client (ap-southeast-1 etc. selects the international site).")
@MAPPING_OPTION
@store_option
@quiet_option
@click.pass_context
def fetch_bill_cmd(ctx, month, endpoint, product_codes, region, mapping_file):
    """Fetch a month's daily billing-item lines with BSS OpenAPI DescribeInstanceBill and store them
    (credentials: the Alibaba Cloud default chain). Fetching the same scope (month and product codes) again
    replaces what that fetch brought; another scope adds to the month.

    \b
    Examples:
      costkit fetch-bill --store history.duckdb --month 2025-09
      costkit fetch-bill --month 2025-09 --product-code imm --product-code oss -q
    """
    from costkit.sources.bills.mapping import load_mapping
    from costkit.store.bills import fetch_bill
    from costkit.sources.endpoint import parse_endpoint
    from costkit.store.db import Store

    _month(month)
    parse_endpoint(endpoint, region)
    if mapping_file:
        load_mapping(mapping_file)
    # Test seam: tests pass static test keys and a fast retry policy through the context object.
    extra = dict((ctx.obj or {}).get("fetch_bill_kwargs") or {})
    with Store.open(store_path(ctx)) as store:
        summary = fetch_bill(store, month, endpoint=endpoint, product_codes=product_codes, region=region, **extra)
        info(summary.line())
        _report_unmapped(store, summary, mapping_file)


@click.command("bill-lines")
@click.option("--month", required=True, help="Billing month YYYY-MM (UTC+8).")
@ACCOUNT_OPTION
@SOURCE_OPTION
@click.option("--sources", "list_sources", is_flag=True,
              help="List the imports that make up the month instead: file or endpoint, account, products, days, "
                   "lines and payable total.")
@click.option("--unmapped", "only_unmapped", is_flag=True, help="Only the lines no mapping rule matched.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--out", type=str, help=OUT_HELP)
@MAPPING_OPTION
@store_option
@wide_option
@click.pass_context
def bill_lines_cmd(ctx, month, account, source, list_sources, only_unmapped, fmt, out, mapping_file):
    """Show the stored bill lines of a month with their costkit item (mapped or not), or (--sources) the
    imports that make up the month.

    \b
    Examples:
      costkit bill-lines --store history.duckdb --month 2025-09 --unmapped
      costkit bill-lines --month 2025-09 --sources --format json --out -
    """
    from costkit.store.bills import mapped_bill_lines
    from costkit.outputs.text import text_table, to_json
    from costkit.store.db import Store
    from costkit.outputs.files import write_output

    out = check_writable(out)
    _month(month)
    with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
        if list_sources:
            from costkit.store.bills import import_rows
            cols, rows = import_rows(store, month, account=account)
        else:
            frame = mapped_bill_lines(store, month, source=source, mapping=mapping_file, account=account)
    if not list_sources:
        if only_unmapped and not frame.empty:
            frame = frame[~frame["mapped"]]
        cols = ["billing_date", "account", "product_code", "billing_item_code", "billing_item", "instance_id",
                "usage", "usage_unit", "deducted_by_resource_package", "pretax_gross_amount", "deductions",
                "other_deduction", "pretax_amount", "net_amount", "amount_rule", "currency", "item", "storage_class",
                "redundancy", "quantity", "quantity_unit", "import_id", "note"]
        rows = [[_cell(r.get(c)) for c in cols] for r in frame.to_dict("records")]
    if fmt == "json":
        text = to_json({"format_version": BILL_LINES_FORMAT_VERSION, "month": month, "imports" if list_sources else "lines": [dict(zip(cols, r)) for r in rows]})
    elif fmt == "csv":
        import io

        from costkit.core import csvsafe
        buf = io.StringIO()
        w = csvsafe.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([["" if v is None else v for v in r] for r in rows])
        text = buf.getvalue()
    else:
        text = text_table(cols, [["" if v is None else str(v) for v in r] for r in rows])
    write_output(text, out)


def _cell(v):
    from decimal import Decimal

    from costkit.sources.bills.records import decimal_text
    if isinstance(v, Decimal):
        return decimal_text(v)
    if v is None or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


@click.command("learn")
@click.option("--month", required=True, help="Billing month YYYY-MM whose stored bill lines to learn from.")
@click.option("--out", type=str, help="Write the overlay here (default, or `-`: stdout).")
@ACCOUNT_OPTION
@SOURCE_OPTION
@MAPPING_OPTION
@store_option
@click.pass_context
def prices_learn_cmd(ctx, month, out, account, source, mapping_file):
    """Derive unit prices from a month's bill lines into a user price overlay (confidence: bill).

    Use the file with --prices; this is how the unknown ImageSplicing price gets filled in.

    \b
    Examples:
      costkit prices learn --store history.duckdb --month 2025-09 --out learnt.yaml
      costkit estimate scenario.yaml --prices learnt.yaml
    """
    from costkit.prices.learn import learn_prices
    from costkit.store.db import Store
    from costkit.outputs.files import write_output

    out = check_writable(out)
    _month(month)
    with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
        result = learn_prices(store, month, source=source, mapping=mapping_file, account=account)
    write_output(result.yaml_text(), out)
    for e in result.entries:
        sel = ",".join(f"{k}={v}" for k, v in sorted(e["selectors"].items()))
        click.echo(f"learnt {e['item']}{' ' + sel if sel else ''}: {e['price']} {e['currency']}/{e['unit']} from "
                   f"{e['effective_from']}", err=True)
    for s in result.skipped:
        click.echo(f"costkit: note: {s}", err=True)
    if out:
        click.echo(f"wrote {out}", err=True)
    if not result.entries:
        raise BadInput(f"no price could be learnt from the {month} bill lines (see the notes above)",
                       field="--month")


@click.command("export")
@click.option("--month", required=True, help="Billing month YYYY-MM (UTC+8).")
@click.option("--schema", type=click.Choice(["focus", "costkit"]), default="focus", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--out", required=True, type=str)
@click.option("--rows", "rows_kind", type=click.Choice(["billed", "expected", "both"]), default="billed",
              show_default=True, help="billed: the bill as FOCUS (BilledCost sums to the payable total); expected: "
                                      "costkit's expected charges; both: one file, told apart by x_costkit_source.")
@ACCOUNT_OPTION
@SOURCE_OPTION
@click.option("--csv-raw", "csv_raw", is_flag=True,
              help="CSV for machines: text cells verbatim, without the ' that keeps spreadsheets from running "
                   "cells that begin with = + - @ as formulas.")
@MAPPING_OPTION
@PRICES_OPTION
@SETTINGS_OPTION
@SITE_OPTION
@store_option
@click.pass_context
def export_cmd(ctx, month, schema, fmt, out, rows_kind, account, source, csv_raw, mapping_file, prices_file,
               settings_file, site):
    """Write a month's charges for finance dashboards: FOCUS 1.2 columns (or costkit's own), CSV or Parquet.

    Billed charges come from the stored bill lines (x_costkit_source=billed), expected charges from the cost
    engine's day x item lines, handed out per class x project x tags (x_costkit_source=expected).

    \b
    Examples:
      costkit export --store history.duckdb --month 2025-09 --out focus-2025-09.csv
      costkit export --month 2025-09 --rows both --format parquet --out focus.parquet
    """
    from costkit.core.csvsafe import raw_csv
    from costkit.outputs.focus import export_month
    from costkit.model.settings import load_settings
    from costkit.store.db import Store

    check_writable(out)
    _month(month)
    settings = load_settings(settings_file, site=site)
    with Store.open(store_path(ctx, create=False), create=False, read_only=True) as store:
        with raw_csv(csv_raw):
            n, notes = export_month(store, month, schema=schema, fmt=fmt, out=out, source=source,
                                    mapping=mapping_file, settings=settings, prices_file=prices_file,
                                    rows_kind=rows_kind, account=account)
    for note in notes:
        click.echo(f"costkit: note: {note}", err=True)
    click.echo(f"wrote {out} ({n} rows, schema {schema}, {fmt})")


def register(group: click.Group) -> None:
    from costkit.cli.forecast import prices_group

    for cmd in (import_bill_cmd, fetch_bill_cmd, bill_lines_cmd, export_cmd):
        group.add_command(cmd)
    prices_group.add_command(prices_learn_cmd)
