"""Commands: estimate, prices (show, check), demo."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from costkit.cli.conventions import info, quiet_option, wide_option
from costkit.cli.paths import OUT_HELP, check_writable

from costkit.engine.forecast import estimate
from costkit.prices.book import CURRENCIES, check_book, load_price_book
from costkit.outputs.forecast import forecast_text, render_forecast
from costkit.outputs.text import text_table, to_json
from costkit.core.timeutil import SHANGHAI, parse_instant_or_date, show_time
from costkit.outputs.files import write_output

PRICES_OPTION = click.option("--prices", "prices_file", type=str,
                             help="User price file (same schema as the price books) on top of the bundled book.")


PRICES_FORMAT_VERSION = 1   # of the `prices` JSON


def scenario_arg(scenario: str):
    """The SCENARIO argument: a path, or `-` for YAML on stdin (a Scenario named <stdin>)."""
    if scenario != "-":
        return scenario
    from costkit.model.scenario import load_scenario_text
    return load_scenario_text(sys.stdin.read(), "<stdin>")


def _trend_estimate(ctx, scenario, prices_file, price_options, store):
    """`estimate --trend`: the scenario priced on the volume projected from the store's daily series."""
    from costkit.cli.paths import check_store
    from costkit.engine.calibrate import daily_counts
    from costkit.engine.trend import trend_forecast
    from costkit.model.scenario import load_scenario
    from costkit.prices.options import parse_price_options
    from costkit.store.db import Store
    scn = load_scenario(scenario) if isinstance(scenario, (str, Path)) else scenario   # `-`: read already
    book = load_price_book(scn.site, prices_file=prices_file, scenario_prices=scn.prices, scenario_path=scn.path,
                           price_options=parse_price_options(price_options, scn.currency))
    path = check_store(store or ctx.find_root().obj["store_path"], create=False)
    with Store.open(path, create=False) as st:
        daily = daily_counts(st)
    return trend_forecast(scn, book, daily)


@click.command("estimate")
@click.argument("scenario", type=str)
@PRICES_OPTION
@click.option("--price", "price_options", multiple=True, metavar="ITEM=VALUE[/UNIT]",
              help="A what-if price, the highest layer (repeatable), e.g. imm.ImageSplicing=2.5/1000calls; "
                   "selectors as oss.Storage[storage_class=IA]=0.08/GB-month.")
