"""Self-contained HTML reports rendered with Jinja2 from the templates in `reports/` (costkit.reports).

Every value is autoescaped, including text from scenarios, price files and warnings. The stylesheet is
inlined and charts are inline SVG (costkit.outputs.charts), so a report makes no external fetches and carries
no script. Money is printed from the model's decimal strings; floats are used only to draw charts. Times are
shown in UTC+8 (Asia/Shanghai), the billing time zone.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from costkit.core.timeutil import SHANGHAI
from costkit.core.money import exact_decimals, round_half_up_int, to_fraction
from costkit.core.version import __version__
from costkit.outputs import charts

_DECIMAL = re.compile(r"^(-?)(\d+)(\.\d+)?$")
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# Trailing punctuation is usually the sentence around a URL, not part of it.
_URL_TRAIL = ".,;:)]}!?"


def fmt_number(value) -> str:
    """A decimal string (or int) with thousands separators and its decimals kept as given.

    "12345.60" -> "12,345.60". None -> "—". Anything that is not a plain decimal is returned as text (the
    template still escapes it). No float conversion, so money keeps its exact 2 places.
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value).strip()
    m = _DECIMAL.match(text)
    if not m:
        return text
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    return f"{sign}{int(whole):,}{frac}"


def fmt_value(value) -> str:
    """An assumption or selector value as one line of text: lists joined by ", ", dicts as "k: v"."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    return str(value)


def safe_url(text) -> str | None:
    """`text` if it is an absolute http(s) URL with a host and no whitespace or control characters."""
    if not isinstance(text, str) or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def link_segments(text) -> list[tuple[str, str | None]]:
    """Split source text into (text, href) pieces: href is set only for http(s) URLs, else None.

    The template escapes both parts; only vetted http(s) URLs ever become an href.
    """
    if text is None:
        return [("—", None)]
    text = str(text)
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAIL)
        end = m.start() + len(url)
        href = safe_url(url)
        if href is None:
            continue
        if m.start() > pos:
            out.append((text[pos:m.start()], None))
        out.append((url, href))
        pos = end
    if pos < len(text) or not out:
        out.append((text[pos:], None))
    return out


# Cause codes of the audit model as a reader says them; the JSON keeps the codes.
CAUSE_NAMES = {
    "coverage_gap": "coverage gap",
    "before_cutover": "before the cutover",
    "failed_billed": "failed tasks billed",
    "day_boundary": "day boundary",
    "usage": "usage difference",
    "price": "price difference",
    "discount": "invoice discount",
    "coupons": "coupons",
    "resource_plan": "resource plan",
    "rounding": "rounding",
    "not_splicing": "not splicing",
    "coverage_gap_unclaimed": "OSS use on gap days",
}
# Price confidences that mean "not a real price": a report built on one carries the illustrative banner.
ILLUSTRATIVE = ("illustrative", "synthetic")


def cause_name(code) -> str:
    """The reader's words for an audit cause code ("coverage_gap" -> "coverage gap"); unknown codes get their
    underscores turned into spaces."""
    return CAUSE_NAMES.get(str(code), str(code).replace("_", " "))


def local_time(value) -> str:
    """An ISO 8601 instant as "YYYY-MM-DD HH:MM +08:00" (Asia/Shanghai, to the minute); None -> "—".

    Text that is not an aware ISO instant (a date, "x") is returned unchanged.
    """
    if value is None or value == "":
        return "—"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        return str(value)
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M +08:00")


def dec_sum(values) -> str:
    """The exact sum of decimal strings (None and unparsable values count as 0), as a string keeping the
    largest number of decimals given (e.g. "0.01" + "-0.03" -> "-0.02")."""
    total, places = Decimal(0), 0
    for v in values:
        d = _dec(v)
        if d is None or not d.is_finite():
            continue
        total += d
        places = max(places, -d.as_tuple().exponent if d.as_tuple().exponent < 0 else 0)
    return str(total.quantize(Decimal(1).scaleb(-places)))


def illustrative_prices(prices) -> list[dict]:
    """The price rows whose confidence marks them as not real (illustrative or synthetic)."""
    return [p for p in prices or [] if str(p.get("confidence") or "").lower() in ILLUSTRATIVE]


def _dec(text) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _chart_float(text) -> float:
    """A decimal string as float, for chart geometry only."""
    d = _dec(text)
    return float(d) if d is not None and d.is_finite() else 0.0


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("costkit.reports", ""),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["value"] = fmt_value
    env.filters["links"] = link_segments
    env.filters["cause_name"] = cause_name
    env.filters["local_time"] = local_time
    env.filters["dec_sum"] = dec_sum
    env.globals["illustrative_prices"] = illustrative_prices
    return env


@lru_cache(maxsize=4)
def _stylesheet(*extra: str) -> Markup:
    """reports/style.css (then each `extra` stylesheet of reports/) as markup for a <style> element (our
    packaged files, not user input)."""
    css = "\n".join(resources.files("costkit.reports").joinpath(name).read_text(encoding="utf-8")
                    for name in ("style.css", *extra))
    if "</" in css or "@import" in css or "url(" in css:
        raise ValueError("style.css must not close the <style> element or fetch anything")
    return Markup(css)


def generated_at_now() -> str:
    """The report timestamp: SOURCE_DATE_EPOCH when set (reproducible builds), else now; ISO 8601 in +08:00."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.fromtimestamp(int(epoch), timezone.utc) if epoch and epoch.isdigit()
            else datetime.now(timezone.utc))
    return when.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


