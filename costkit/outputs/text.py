"""Text, JSON and CSV renderings of report models (plain dicts). The forecast's are in costkit.outputs.forecast,
HTML in costkit.outputs.html."""
from __future__ import annotations

import contextvars
import io
import json
import re
import unicodedata

from costkit.core import csvsafe


def to_json(model: dict) -> str:
    """The model as pretty JSON (UTF-8 text; money stays as decimal strings)."""
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


# The width tables fit by default (`--wide`: None, no limit); set per command by the CLI.
_TABLE_WIDTH: contextvars.ContextVar = contextvars.ContextVar("table_width", default=100)
_ZERO = re.compile(r"^[-+]?0*(\.0*)?$")


def set_table_width(width: int | None) -> None:
    """The width (in terminal columns) that text tables fit from now on; None: no limit (`--wide`)."""
    _TABLE_WIDTH.set(width)


def display_width(text: str) -> int:
    """Terminal columns of `text`: east-asian wide and full-width characters count 2, combining marks 0."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def _render(cells: list[list[str]], right: set[int], rule: bool) -> str:
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(cells[0]))]

    def fmt(r):
        return "  ".join(_pad(c, widths[i], i in right) for i, c in enumerate(r)).rstrip()
    out = [fmt(cells[0])] + (["  ".join("-" * w for w in widths)] if rule else [])
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out) + "\n"


def _clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    while display_width(text) > width - 1:
        text = text[:-1]
    return text + "…"


def _total_width(cells: list[list[str]], cols: list[int]) -> int:
    return sum(max(display_width(r[i]) for r in cells) for i in cols) + 2 * (len(cols) - 1)


def text_table(headers: list[str], rows: list[list], *, right: set[int] | None = None, rule: bool = True,
               width: int | None | bool = True) -> str:
    """An aligned text table (display width: a Chinese character takes 2 columns); columns in `right`
    (default: all but the first) are right-aligned.

    It fits `width` terminal columns (default: the CLI's, 100 unless `--wide`): beyond it, columns whose every
    cell is zero or empty are dropped (and named under the table), then the remaining columns are wrapped into
    blocks that each repeat the first column."""
    right = set(range(1, len(headers))) if right is None else right
    limit = _TABLE_WIDTH.get() if width is True else width
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    cols = list(range(len(headers)))
    if limit is None or not rows or _total_width(cells, cols) <= limit:
        return _render(cells, right, rule)
    dropped = [i for i in cols[1:] if all(_ZERO.match(r[i].strip()) for r in cells[1:])]
    cols = [i for i in cols if i not in dropped]
    blocks, block = [], [cols[0]]
    for i in cols[1:]:
        if len(block) > 1 and _total_width(cells, block + [i]) > limit:
            blocks.append(block)
            block = [cols[0]]
        block.append(i)
    blocks.append(block)
    for b in blocks:   # one column still too wide: its long cells are cut (`--wide` shows them whole)
        room = limit - _total_width(cells, b[:-1]) - 2
        if _total_width(cells, b) > limit and room > 1:
            for r in cells[1:]:
                r[b[-1]] = _clip(r[b[-1]], room)
    parts = [_render([[r[i] for i in b] for r in cells], {j for j, i in enumerate(b) if i in right}, rule)
             for b in blocks]
    text = "\n".join(parts)
    if dropped:
        text += f"(all-zero columns not shown: {', '.join(cells[0][i] for i in dropped)}; --wide shows every column)\n"
    return text


def csv_text(headers: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()