@click.option("--strict", is_flag=True, help="Exit 2 when a price is missing instead of a partial forecast.")
@click.option("--budget", metavar="AMOUNT[/month]",
              help="Exit 3 when the horizon total (AMOUNT) or a month (AMOUNT/month) passes it.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True)
@click.option("--out", type=str, help=OUT_HELP)
@click.option("--trend", is_flag=True, help="Project the volume from the store's daily series (trend and weekly "
                                            "seasonality, 80 % and 95 % intervals) instead of monthly_growth.")
@click.option("--store", "trend_store", type=str, help="History store for --trend (default: the group's --store).")
@wide_option
@click.pass_context
def estimate_cmd(ctx, scenario, prices_file, price_options, strict, budget, fmt, out, trend, trend_store):
    """Forecast a workload SCENARIO (YAML; `-` reads it from stdin) month by month.

    Items whose price is unknown are shown with their quantity and "price needed", and the totals say what
    they exclude (exit 0; --strict: exit 2). Exit 3 when --budget is passed (the report is written first).
    --trend projects the volume from the history store instead of monthly_growth.

    \b
    Examples:
      costkit estimate migration.yaml --price imm.ImageSplicing=2.5/1000calls --format html --out forecast.html
      cat migration.yaml | costkit estimate - --format json --budget 5000/month
    """
    out = check_writable(out)
    scenario = scenario_arg(scenario)
    if trend:
        from costkit.core.errors import BadInput
        if budget or strict:
            raise BadInput("--trend does not take --budget or --strict", field="--trend")
        model = _trend_estimate(ctx, scenario, prices_file, price_options, trend_store)
    else:
        model = estimate(scenario, prices_file, strict=strict, prices=price_options, budget=budget)
    write_output(render_forecast(model, fmt), out)
    if out:
        click.echo(f"wrote {out}", err=True)
    if model.get("missing_prices") and fmt != "table":
        click.echo(f"costkit: warning: forecast incomplete: totals are {model['total_label']}", err=True)
    verdict = model.get("budget")
    if verdict is not None:
        click.echo(f"costkit: budget: {verdict['message']}", err=True)
        if verdict["passed"]:
            ctx.exit(3)


@click.group("prices", invoke_without_command=True)
@click.option("--site", type=click.Choice(sorted(CURRENCIES)), default="cn", show_default=True)
@click.option("--at", "at", help="Instant (ISO 8601 with offset) or date (00:00 Asia/Shanghai); default now.")
@PRICES_OPTION
@click.option("--price", "price_options", multiple=True, metavar="ITEM=VALUE[/UNIT]",
              help="A what-if price on top of every layer (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@wide_option
@click.pass_context
def prices_group(ctx, site, at, prices_file, price_options, fmt):
    """Show the effective price book with confidence and sources.

    \b
    Examples:
      costkit prices --at 2025-07-28 --site cn
      costkit prices --at 2025-07-28T11:00:00+08:00 --prices contract.yaml --format json
    """
    if ctx.invoked_subcommand is not None:
        return
    from datetime import datetime
    instant = parse_instant_or_date(at, field="--at") if at else datetime.now(SHANGHAI)
    from costkit.prices.options import parse_price_options
    book = load_price_book(site, prices_file=prices_file,
                           price_options=parse_price_options(price_options, CURRENCIES[site]))
    entries = book.effective(instant)
    if fmt == "json":
        click.echo(to_json({"format_version": PRICES_FORMAT_VERSION, "site": site, "currency": book.currency, "at": instant.isoformat(),
                            "book": {"name": book.name, "version": book.version},
                            "entries": [e.to_dict() for e in entries]}), nl=False)
        return
    rows = [[e.item, ",".join(f"{k}={v}" for k, v in e.selectors), "unknown" if e.price is None else str(e.price),
             f"{e.currency}/{e.unit}", e.confidence, e.layer, e.source] for e in entries]
    click.echo(f"Price book {book.name} {book.version} ({book.currency}) at {show_time(instant)}")
    click.echo(text_table(["item", "selectors", "price", "unit", "confidence", "layer", "source"], rows,
                          right={2}), nl=False)


@prices_group.command("check")
@click.argument("files", nargs=-1, required=True, type=str)
def prices_check(files):
    """Validate price book FILES; list every problem with file and line (exit 2 if any).

    \b
    Examples:
      costkit prices check contract.yaml
      costkit prices check costkit/prices/*.yaml
    """
    problems = []
    for f in files:
        found = check_book(f)
        problems += found
        if not found:
            click.echo(f"{f}: ok")
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(2)


@click.command("demo")
@click.option("--out-dir", default="demo-output", show_default=True, type=click.Path(file_okay=False))
@quiet_option
def demo_cmd(out_dir):
    """Run the embedded example: forecast the bundled scenario, then audit a SYNTHETIC month end to end
    (a local IMM server on 127.0.0.1 and the real SDK, a synthetic bill in two console exports, planted
    discrepancies) and write the reports.

    \b
    Examples:
      costkit demo
      costkit demo --out-dir /tmp/costkit-demo -q
    """
    import importlib.resources
    scenario = Path(str(importlib.resources.files("costkit") / "data" / "demo-scenario.yaml"))
    model = estimate(scenario)
    info(forecast_text(model), nl=False)
    out = Path(out_dir) / "forecast.html"
    write_output(render_forecast(model, "html"), str(out))
    info(f"Forecast report: {out.resolve()}")

    from costkit.demo.audit import MONTH, run_demo_audit
    info(f"\nSYNTHETIC audit of {MONTH}: collecting from a local IMM server with a planted collector outage, "
         "importing a synthetic bill from two console exports (IMM lines, OSS lines) ...")
    audit = run_demo_audit(out_dir)
    info(audit.collection_line)
    for w in audit.warnings:
        click.echo(f"costkit: warning: {w}")
    info(audit.bill_line)
    info(f"Audit of {MONTH}: {audit.status}; planted discrepancies:")
    for name, found in audit.found.items():
        info(f"  {name}: {found or 'NOT FOUND'}")
    for path in (audit.html, audit.json, audit.csv):
        info(f"Audit report: {path.resolve()}")

    from costkit.demo.advise import run_demo_advise
    paths, advice, planted = run_demo_advise(out_dir, audit.store, audit.prices, MONTH)
    info(f"\nSYNTHETIC advice on {MONTH} (synthetic object facts, planted: "
               + ", ".join(f"{k} x{v}" for k, v in planted.items()) + f"): possible saving "
               f"{advice['possible_saving']['month']} {advice['currency']} a month")
    for f in advice["findings"]:
        s = f["saving"]["month"] if f["saving"] else "not priced"
        info(f"  {f['rule']}: {s}: {f['change']}")
    for path in paths:
        info(f"Advice report: {path.resolve()}")


def register(group: click.Group) -> None:
    for cmd in (estimate_cmd, prices_group, demo_cmd):
        group.add_command(cmd)