def render_html(template_name: str, context: dict) -> str:
    """Render a template from `reports/` with autoescaping and strict undefineds; returns the HTML text.

    `css` (the inlined stylesheet) and `costkit_version` are added to the context unless given.
    """
    ctx = {"css": _stylesheet(), "costkit_version": __version__}
    ctx.update(context)
    return _environment().get_template(template_name).render(ctx)


def _forecast_charts(model: dict) -> dict:
    """The forecast's inline SVG charts: `monthly` (stacked bars + cumulative line) and `tornado` (or None)."""
    currency = model["currency"]
    keys = _item_columns(model)["shown_keys"]
    months = model["months"]
    labels = [m["month"] for m in months]
    series = {k: [_chart_float(m["items"][k]) for m in months] for k in keys}
    cumulative, running = [], Decimal(0)
    for m in months:
        running += _dec(m["total"]) or Decimal(0)
        cumulative.append(float(running))
    monthly = charts.stacked_bars(
        labels, series, ylabel=f"Cost per month ({currency})", line=cumulative,
        line_label=f"Cumulative total ({currency})", line_ylabel=f"Cumulative ({currency})",
    ) if months else None
    rows = _sensitivity_rows(model)
    tornado = charts.tornado(
        [{"label": f"{r['driver']}\n{fmt_number(fmt_value(r.get('low_value')))} / "
                   f"{fmt_number(fmt_value(r.get('high_value')))}",
          "low": _chart_float(r["low_total"]), "high": _chart_float(r["high_total"]),
          "low_text": fmt_number(r["low_total"]), "high_text": fmt_number(r["high_total"])}
         for r in rows],
        base=_chart_float(rows[0]["base_total"] if rows else model["total"]),
        xlabel=f"Horizon total ({currency})",
        low_label="driver at low value", high_label="driver at high value",
    ) if rows else None
    return {"monthly": monthly, "tornado": tornado}


def _sensitivity_rows(model: dict) -> list[dict]:
    """Sensitivity rows sorted by swing (|high_total - low_total|, exact), largest first, with `swing` added
    as a 2-place decimal string in the model's currency."""
    rows = []
    for r in model.get("sensitivity") or []:
        lo, hi = _dec(r.get("low_total")), _dec(r.get("high_total"))
        swing = abs(hi - lo) if lo is not None and hi is not None else None
        rows.append({**r, "swing": None if swing is None else str(swing.quantize(Decimal("0.01")))})
    rows.sort(key=lambda r: (-(_dec(r["swing"]) or Decimal(0)), str(r.get("driver"))))
    return rows


def _price_rows(model: dict) -> list[dict]:
    """The model's prices with `selectors_text` and `source_parts` (see link_segments) for the template;
    `note` is None when the model has none."""
    out = []
    for p in model.get("prices") or []:
        sel = p.get("selectors") or {}
        out.append({
            **{k: p.get(k) for k in ("item", "code", "unit", "price", "currency", "effective_from",
                                     "effective_to", "confidence", "layer", "note")},
            "selectors_text": ", ".join(f"{k}={fmt_value(v)}" for k, v in sel.items()) if sel else "",
            "source_parts": link_segments(p.get("source")),
        })
    return out


def _quantity_table(model: dict) -> dict:
    """`quantity_units` ({item key: unit}, empty when the model has no quantities) and `quantity_rows`
    ([{month, cells: [quantity string or None per item key]}]) for the billed-quantities table."""
    keys = list(model["item_keys"])
    months = model["months"]
    units: dict[str, str] = {}
    for m in months:
        for k, q in (m.get("quantities") or {}).items():
            if isinstance(q, dict) and q.get("unit") and k not in units:
                units[k] = str(q["unit"])
    if not units:
        return {"quantity_units": {}, "quantity_rows": []}
    rows = []
    for m in months:
        qs = m.get("quantities") or {}
        rows.append({"month": m["month"],
                     "cells": [(qs.get(k) or {}).get("quantity") if isinstance(qs.get(k), dict) else None
                               for k in keys]})
    return {"quantity_units": {k: units.get(k, "") for k in keys}, "quantity_rows": rows}


