"""Text, JSON and CSV renderings of report models (plain dicts). The forecast's are in costkit.outputs.forecast,
HTML in costkit.outputs.html."""
from __future__ import annotations

import io
import json

from costkit.core import csvsafe


def to_json(model: dict) -> str:
    """The model as pretty JSON (UTF-8 text; money stays as decimal strings)."""
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def text_table(headers: list[str], rows: list[list], *, right: set[int] | None = None) -> str:
    """A plain aligned text table; columns in `right` (default: all but the first) are right-aligned."""
    right = set(range(1, len(headers))) if right is None else right
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out) + "\n"


def csv_text(headers: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()
