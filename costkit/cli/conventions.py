"""Shell conventions shared by every command: group options after the command (`costkit tasks --store X`),
`-q/--quiet`, `--wide`, and `-` for stdout.

Group options are declared once here and added to each command that needs them; a command-level value
(after the command) wins over the group-level one (before it), which wins over the environment.
"""
from __future__ import annotations

import click

from costkit.outputs.text import set_table_width


def _set_store(ctx: click.Context, _param, value):
    if value is not None:
        root = ctx.find_root()
        root.ensure_object(dict)
        root.obj["store_path"] = value
    return value


def store_option(f):
    """`--store PATH` on a command: the same option as `costkit --store`, accepted after the command."""
    return click.option("--store", "_store", type=str, default=None, expose_value=False, is_eager=True,
                        callback=_set_store,
                        help="History store (DuckDB file); also before the command; env COSTKIT_STORE.")(f)


def _set_quiet(ctx: click.Context, _param, value):
    if value:
        root = ctx.find_root()
        root.ensure_object(dict)
        root.obj["quiet"] = True
    return value


def quiet_option(f):
    """`-q/--quiet`: no progress and no informational lines; warnings and errors still go to stderr."""
    return click.option("-q", "--quiet", "_quiet", is_flag=True, expose_value=False, callback=_set_quiet,
                        help="Print only warnings and errors (no progress, no summary).")(f)


def _set_wide(_ctx, _param, value):
    set_table_width(None if value else 100)
    return value


def wide_option(f):
    """`--wide`: tables show every column, however wide (default: fit 100 columns)."""
    return click.option("--wide", "_wide", is_flag=True, expose_value=False, callback=_set_wide,
                        help="Show every table column (default: fit 100 columns, dropping all-zero columns "
                             "and wrapping the rest).")(f)


def quiet(ctx: click.Context | None = None) -> bool:
    """Whether `-q` was given to the running command."""
    ctx = ctx or click.get_current_context()
    return bool((ctx.find_root().obj or {}).get("quiet"))


def info(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Echo an informational line (a summary, "wrote ...", progress) unless `-q` was given."""
    if not quiet():
        click.echo(text, err=err, nl=nl)


def stdout_or_path(out: str | None) -> str | None:
    """None (stdout) for a missing `--out` or `-`; the path otherwise."""
    return None if out in (None, "-") else out


__all__ = ["store_option", "quiet_option", "wide_option", "quiet", "info", "stdout_or_path"]
