"""CSV cells safe to open in a spreadsheet (OWASP "CSV injection").

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice
and Sheets as a formula (a tag `=cmd|' /C calc'!A0`). Every CSV costkit writes passes its cells through
`safe_cell`, which prefixes such text with `'`. Numbers are never changed, including numbers written as
text (`-0.50`, `1.5E-7`): money must stay a number. `raw_csv()` turns the rule off for one block (FOCUS
export `--csv-raw`, for machines). Parquet and JSON are written verbatim.
"""
from __future__ import annotations

import contextvars
import csv
import re
from contextlib import contextmanager

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_RAW = contextvars.ContextVar("costkit_csv_raw", default=False)


def safe_cell(value):
    """`value` with a `'` in front when it is text that a spreadsheet would run as a formula; every other
    value (numbers, numeric text, None, other text) unchanged."""
    if isinstance(value, str) and value[:1] in TRIGGERS and not _RAW.get() and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(row):
    """A row (list or tuple) with every cell through `safe_cell`."""
    return [safe_cell(v) for v in row]


def writer(fh, **kwargs):
    """A csv.writer whose writerow/writerows neutralise formula cells."""
    return _SafeWriter(csv.writer(fh, **kwargs))


class _SafeWriter:
    def __init__(self, inner):
        self._inner = inner

    def writerow(self, row):
        return self._inner.writerow(safe_row(row))

    def writerows(self, rows):
        return self._inner.writerows(safe_row(r) for r in rows)


class DictWriter(csv.DictWriter):
    """csv.DictWriter whose rows (not the header) neutralise formula cells."""

    def writerow(self, rowdict):
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts):
        return super().writerows({k: safe_cell(v) for k, v in r.items()} for r in rowdicts)


@contextmanager
def raw_csv(enabled: bool = True):
    """Within the block, `safe_cell` leaves cells as they are (when `enabled`)."""
    token = _RAW.set(bool(enabled))
    try:
        yield
    finally:
        _RAW.reset(token)


def sql_safe(column: str) -> str:
    """A DuckDB expression that applies `safe_cell` to a VARCHAR column (for COPY ... TO csv)."""
    q = '"' + column.replace('"', '""') + '"'
    return (f"CASE WHEN left({q}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
            f"AND NOT regexp_full_match({q}, '{_NUMBER.pattern}') THEN '''' || {q} ELSE {q} END")
