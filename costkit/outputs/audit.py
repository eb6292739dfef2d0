"""The audit model (costkit.audit.build_audit, a finished dict) rendered as JSON, CSV or one HTML file."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from costkit.core import csvsafe
from costkit.core.errors import BadInput

CSV_COLUMNS = ["scope", "day", "item", "unit", "billed_quantity", "expected_quantity", "quantity_delta",
               "covered_by_resource_plan", "billed_gross", "invoice_discount", "deducted_by_coupons",
               "deducted_by_cash_coupons", "deducted_by_savings_plan", "deducted_by_resource_package", "other_deduction",
               "billed_net", "expected", "variance", "variance_pct", "not_splicing", "status", "causes"]
_FIGURES = CSV_COLUMNS[4:-2]


def audit_csv(model: dict) -> str:
    """One row per item for the month (scope=month) and per day x item (scope=day); causes as k=amount."""
    buf = io.StringIO()
    w = csvsafe.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def causes(r):
        return "; ".join(f"{c['cause']}={c['amount']}" for c in r["causes"])

    for r in model["items"]:
        w.writerow(["month", model["month"], r["item"], r["unit"], *[r[k] for k in _FIGURES],
                    r["status"], causes(r)])
    for r in model["days"]:
        w.writerow(["day", r["day"], r["item"], r["unit"], *["" if r[k] is None else r[k] for k in _FIGURES],
                    "", causes(r)])
    return buf.getvalue()


def _f(text) -> float:
    """A decimal string as a float, for chart geometry only."""
    return float(Decimal(text)) if text not in (None, "") else 0.0


def bridge_chart_rows(bridge: dict) -> list[dict]:
    """The bars of a bridge's waterfall: expected, each claimed cause, then the billed amount attributable
    to splicing (the billed net when nothing is unclaimed). The unclaimed whole-bucket steps are left to the
    bridge's table: drawn on the same axis they would flatten every cause to a hairline."""
    from costkit.outputs.html import cause_name, fmt_number
    unclaimed = any(not s["claimed"] for s in bridge["steps"])
    rows = [{"label": "expected", "start": 0.0, "end": _f(bridge["expected"]), "total": True,
             "text": fmt_number(bridge["expected"])}]
    for s in bridge["steps"]:
        if s["claimed"]:
            amount = s["amount"] if s["amount"].startswith("-") or not Decimal(s["amount"]) else "+" + s["amount"]
            rows.append({"label": cause_name(s["cause"]), "start": _f(s["from"]), "end": _f(s["to"]),
                         "total": False, "text": fmt_number(amount)})
    rows.append({"label": "billed, splicing share" if unclaimed else "billed net", "start": 0.0,
                 "end": _f(bridge["attributable"]), "total": True, "text": fmt_number(bridge["attributable"])})
    return rows


def _bridge_charts(model: dict) -> dict:
    """SVG waterfalls: `month` and one per item key (None for a bridge without a claimed non-zero cause)."""
    from costkit.outputs import charts
    xlabel = f"Amount ({model['currency']})"
    bridge = model.get("bridge") or {"month": None, "items": []}

    def draw(b):
        return charts.waterfall(bridge_chart_rows(b), xlabel=xlabel) if b and any(
            s["claimed"] and Decimal(s["amount"]) for s in b["steps"]) else None
    return {"month": draw(bridge["month"]), **{b["item"]: draw(b) for b in bridge["items"]}}


def audit_charts(model: dict) -> dict:
    """Inline SVG charts: daily expected vs billed splicing cost (band, anomalies), whole-bucket OSS per day,
    the unit-cost trend, top projects and tags, and the bridges."""
    from costkit.outputs import charts
    cur = model["currency"]
    dl = model["daily"]
    days = [d["day"][5:] for d in dl]
    daily = charts.band_chart(days, [_f(d["expected"]) for d in dl], [_f(d["attributable"]) for d in dl],
                              [_f(d["band_low"]) for d in dl], [_f(d["band_high"]) for d in dl],
                              [d["anomaly"] for d in dl], ylabel=f"Cost per day ({cur})",
                              actual_label="billed, attributable to splicing") if len(days) >= 2 else None
    oss_days = model.get("daily_oss") or []
    oss = charts.line_chart([d["day"][5:] for d in oss_days], {
        "OSS billed net (whole buckets)": [_f(d["billed_net"]) for d in oss_days],
        "of which splicing share": [_f(d["splicing_share"]) for d in oss_days],
    }, ylabel=f"OSS per day ({cur})", height_in=2.8) if len(oss_days) >= 2 and any(
        _f(d["billed_net"]) for d in oss_days) else None
    tr = model["trend"]
    series = {"expected, all items": "expected_per_1000", "expected, ImageSplicing": "expected_splicing_per_1000",
              "billed, ImageSplicing net": "billed_splicing_per_1000"}
    labels = [t["month"] + (" (partial)" if t.get("partial") else "") for t in tr]
    trend = charts.line_chart(labels, {
        label: [None if t[key] is None else _f(t[key]) for t in tr] for label, key in series.items()
    }, ylabel=f"Cost per 1,000 splices ({cur})") if len(tr) >= 2 else None
    top = {}
    for key in ("projects", "tags"):
        rows = model["top"][key]
        top[key] = charts.stacked_bars([r["label"] for r in rows], {"expected cost": [_f(r["amount"]) for r in rows]},
                                       ylabel=f"Expected cost ({cur})") if len(rows) >= 2 else None
    return {"daily": daily, "oss": oss, "trend": trend, "projects": top["projects"], "tags": top["tags"],
            "bridge": _bridge_charts(model)}


def render_audit_html(model: dict, *, generated_at: str | None = None) -> str:
    """The audit report: one self-contained HTML file (inline CSS and SVG charts; everything escaped)."""
    from costkit.outputs.html import _stylesheet, generated_at_now, render_html
    weeks, week = [], []
    calendar = model["coverage"]["calendar"]
    if calendar:
        lead = date.fromisoformat(calendar[0]["day"]).weekday()
        week = [None] * lead
        for c in calendar:
            week.append(c)
            if len(week) == 7:
                weeks.append(week)
                week = []
        if week:
            weeks.append(week + [None] * (7 - len(week)))
    context = {"css": _stylesheet("audit.css"), "model": model, "m": model, "k": model["kpis"], "cur": model["currency"],
               "charts": audit_charts(model), "weeks": weeks,
               "generated_at": generated_at or generated_at_now(), "costkit_version": model["costkit_version"]}
    return render_html("audit.html.j2", context)


def render_audit(model: dict, fmt: str, *, generated_at: str | None = None) -> str:
    """The audit model as `fmt` text: json, csv or html (UTF-8 text)."""
    from costkit.outputs.text import to_json
    if fmt == "json":
        return to_json(model)
    if fmt == "csv":
        return audit_csv(model)
    if fmt == "html":
        return render_audit_html(model, generated_at=generated_at)
    raise BadInput(f"unknown format {fmt!r} (html, json or csv)", field="--format")
