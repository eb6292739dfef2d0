"""The forecast model as text: a table report, CSV, JSON or HTML (`render_forecast`).

A forecast with unknown prices shows each unpriced item as "price needed" with its quantity, and labels
every total "excluding ..." (README, "Forecast with an unknown price").
"""
from __future__ import annotations

from datetime import datetime

from costkit.core.timeutil import SHANGHAI
from costkit.outputs.text import csv_text, text_table, to_json

PRICE_NEEDED = "price needed"


def _local(iso) -> str:
    if not iso:
        return "open"
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M +08:00")


def _cell(v) -> str:
    return PRICE_NEEDED if v is None else v


def _sel(selectors: dict) -> str:
    return "[" + ",".join(f"{k}={v}" for k, v in selectors.items()) + "]" if selectors else ""


def forecast_rows(model: dict, *, mark: str | None = None) -> tuple[list[str], list[list]]:
    """Month x item rows with a TOTAL row; every row and column adds up to the model's totals (cells of an
    item whose price is needed read "price needed" and the totals leave them out, as their labels say)."""
    keys = model["item_keys"]
    label = model.get("total_label") or ""
    label = mark if label and mark is not None else label
    headers = ["month", "tasks", "billable_splices"] + keys + ["total" + (f" {label}" if label else "")]
    rows = [[m["month"], m["tasks"], m["billable_splices"]] + [_cell(m["items"][k]) for k in keys] + [m["total"]]
            for m in model["months"]]
    rows.append(["TOTAL" + (f" {label}" if label else ""), sum(m["tasks"] for m in model["months"]),
                 model["billable_splices"]] + [_cell(model["items"][k]) for k in keys] + [model["total"]])
    return headers, rows


def _missing_lines(model: dict) -> list[str]:
    lines = []
    if model.get("missing_prices"):
        lines.append("Price needed (left out of every total; costkit does not guess it):")
        for m in model["missing_prices"]:
            sel = ", ".join(f"{k}={v}" for k, v in m["selectors"].items())
            lines.append(f"- {m['item']}{' (' + sel + ')' if sel else ''}: {m['quantity']} {m['quantity_words']} "
                         f"from {_local(m['from'])} until {_local(m['until'])}; price needed in {m['currency']} "
                         f"per {m['unit']}. Entry to paste under prices: (or give --price {m['item']}=VALUE/"
                         f"{m['unit'].replace(' ', '')}):")
            lines += ["    " + ln for ln in m["yaml"].splitlines()]
        lines.append("")
    return lines


def _sweep_lines(model: dict) -> list[str]:
    cur = model["currency"]
    lines = []
    for s in model.get("price_sweep") or []:
        pts = ", ".join(f"{p['price']} -> {p['total']}" for p in s["points"])
        head = f"- {s['item']}{_sel(s['selectors'])} ({s['why']}), " \
               f"{cur} per {s['unit']} -> total {cur}: {pts}"
        if s.get("break_even"):
            be = s["break_even"]
            head += f"; break-even {be['price']}" if be["price"] is not None else f"; no break-even: {be['reason']}"
        lines.append(head)
    return (["Price sweep (horizon total at several prices, others as above):"] + lines + [""]) if lines else []


def _price_lines(model: dict) -> list[str]:
    order = " > ".join(f"{x['layer']} ({x['from']})" for x in model.get("price_layers") or [])
    lines = [f"Prices used (precedence {order}):"] if order else ["Prices used:"]
    for p in model.get("prices") or []:
        sel = ",".join(f"{k}={v}" for k, v in (p.get("selectors") or {}).items())
        when = "" if not (p.get("effective_from") or p.get("effective_to")) else \
            f" {_local(p.get('effective_from')) if p.get('effective_from') else 'always'}" \
            f"..{_local(p.get('effective_to'))}"
        lines.append(f"- {p['item']}{'[' + sel + ']' if sel else ''} {p['price']} {p['currency']}/{p['unit']}{when}"
                     f" [{p['layer']}, {p['confidence']}] {p['source']}")
    return lines + [""]


def forecast_text(model: dict) -> str:
    """The forecast as a text report: headline, month x item table, prices needed, sweep, budget, prices
    and their layers, warnings."""
    headers, rows = forecast_rows(model, mark="*")
    short = [h.split(".", 1)[-1] for h in headers]
    cur = model["currency"]
    label = f" {model['total_label']}" if model.get("total_label") else ""
    lines = [
        f"Forecast: {model['scenario']['name']}  (site {model['site']}, {cur}, "
        f"{model['scenario']['start']} + {model['scenario']['months']} months, "
        f"price book {model['price_book']['name']} {model['price_book']['version']})",
        f"Total {model['total']} {cur}{label}; average month {model['average_month']} {cur}; "
        f"per 1,000 splices {model['cost_per_1000_splices'] or 'n/a'} {cur}",
        "",
        text_table(short, rows),
    ]
    if label:
        lines[-1] += f"* totals{label}\n"
    lines += _missing_lines(model) + _sweep_lines(model)
    if model.get("budget"):
        lines += [f"Budget: {model['budget']['message']}", ""]
    lines += _price_lines(model)
    if model["warnings"]:
        lines.append("Warnings:")
        lines += [f"- {w}" for w in model["warnings"]]
    return "\n".join(lines).rstrip() + "\n"


def forecast_csv(model: dict) -> str:
    return csv_text(*forecast_rows(model))


def render_forecast(model: dict, fmt: str) -> str:
    """The forecast model as `fmt` text: table, json, csv or html."""
    if fmt == "json":
        return to_json(model)
    if model.get("trend"):   # estimate --trend: the bands beside the expected forecast
        from costkit.outputs import trend
        if fmt == "csv":
            return trend.trend_csv(model, *forecast_rows(model))
        if fmt == "html":
            from costkit.outputs.html import render_forecast_html
            return trend.trend_html(model, render_forecast_html(model))
        return forecast_text(model) + trend.trend_text(model)
    if fmt == "csv":
        return forecast_csv(model)
    if fmt == "html":
        from costkit.outputs.html import render_forecast_html
        return render_forecast_html(model)
    return forecast_text(model)


__all__ = ["PRICE_NEEDED", "forecast_csv", "forecast_rows", "forecast_text", "render_forecast"]
