"""The advice model (costkit.advise.report, a finished dict) as a text table, JSON, CSV or one HTML file."""
from __future__ import annotations

import io
from decimal import Decimal

from costkit.core import csvsafe
from costkit.outputs.text import text_table, to_json

CSV_COLUMNS = ["period", "rank", "rule", "change", "tasks", "objects", "buckets", "today", "after",
               "saving_period", "saving_month", "saving_year", "one_time", "currency", "confidence",
               "counts_in_total", "needs", "risk"]


def _s(f: dict, key: str) -> str:
    return "" if f["saving"] is None else f["saving"][key]


def advise_csv(model: dict) -> str:
    """One row per finding, in the report's order (by saving), then a `total` row (the possible saving)."""
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i, f in enumerate(model["findings"], 1):
        ev = f["evidence"]
        w.writerow([model["period"]["label"], i, f["rule"], f["change"], ev["tasks"], ev["objects"],
                    " ".join(ev["buckets"]), f["today"], "" if f["after"] is None else f["after"],
                    _s(f, "period"), _s(f, "month"), _s(f, "year"), f["one_time"]["total"], model["currency"],
                    f["confidence"]["level"], str(f["counts_in_total"]).lower(), " ".join(f["needs"]), f["risk"]])
    ps = model["possible_saving"]
    w.writerow([model["period"]["label"], "", "total", "possible saving (counted changes together)", "", "", "",
                "", "", ps["period"], ps["month"], ps["year"], "", model["currency"], "", "", "", ""])
    return buf.getvalue()


def advise_text(model: dict) -> str:
    """A table of the findings by saving, then each change with its evidence, risk and what it needs."""
    cur = model["currency"]
    ps = model["possible_saving"]
    out = [f"Advice for {model['period']['label']} ({model['site']}, {cur}): month total {model['month_total']}, "
           f"{model['tasks']} tasks; possible saving {ps['period']} ({ps['year']} a year) from "
           f"{len(ps['findings'])} finding(s)\n"]
    if not model["findings"]:
        out.append("No findings.\n")
        return "".join(out)
    rows = [[i, f["rule"], f["evidence"]["tasks"], f["today"], f["after"] or "-", _s(f, "month") or "-",
             _s(f, "year") or "-", f["one_time"]["total"], f["confidence"]["level"]]
            for i, f in enumerate(model["findings"], 1)]
    out.append(text_table(["#", "rule", "tasks", "today", "after", "saving/month", "saving/year", "one-time",
                           "prices"], rows, right={0, 2, 3, 4, 5, 6, 7}))
    for i, f in enumerate(model["findings"], 1):
        out.append(f"\n{i}. {f['change']}\n   evidence: {f['evidence']['summary']}; buckets: "
                   f"{', '.join(f['evidence']['buckets']) or '-'}\n   risk: {f['risk']}\n")
        for a in f["adjustments"]:
            out.append(f"   adjustment: {a['label']}: {a['amount']} {cur}\n")
        if f["note"]:
            out.append(f"   note: {f['note']}\n")
        if f["needs"]:
            out.append(f"   needs setting: {', '.join(f['needs'])}\n")
    return "".join(out)


def _f(text) -> float:
    """A decimal string as a float, for chart geometry only."""
    return float(Decimal(text)) if text not in (None, "") else 0.0


def advise_html(model: dict, *, generated_at: str | None = None) -> str:
    """One self-contained HTML page: findings by saving, a today-against-after chart per finding (inline SVG,
    stacked by item), the evidence tables; autoescaped, no scripts."""
    from costkit.outputs import charts
    from costkit.outputs.html import generated_at_now, render_html
    cur = model["currency"]
    views = []
    for f in model["findings"]:
        chart = None
        if f["after"] is not None:
            chart = charts.stacked_bars(["today", "after the change"],
                                        {r["item"]: [_f(r["today"]), _f(r["after"])] for r in f["items"]},
                                        ylabel=f"Charges of the affected tasks ({cur})")
        views.append({"f": f, "chart": chart})
    return render_html("advise.html.j2", {"model": model, "views": views,
                                          "generated_at": generated_at or generated_at_now()})


def render_advise(model: dict, fmt: str) -> str:
    """The advice model as `table`, `json`, `csv` or `html` text."""
    if fmt == "json":
        return to_json(model)
    if fmt == "csv":
        return advise_csv(model)
    if fmt == "html":
        return advise_html(model)
    return advise_text(model)


__all__ = ["render_advise", "advise_csv", "advise_text", "advise_html", "CSV_COLUMNS"]
