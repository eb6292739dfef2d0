"""Renderings of a forecast's trend (`estimate --trend`): the low / expected / high totals per month in text,
CSV columns, and the HTML report's band chart; and the backtest table."""
from __future__ import annotations

import html

from costkit.outputs import charts
from costkit.outputs.text import csv_text, text_table

BANDS = ("low95", "low80", "expected", "high80", "high95")
_HEAD = {"low95": "low 95 %", "low80": "low 80 %", "expected": "expected", "high80": "high 80 %",
         "high95": "high 95 %"}


def trend_rows(model: dict) -> tuple[list[str], list[list]]:
    """Per month: tasks and total of each band (95 % and 80 % prediction intervals around the expected)."""
    headers = ["month"] + [f"tasks_{b}" for b in BANDS] + [f"total_{b}" for b in BANDS]
    rows = [[m["month"]] + [m["tasks"][b] for b in BANDS] + [m["total"][b] for b in BANDS]
            for m in model["trend"]["months"]]
    return headers, rows


def trend_text(model: dict) -> str:
    """The trend section of the text report."""
    t = model["trend"]
    cur = model["currency"]
    rows = [[m["month"]] + [f"{m['tasks'][b]:,}" for b in BANDS] + [m["total"][b] for b in BANDS]
            for m in t["months"]]
    heads = ["month"] + [f"tasks {_HEAD[b]}" for b in BANDS] + [f"{cur} {_HEAD[b]}" for b in BANDS]
    return (f"\nTrend: {t['method']}; fitted on {t['history_days']} days ({t['history_first_day']} .. "
            f"{t['history_last_day']}, {t['history_tasks']:,} tasks). Days in the history are observed; later "
            "days projected, with 80 % and 95 % prediction intervals priced through the engine.\n"
            + text_table(heads, rows, right=set(range(1, len(heads)))))


def trend_csv(model: dict, headers: list, rows: list) -> str:
    """The forecast CSV (its `headers` and `rows`) with the trend's band columns appended to each month row
    (blank on the TOTAL row)."""
    th, trows = trend_rows(model)
    by_month = {r[0]: r[1:] for r in trows}
    out = [r + by_month.get(r[0], [""] * (len(th) - 1)) for r in rows]
    return csv_text(headers + th[1:], out)


def band_chart(model: dict):
    """Inline SVG: the expected total per month as a line in a shaded 80 % and a lighter 95 % band."""
    months = model["trend"]["months"]
    labels = [m["month"] for m in months]
    val = {b: [float(m["total"][b]) for m in months] for b in BANDS}
    x = list(range(len(labels)))
    with charts.figure(10.0, 4.2) as fig:
        ax = fig.add_subplot()
        ax.fill_between(x, val["low95"], val["high95"], color="#9ecae1", alpha=0.45, label="95 % interval")
        ax.fill_between(x, val["low80"], val["high80"], color="#4292c6", alpha=0.55, label="80 % interval")
        ax.plot(x, val["expected"], color="#08306b", marker="o", markersize=3, linewidth=1.6, label="expected")
        ax.set_ylabel(f"Cost per month ({model['currency']})")
        top = max(val["high95"] + [0.0])
        ax.yaxis.set_major_formatter(charts._money_formatter(top))
        ax.set_ylim(0, top * 1.05 if top else 1)
        if labels:
            ax.set_xlim(-0.5, len(labels) - 0.5)
        charts._thin_x_labels(ax, labels)
        fig.legend(loc="outside lower center", ncol=3, frameon=False)
        return charts.to_svg(fig)


def trend_html(model: dict, page: str) -> str:
    """`page` (the forecast report) with a trend section (band chart and table) before the month x item table."""
    t = model["trend"]
    heads, rows = trend_rows(model)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    section = (f'<section id="trend"><h2>Trend and prediction intervals</h2>'
               f"<p>{html.escape(t['method'])}, fitted on {t['history_days']} days "
               f"({html.escape(t['history_first_day'])} .. {html.escape(t['history_last_day'])}). The band "
               "shows the 80 % and 95 % prediction intervals of each month's total, priced through the "
               f'engine.</p><figure class="chart">{band_chart(model)}</figure>'
               f'<div class="table-wrap"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'
               "</section>\n")
    marker = '<section id="monthly">'
    if marker in page:
        return page.replace(marker, section + marker, 1)
    return page.replace("</body>", section + "</body>", 1)


def backtest_text(result: dict) -> str:
    """The backtest table: forecast vs priced actuals per held-out month, error and whether inside 80 %."""
    cur = result["currency"]
    rows = [[m["month"], f"{m['tasks_actual']:,}", f"{m['tasks_expected']:,}", m["actual"], m["expected"],
             f"{m['low80']} .. {m['high80']}", m["error"], m["error_pct"], "yes" if m["inside80"] else "NO"]
            for m in result["months"]]
    head = ["month", "tasks", "tasks forecast", f"actual {cur}", f"forecast {cur}", "80 % interval",
            "error", "error %", "inside 80 %"]
    lines = [f"Backtest: fitted on {result['fit_first_day']} .. {result['fit_last_day']} "
             f"({result['fit_days']} days), cut-off {result['cutoff']}; {result['method']}",
             text_table(head, rows, right={1, 2, 3, 4, 6, 7}).rstrip(),
             f"{result['inside80']} of {len(result['months'])} held-out months inside the 80 % interval; "
             f"mean absolute error {result['mape']} %."]
    return "\n".join(lines) + "\n"


__all__ = ["trend_rows", "trend_text", "trend_csv", "band_chart", "trend_html", "backtest_text"]
