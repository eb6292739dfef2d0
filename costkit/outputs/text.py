"""Text, JSON and CSV renderings of report models (plain dicts). HTML lives in costkit.report_html."""
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


def forecast_rows(model: dict) -> tuple[list[str], list[list]]:
    """Month x item rows with a TOTAL row; every row and column adds up to the model's totals."""
    keys = model["item_keys"]
    headers = ["month", "tasks", "billable_splices"] + keys + ["total"]
    rows = [[m["month"], m["tasks"], m["billable_splices"]] + [m["items"][k] for k in keys] + [m["total"]]
            for m in model["months"]]
    rows.append(["TOTAL", sum(m["tasks"] for m in model["months"]), model["billable_splices"]]
                + [model["items"][k] for k in keys] + [model["total"]])
    return headers, rows


def forecast_text(model: dict) -> str:
    """The forecast as a text report: headline, month x item table, warnings."""
    headers, rows = forecast_rows(model)
    short = [h.split(".", 1)[-1] for h in headers]
    cur = model["currency"]
    lines = [
        f"Forecast: {model['scenario']['name']}  (site {model['site']}, {cur}, "
        f"{model['scenario']['start']} + {model['scenario']['months']} months, "
        f"price book {model['price_book']['name']} {model['price_book']['version']})",
        f"Total {model['total']} {cur}; average month {model['average_month']} {cur}; "
        f"per 1,000 splices {model['cost_per_1000_splices'] or 'n/a'} {cur}",
        "",
        text_table(short, rows),
    ]
    if model["warnings"]:
        lines.append("Warnings:")
        lines += [f"- {w}" for w in model["warnings"]]
    return "\n".join(lines).rstrip() + "\n"


def forecast_csv(model: dict) -> str:
    return csv_text(*forecast_rows(model))