def _item_columns(model: dict) -> dict:
    """`shown_keys` (items with a non-zero amount in some month or in the total, in the model's order) and
    `zero_keys` (the rest: left out of the month x item table and chart, and listed in a note)."""
    shown, zero = [], []
    for k in model["item_keys"]:
        amounts = [m["items"].get(k) for m in model["months"]] + [(model.get("items") or {}).get(k)]
        needed = k in (model.get("excluded_items") or ())  # "price needed" cells are shown, never hidden
        (shown if needed or any((_dec(a) or 0) != 0 for a in amounts) else zero).append(k)
    return {"shown_keys": shown, "zero_keys": zero}


def _month_bounds(label: str, *, end: bool) -> datetime | None:
    try:
        y, m = (int(x) for x in str(label).split("-"))
    except ValueError:
        return None
    if end:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return datetime(y, m, 1, tzinfo=SHANGHAI)


def _instant(text) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=SHANGHAI)


def _price_drivers(model: dict, limit: int = 3, share: Decimal = Decimal("0.8")) -> list[dict]:
    """The items that make up most of the horizon total (largest first, until `share` of it, at most `limit`),
    each with `item`, `amount` (its horizon total, the model's decimal string), `share_pct` (of the total,
    1 decimal) and `prices`: the model's price rows for that item whose effective window meets the horizon
    (zero prices left out when a non-zero one applies). Empty when the total is not positive."""
    total = _dec(model.get("total")) or Decimal(0)
    if total <= 0 or not model["months"]:
        return []
    start = _month_bounds(model["months"][0]["month"], end=False)
    stop = _month_bounds(model["months"][-1]["month"], end=True)
    items = sorted(((k, _dec(v) or Decimal(0)) for k, v in (model.get("items") or {}).items()),
                   key=lambda kv: (-kv[1], kv[0]))
    out, covered = [], Decimal(0)
    for key, amount in items:
        if amount <= 0 or len(out) >= limit or covered >= share * total:
            break
        covered += amount
        rows = []
        for p in _price_rows(model):
            if p["item"] != key:
                continue
            frm, to = _instant(p["effective_from"]), _instant(p["effective_to"])
            if (start and to and to <= start) or (stop and frm and frm >= stop):
                continue
            rows.append(p)
        if any((_dec(p["price"]) or 0) != 0 for p in rows):
            rows = [p for p in rows if (_dec(p["price"]) or 0) != 0 or p["price"] is None]
        tenths = round_half_up_int(to_fraction(amount) * 1000 / to_fraction(total))  # exact at any size
        pct = f"{tenths // 10}.{tenths % 10}"
        out.append({"item": key, "amount": model["items"][key], "share_pct": str(pct), "prices": rows})
    return out


def render_forecast_html(model: dict, *, generated_at: str | None = None) -> str:
    """The forecast report for a forecast model (the dict `costkit estimate --format json` prints).

    Returns one self-contained HTML document (str). Money is shown exactly as the model's decimal strings,
    in the model's currency. `generated_at` defaults to generated_at_now().
    """
    with exact_decimals():  # totals of a large valid scenario pass the default 28 digits
        return _render_forecast_html(model, generated_at)


def _render_forecast_html(model: dict, generated_at: str | None) -> str:
    months = model["months"]
    context = {
        "model": model,
        "scenario": model.get("scenario") or {},
        "item_keys": list(model["item_keys"]),
        **_item_columns(model),
        "drivers": _price_drivers(model),
        # A partial forecast: the prices it needs (quantity, from when, an entry to paste) and the sweep.
        "unknown_prices": model.get("missing_prices") or [],
        "price_sweep": model.get("price_sweep") or [],
        "total_label": model.get("total_label") or "",
        "budget": model.get("budget"),
        "price_layers": model.get("price_layers") or [],
        "illustrative": illustrative_prices(model.get("prices")),
        "months": months,
        "has_succeeded": bool(months) and all("succeeded" in m for m in months),
        **_quantity_table(model),
        "prices": _price_rows(model),
        "assumptions": model.get("assumptions") or [],
        "warnings": model.get("warnings") or [],
        "sensitivity": _sensitivity_rows(model),
        "charts": _forecast_charts(model),
        "generated_at": generated_at or generated_at_now(),
        "costkit_version": model.get("costkit_version") or __version__,
    }
    return render_html("forecast.html.j2", context)
