"""The `costkit` command: a thin layer over the library.

Every command module under `costkit.commands` has `register(group)`. Library errors
(`costkit.errors.CostkitError`) become one line on stderr and their exit status:
0 ok, 1 runtime failure, 2 bad input, 3 audit variance out of tolerance.
"""
from __future__ import annotations

import importlib
import sys

import click

from costkit.core.errors import CostkitError

# Each module registers its commands on the group; add a module here to add commands.
COMMAND_MODULES = [
    "costkit.cli.forecast",
    "costkit.cli.collect",
    "costkit.cli.cost",
    "costkit.cli.history",
    "costkit.cli.bills",
    "costkit.cli.audit",
    "costkit.cli.listen",
    "costkit.cli.advise",
    "costkit.cli.render",
    "costkit.cli.scenario",
]


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CostkitError as e:
            click.echo(f"costkit: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("costkit: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_path", envvar="COSTKIT_STORE", default="costkit.duckdb", show_default=True,
              help="History store (DuckDB file); env COSTKIT_STORE.")
@click.version_option(package_name="costkit")
@click.pass_context
def main(ctx, store_path):
    """What an IMM image-splicing workload costs, and whether the bill is right."""
    ctx.ensure_object(dict)
    ctx.obj["store_path"] = store_path


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
