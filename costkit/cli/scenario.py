"""Commands: scenario from-history (calibrate a scenario from the store), scenario backtest."""
from __future__ import annotations

import click

from costkit.cli.paths import check_writable, store_path
from costkit.core.timeutil import parse_month

SETTINGS_OPTION = click.option("--settings", "settings_file", envvar="COSTKIT_SETTINGS", type=str,
                               help="Settings YAML (defaults for unknown objects, usage model, buckets); "
                                    "env COSTKIT_SETTINGS.")


@click.group("scenario")
def scenario_group():
    """Scenarios measured from the history store, and how well their trend forecasts."""


@scenario_group.command("from-history")
@click.option("--project", "projects", multiple=True, help="Only this IMM project (repeatable; default: all).")
@click.option("--since", help="Window start: ISO 8601 with offset, or YYYY-MM-DD (Asia/Shanghai); default: the "
                              "first day with tasks.")
@click.option("--until", help="Window end (exclusive); default: the day after the last day with tasks.")
@click.option("--start", "start", help="First month of the scenario, YYYY-MM (default: the window's first).")
@SETTINGS_OPTION
@click.option("--out", help="Write the scenario here instead of stdout.")
@click.pass_context
def from_history_cmd(ctx, projects, since, until, start, settings_file, out):
    """Write a scenario measured from the stored tasks and object facts: volume, hourly profile, failure
    rate, and a mix of task kinds (sizes, classes, lifetimes), each value commented with what it was measured
    from. `estimate` of it is comparable with `cost` of the same month (storage carried in from targets
    written before the window is not part of a scenario)."""
    from costkit.engine.calibrate import calibrate
    from costkit.model.scenario import load_scenario_text
    from costkit.model.settings import load_settings
    from costkit.outputs.files import write_output
    from costkit.outputs.scenario_yaml import render_scenario_yaml
    from costkit.store.db import Store

    check_writable(out)
    start_month = parse_month(start, field="--start") if start else None
    settings = load_settings(settings_file)
    with Store.open(store_path(ctx, create=False), create=False) as store:
        cal = calibrate(store, projects=projects, since=since, until=until, start_month=start_month,
                        settings=settings)
    text = render_scenario_yaml(cal)
    load_scenario_text(text, out or "scenario")   # what we write, `estimate` reads
    write_output(text, out)
    click.echo(f"costkit: note: {cal.notes[1]}", err=True)
    if out:
        click.echo(f"wrote {out}", err=True)


@scenario_group.command("backtest")
@click.option("--holdout-months", "holdout", type=int, default=1, show_default=True,
              help="Complete months at the end of the history to forecast, 1..3.")
@click.option("--prices", "prices_file", type=str, help="User price file on top of the bundled book.")
@SETTINGS_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def backtest_cmd(ctx, holdout, prices_file, settings_file, fmt):
    """Fit the scenario and the trend on the history before the last HOLDOUT complete months, forecast those
    months, and compare with their priced actuals: error per month and whether each fell inside the 80 %
    interval."""
    from costkit.engine.backtest import backtest
    from costkit.model.settings import load_settings
    from costkit.outputs.text import to_json
    from costkit.outputs.trend import backtest_text
    from costkit.store.db import Store

    settings = load_settings(settings_file)
    with Store.open(store_path(ctx, create=False), create=False) as store:
        result = backtest(store, holdout=holdout, settings=settings, prices_file=prices_file)
    click.echo(to_json(result) if fmt == "json" else backtest_text(result), nl=False)


def register(group: click.Group) -> None:
    group.add_command(scenario_group)
