"""Path options (`--out`, `--store`) checked before any long work starts: one line per problem.

`costkit: error: --out: cannot write PATH: Permission denied`, never click's usage text or a traceback
after the work was done. Click's own `Path(dir_okay=False)` checks print three lines of usage, so path
options are plain strings and these checks run first thing in each command.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import click

from costkit.core.errors import BadInput


def _refuse(option: str, verb: str, path, code: int, extra: str = "") -> None:
    raise BadInput(f"cannot {verb} {path}: {os.strerror(code)}{extra}", field=option)


def _existing_ancestor(p: Path) -> Path:
    """The nearest ancestor of `p` (or `p` itself) that exists; a file there means "Not a directory"."""
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable(path, option: str = "--out", *, verb: str = "write") -> str | None:
    """`path` when a file can be written there (created with its folders, or replaced); None for None and
    for `-` (stdout).

    Refused: a directory; a parent that is a file; a folder we may not write; an existing read-only file
    (no write bit: it is not silently replaced; remove it or make it writable).
    """
    if path is None or path == "-":
        return None
    p = Path(path)
    if p.is_dir():
        _refuse(option, verb, path, errno.EISDIR)
    if p.exists():
        mode = p.stat().st_mode
        if not stat.S_ISREG(mode):
            _refuse(option, verb, path, errno.EINVAL, " (not a regular file)")
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(p, os.W_OK):
            _refuse(option, verb, path, errno.EACCES, " (the file is read-only)")
    base = _existing_ancestor(p.parent if str(p.parent) else Path("."))
    if not base.is_dir():
        _refuse(option, verb, path, errno.ENOTDIR, f" ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        _refuse(option, verb, path, errno.EACCES)
    return str(path)


def check_store(path, *, create: bool) -> str:
    """The store path when it can be opened (and, with `create`, made); BadInput naming --store if not."""
    p = Path(path)
    if p.is_dir():
        _refuse("--store", "use", path, errno.EISDIR)
    if p.exists():
        if not os.access(p, os.R_OK):
            _refuse("--store", "use", path, errno.EACCES)
        return str(path)
    if not create:
        return str(path)  # Store.open names the missing store
    base = _existing_ancestor(p.parent if str(p.parent) else Path("."))
    if not base.is_dir():
        _refuse("--store", "create", path, errno.ENOTDIR, f" ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        _refuse("--store", "create", path, errno.EACCES)
    return str(path)


def store_path(ctx: click.Context, *, create: bool = True) -> str:
    """The checked `--store` of the running command (see `check_store`)."""
    return check_store(ctx.find_root().obj["store_path"], create=create)


OUT_HELP = "Write here instead of stdout (`-`: stdout)."
