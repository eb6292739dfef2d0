"""The HTML forecast report: self-contained, escaped, complete, and stable against a gold file.

The sample model below has the shape `costkit estimate --format json` prints, with money as 2-place decimal
strings that add up (each line rounded half-up, totals summed from rounded lines).
Regenerate the gold file with: COSTKIT_REGEN_GOLD=1 .venv/bin/python -m pytest tests/test_report_html.py
"""
from __future__ import annotations

import copy
import os
import re
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from gold_html import scrub_html
from costkit.outputs import charts
from costkit.outputs.html import fmt_number, fmt_value, link_segments, render_forecast_html, render_html

GOLD = Path(__file__).parent / "gold" / "forecast_report.html"
CENT = Decimal("0.01")
ITEM_KEYS = ["imm.ImageSplicing", "oss.GetRequest", "oss.PutRequest", "oss.IaRetrieval",
             "oss.ArchiveDirectRead", "oss.TransferAcceleration", "oss.Storage", "oss.EarlyDeletion"]
EVIL_NAME = "<script>alert(1)</script>"
SPEC_URL = "https://help.aliyun.com/zh/imm/product-overview/billing-items?spm=a&b=c"


def _money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _q(x: Decimal) -> str:
    return format(x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize(), "f")


def sample_model() -> dict:
    """A 12-month cn forecast starting in the cutover month 2025-07 (IA sources, Standard targets)."""
    start_month = [(2025, m) for m in range(7, 13)] + [(2026, m) for m in range(1, 7)]
    splice_price = Decimal("0.05")            # illustrative, per call (scenario layer)
    get_price = Decimal("0.1") / 10000        # IA GET/HEAD, per request
    put_price = Decimal("0.01") / 10000       # Standard PUT, per request
    ia_retrieval = Decimal("0.0325")          # per GB
    storage_gb_hour = Decimal("0.12") / 720   # Standard, per GB-hour
    sources, source_gb = 3, Decimal(2) / 1024
    target_gb = Decimal(4) / 1024
    months = []
    tasks = Decimal(1000)
    for i, (y, m) in enumerate(start_month):
        n = int(tasks.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        # Whole counts, as the engine gives them (README, "Whole splices").
        succeeded = (Decimal(n) * Decimal("0.98")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        # July 2025: 744 hours, cutover after 659 of them.
        billable = (succeeded * Decimal(85) / Decimal(744)).quantize(Decimal(1), rounding=ROUND_HALF_UP) \
            if i == 0 else succeeded
        q = {
            "imm.ImageSplicing": (billable, "calls", splice_price),
            "oss.GetRequest": (Decimal(n * sources * 2), "requests", get_price),
            "oss.PutRequest": (succeeded, "requests", put_price),
            "oss.IaRetrieval": (Decimal(n * sources) * source_gb, "GB", ia_retrieval),
            "oss.ArchiveDirectRead": (Decimal(0), "GB", Decimal(0)),
            "oss.TransferAcceleration": (Decimal(0), "GB", Decimal("1.25")),
            "oss.Storage": (succeeded * target_gb * 720, "GB-hour", storage_gb_hour),
            "oss.EarlyDeletion": (Decimal(0), "GB-hour", storage_gb_hour),
        }
        items = {k: _money(qty * price) for k, (qty, _u, price) in q.items()}
        months.append({
            "month": f"{y:04d}-{m:02d}", "tasks": n, "succeeded": _q(succeeded),
            "billable_splices": _q(billable),
            "items": {k: str(v) for k, v in items.items()},
            "quantities": {k: {"quantity": _q(qty), "unit": u} for k, (qty, u, _p) in q.items()},
            "total": str(sum(items.values(), Decimal("0.00"))),
        })
        tasks *= Decimal("1.05")
    item_totals = {k: sum((Decimal(mm["items"][k]) for mm in months), Decimal("0.00")) for k in ITEM_KEYS}
    total = sum(item_totals.values(), Decimal("0.00"))
    billable_total = sum(Decimal(mm["billable_splices"]) for mm in months)
    sens = []
    for driver, base, lo, hi, flo, fhi in [
        ("tasks_per_month", "1000", "800", "1200", "0.8", "1.2"),
        ("failure_rate", "0.02", "0.016", "0.024", "1.0021", "0.9979"),
        ("source_size_mb", "2", "1.6", "2.4", "0.9703", "1.0297"),
        ("target_retention_days", "30", "24", "36", "0.9951", "1.0049"),
    ]:
        sens.append({"driver": driver, "base_value": base, "low_value": lo, "high_value": hi,
                     "low_total": str(_money(total * Decimal(flo))), "base_total": str(total),
                     "high_total": str(_money(total * Decimal(fhi)))})
    sens.append({"driver": "price imm.ImageSplicing", "kind": "price", "unit": "calls", "base_value": "0.05",
                 "low_value": "0.04", "high_value": "0.06", "base_total": str(total),
                 "low_total": str(total - _money(item_totals["imm.ImageSplicing"] * Decimal("0.2"))),
                 "high_total": str(total + _money(item_totals["imm.ImageSplicing"] * Decimal("0.2")))})
    sweep = {"item": "imm.ImageSplicing", "selectors": {}, "unit": "calls", "price": "0.05",
             "why": "confidence 'illustrative'", "layer": "scenario", "source": "demo scenario",
             "quantity": str(billable_total), "quantity_unit": "calls", "total_excludes": [],
             "points": [{"price": p, "total": str(total + _money(item_totals["imm.ImageSplicing"]
                                                                 * (Decimal(p) / Decimal("0.05") - 1))),
                         "within_budget": p != "0.1"} for p in ("0.025", "0.05", "0.1")],
             "break_even": {"price": "0.08", "reason": "the highest price at which the horizon total stays within "
                                                       "the budget"}}
    return {
        "format_version": 1,
        "costkit_version": "0.1.0",
        "complete": True, "total_label": "", "excluded_items": [], "missing_prices": [],
        "price_sweep": [sweep],
        "budget": {"amount": "1000", "per": "horizon", "passed": False, "over": [],
                   "message": "within the budget of 1000 CNY over the horizon"},
        "price_layers": [{"layer": "cli", "from": "--price ITEM=VALUE[/UNIT]"},
                         {"layer": "user", "from": "--prices FILE"},
                         {"layer": "scenario", "from": "the scenario's (or settings') prices:"},
                         {"layer": "bundled", "from": "the bundled price book"}],
        "scenario": {"name": EVIL_NAME, "site": "cn", "region": "cn-hangzhou", "start": "2025-07", "months": 12},
        "site": "cn",
        "currency": "CNY",
        "price_book": {"name": "cn", "version": "2026-11-25"},
        "item_keys": list(ITEM_KEYS),
        "months": months,
        "items": {k: str(v) for k, v in item_totals.items()},
        "total": str(total),
        "average_month": str(_money(total / len(months))),
        "cost_per_1000_splices": str(_money(total * 1000 / billable_total)),
        "billable_splices": _q(billable_total),
        "prices": [
            {"item": "imm.ImageSplicing", "code": "ImageSplicing", "selectors": {}, "unit": "calls",
             "price": "0.05", "currency": "CNY", "effective_from": "2025-07-28T11:00:00+08:00",
             "effective_to": None, "confidence": "illustrative",
             "source": "demo scenario: illustrative price, not published", "layer": "scenario"},
            {"item": "imm.ImageSplicing", "code": "ImageSplicing", "selectors": {}, "unit": "calls",
             "price": "0", "currency": "CNY", "effective_from": "2020-01-01T00:00:00+08:00",
             "effective_to": "2025-07-28T11:00:00+08:00", "confidence": "high",
             "source": f"Billing items page, {SPEC_URL}.", "layer": "bundled"},
            {"item": "oss.GetRequest", "code": "GetRequest", "selectors": {"storage_class": "IA"},
             "unit": "10000 requests", "price": "0.1", "currency": "CNY",
             "effective_from": "2020-01-01T00:00:00+08:00", "effective_to": None, "confidence": "medium",
             "source": "javascript:alert(1)", "layer": "user"},
            {"item": "oss.Storage", "code": "Storage",
             "selectors": {"storage_class": "Standard", "redundancy": "LRS"}, "unit": "GB-month",
             "price": "0.12", "currency": "CNY", "effective_from": "2020-01-01T00:00:00+08:00",
             "effective_to": None, "confidence": "high",
             "source": "https://www.aliyun.com/price/product#/oss/detail \"onmouseover=alert(1)", "layer": "bundled"},
        ],
        "assumptions": [
            {"key": "failure_rate", "value": "0.02", "defaulted": False, "description": "share of tasks that fail"},
            {"key": "requests", "value": {"get_per_source": "1", "head_per_source": "1", "put_per_task": "1"},
             "defaulted": True, "description": "request profile per task"},
            {"key": "daily_profile", "value": ["uniform"], "defaulted": True,
             "description": "tasks complete uniformly over the hours of each month (Asia/Shanghai)"},
        ],
        "warnings": [
            "ImageSplicing price is illustrative <b>not published</b>",
            "scenario note: <script>alert('w')</script>",
        ],
        "sensitivity": sens,
    }


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.svg_tags: list[tuple[str, dict]] = []   # inside inline <svg> charts
        self.svg_text: list[str] = []
        self.style_text = ""
        self._in_style = False
        self._svg_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self._svg_depth += 1
        (self.svg_tags if self._svg_depth else self.tags).append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        (self.svg_tags if self._svg_depth else self.tags).append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self._in_style = False
        if tag == "svg":
            self._svg_depth -= 1

    def handle_data(self, data):
        if self._in_style:
            self.style_text += data
        elif self._svg_depth and data.strip():
            self.svg_text.append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


@pytest.fixture(scope="module")
def model() -> dict:
    return sample_model()


@pytest.fixture(scope="module")
def html(model) -> str:
    return render_forecast_html(model, generated_at="2026-11-25T17:00:00+00:00")


def test_sample_model_adds_up(model):
    for m in model["months"]:
        assert sum(Decimal(v) for v in m["items"].values()) == Decimal(m["total"])
    assert sum(Decimal(v) for v in model["items"].values()) == Decimal(model["total"])


def test_report_is_self_contained(html, model):
    doc = _parse(html)
    names = [t for t, _ in doc.tags]
    for banned in ("script", "link", "iframe", "object", "embed", "base", "frame", "audio", "video", "source"):
        assert banned not in names, banned
    assert "<script" not in html.lower()
    assert "img" not in names and [t for t, _ in doc.svg_tags].count("svg") == 2
    for t, attrs in doc.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (t, name)
            assert name not in ("src", "srcset", "poster", "data", "action", "formaction"), (t, name)
            if name == "href":
                assert t == "a" and re.match(r"https?://", value), (t, value)
            if name == "style":
                pytest.fail(f"inline style attribute on <{t}>")
    # Inside the charts: drawing only, and references only to the chart's own definitions.
    assert {t for t, _ in doc.svg_tags} <= {"svg", "g", "path", "use", "text", "defs", "clippath", "rect",
                                            "tspan"}, {t for t, _ in doc.svg_tags}
    for t, attrs in doc.svg_tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (t, name)
            if name.endswith("href"):
                assert value.startswith("#"), (t, value)
            if "url(" in (value or ""):
                assert re.fullmatch(r"url\(#[\w-]+\)", value), (t, value)
    hrefs = [a["href"] for t, a in doc.tags if t == "a"]
    assert hrefs == [SPEC_URL, "https://www.aliyun.com/price/product#/oss/detail"]
    css = doc.style_text
    assert "@media print" in css and "page-break" in css
    for bad in ("url(", "@import", "http", "@font-face"):
        assert bad not in css
    for t, a in doc.tags:
        if t == "meta" and a.get("http-equiv"):
            pytest.fail("meta http-equiv is not expected")


def test_charts_are_inline_svg_with_text_kept_as_text(html, model):
    doc = _parse(html)
    svgs = [a for t, a in doc.svg_tags if t == "svg"]
    assert len(svgs) == 2 and all(a.get("viewbox") and "width" not in a for a in svgs)
    texts = [t.strip() for t in doc.svg_text]
    assert "Cumulative total (CNY)" in texts and "tasks_per_month" in texts
    # No two charts share an id, and every reference resolves inside the page.
    ids = [a["id"] for _t, a in doc.svg_tags if "id" in a]
    assert len(ids) == len(set(ids))
    refs = {re.sub(r"^url\(#|\)$|^#", "", v) for _t, a in doc.svg_tags for k, v in a.items()
            if k.endswith("href") or (v or "").startswith("url(")}
    assert refs <= set(ids)


def test_legend_lists_the_stack_from_the_top(html, model):
    """The stacked bars are drawn in the model's item order from the bottom up; the legend reads top down."""
    chart = re.search(r'<svg class="chart-svg".*?</svg>', html, re.S).group(0)
    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", chart)]
    shown = [k for k in model["item_keys"] if any(Decimal(m["items"][k]) for m in model["months"])]
    legend = [t for t in texts if t in shown]
    assert legend[-len(shown):] == shown[::-1]
    assert texts[-1] == "Cumulative total (CNY)"


def test_untrusted_text_is_escaped(html):
    assert EVIL_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;not published&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#39;w&#39;)&lt;/script&gt;" in html
    # A javascript: source stays text; a quote after a URL cannot break out of the href.
    assert 'href="javascript' not in html and "javascript:alert(1)" in html
    assert "onmouseover" not in re.sub(r"&#34;onmouseover", "", html)


def test_header_and_headline(html, model):
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · costkit forecast</title>" in html
    for text in ("cn-hangzhou", "2025-07", "2026-11-25", ">CNY<", ">12<"):
        assert text in html, text
    assert re.search(r'id="headline-total">' + re.escape(fmt_number(model["total"])) + '<', html)
    assert re.search(r'id="headline-average">' + re.escape(fmt_number(model["average_month"])) + '<', html)
    assert re.search(r'id="headline-per-1000">' + re.escape(model["cost_per_1000_splices"]) + '<', html)


def _table(html: str, cls: str) -> list[list[str]]:
    """Rows of cell texts of the table with the given class (head, body and foot)."""
    body = re.search(rf'<table class="{cls}">(.*?)</table>', html, re.S).group(1)
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([re.sub(r"<[^>]+>", " ", c).strip() for c in cells])
    return rows


def test_month_item_table_comes_from_model(html, model):
    rows = _table(html, "month-items")
    header, body, foot = rows[0], rows[1:-1], rows[-1]
    assert header[-1].split() == ["Total", "CNY"]
    shown = [k for k in model["item_keys"] if any(Decimal(m["items"][k]) for m in model["months"])]
    zero = [k for k in model["item_keys"] if k not in shown]
    assert shown and zero
    assert [h.split()[0] for h in header[4:-1]] == shown
    assert [r[0] for r in body] == [m["month"] for m in model["months"]]
    for r, m in zip(body, model["months"]):
        assert r[4:-1] == [fmt_number(m["items"][k]) for k in shown]
        assert r[-1] == fmt_number(m["total"])
        assert r[1] == fmt_number(m["tasks"])
    assert foot[0] == "Total"
    assert foot[4:] == [fmt_number(model["items"][k]) for k in shown] + [fmt_number(model["total"])]
    note = re.search(r'<p class="note zero-items">(.*?)</p>', html, re.S).group(1)
    assert [k for k in zero if f'<span class="key">{k}</span>' in note] == zero


def test_template_does_not_recompute_money(model):
    odd = copy.deepcopy(model)
    odd["total"] = "987654.32"
    odd["months"][0]["total"] = "4242.42"
    html = render_forecast_html(odd, generated_at="x")
    foot = _table(html, "month-items")[-1]
    assert foot[-1] == "987,654.32"
    assert _table(html, "month-items")[1][-1] == "4,242.42"


def test_every_month_item_price_and_assumption_appears(html, model):
    for m in model["months"]:
        assert f">{m['month']}<" in html
    for key in model["item_keys"]:
        assert html.count(f'<span class="key">{key}</span>') >= 2  # money table or zero note, and quantities
    prices = _table(html, "prices")[1:]
    assert len(prices) == len(model["prices"])
    assert [p[8] for p in prices] == [p["confidence"] for p in model["prices"]]
    assert prices[3][2] == "storage_class=Standard, redundancy=LRS"
    assert prices[0][7] == "open"
    assumptions = _table(html, "assumptions")[1:]
    assert [a[0] for a in assumptions] == [a["key"] for a in model["assumptions"]]
    assert [a[2] for a in assumptions] == ["given", "defaulted", "defaulted"]
    assert assumptions[1][1] == "get_per_source: 1; head_per_source: 1; put_per_task: 1"


def test_quantities_table(html, model):
    rows = _table(html, "month-quantities")
    assert rows[0][1].split() == ["imm.ImageSplicing", "calls"]
    assert rows[1][1] == fmt_number(model["months"][0]["quantities"]["imm.ImageSplicing"]["quantity"])


def test_sensitivity_sorted_by_swing(html, model):
    rows = _table(html, "sensitivity")[1:]
    assert [r[0] for r in rows] == ["tasks_per_month", "price imm.ImageSplicing", "source_size_mb",
                                    "target_retention_days", "failure_rate"]
    assert rows[1][1:4] == ["0.04 CNY/calls", "0.05 CNY/calls", "0.06 CNY/calls"]  # a price driver shows its unit
    t = {s["driver"]: s for s in model["sensitivity"]}["tasks_per_month"]
    assert rows[0][4:7] == [fmt_number(t["low_total"]), fmt_number(t["base_total"]), fmt_number(t["high_total"])]
    assert Decimal(rows[0][7].replace(",", "")) == Decimal(t["high_total"]) - Decimal(t["low_total"])


def test_minimal_model_renders(model):
    bare = copy.deepcopy(model)
    bare.update(warnings=[], sensitivity=[], prices=[], assumptions=[], cost_per_1000_splices=None)
    for m in bare["months"]:
        del m["quantities"]
    html = render_forecast_html(bare, generated_at="x")
    assert "No warnings." in html and "No sensitivity analysis" in html
    assert 'id="headline-per-1000">n/a<' in html
    assert html.count('<svg class="chart-svg"') == 1
    assert 'class="month-quantities"' not in html


def test_gold(html):
    got = scrub_html(html)
    if os.environ.get("COSTKIT_REGEN_GOLD") == "1":
        GOLD.parent.mkdir(parents=True, exist_ok=True)
        GOLD.write_text(got, encoding="utf-8")
    assert GOLD.exists(), "missing gold file: run with COSTKIT_REGEN_GOLD=1"
    assert got == GOLD.read_text(encoding="utf-8"), "report changed: review, then COSTKIT_REGEN_GOLD=1"


def test_fmt_number_keeps_decimal_strings():
    assert fmt_number("1234567.80") == "1,234,567.80"
    assert fmt_number("-1234.5") == "-1,234.5"
    assert fmt_number("0.00") == "0.00"
    assert fmt_number(1000) == "1,000"
    assert fmt_number(None) == "—"
    assert fmt_number("n/a") == "n/a"
    assert fmt_value({"a": ["x", "y"], "b": True}) == "a: x, y; b: true"


def test_link_segments_only_http():
    assert link_segments("see https://a.example/x?y=1.") == [("see ", None), ("https://a.example/x?y=1", "https://a.example/x?y=1"), (".", None)]
    assert link_segments("javascript:alert(1)") == [("javascript:alert(1)", None)]
    assert link_segments("ftp://a.example/x") == [("ftp://a.example/x", None)]
    assert link_segments(None) == [("—", None)]
    assert all(h is None for _, h in link_segments("http:// nothing"))


def test_render_html_escapes_strings_and_is_strict():
    out = render_html("base.html.j2", {"generated_at": "<i>now</i>"})
    assert "&lt;i&gt;now&lt;/i&gt;" in out and "<style>" in out
    with pytest.raises(Exception):
        render_html("forecast.html.j2", {"generated_at": "x"})


def test_charts_are_deterministic_and_leave_matplotlib_alone():
    import matplotlib

    backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)
    cats = ["2025-07", "2025-08", "2025-09"]
    series = {"a $x$": [1.0, 2.0, 3.0], "credit": [0.0, -0.5, 0.0], "zero": [0.0, 0.0, 0.0]}
    one = charts.stacked_bars(cats, series, ylabel="Cost (CNY)", line=[1.0, 2.5, 5.5])
    two = charts.stacked_bars(cats, series, ylabel="Cost (CNY)", line=[1.0, 2.5, 5.5])
    assert one == two and one.startswith('<svg class="chart-svg"')
    assert ">a $x$<" in one and "<metadata" not in one and "<style" not in one and "<?xml" not in one
    assert charts.line_chart(cats, {"billed": [1.0, None, 2.0]}, ylabel="Cost (USD)").startswith("<svg")
    assert charts.tornado([], base=0.0, xlabel="Total (CNY)").startswith("<svg")
    hostile = charts.line_chart(["项目甲", "<b>&"], {"<script>x</script>": [1.0, 2.0]}, ylabel="成本 (CNY)")
    assert "<script" not in hostile and "&lt;script&gt;x&lt;/script&gt;" in hostile
    assert ">项目甲<" in hostile and ">成本 (CNY)<" in hostile and "&lt;b&gt;&amp;" in hostile
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc
    import sys
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_long_horizon_renders(model):
    big = copy.deepcopy(model)
    big["months"] = [dict(big["months"][i % 12], month=f"{2026 + i // 12}-{i % 12 + 1:02d}") for i in range(120)]
    html = render_forecast_html(big, generated_at="x")
    assert html.count("<tr>") > 120


def test_engine_model_renders(tmp_path):
    """The engine's own model (the demo scenario, renamed to hostile text) renders self-contained."""
    forecast = pytest.importorskip("costkit.engine.forecast")
    import yaml
    from importlib import resources

    text = resources.files("costkit").joinpath("data", "demo-scenario.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["name"] = EVIL_NAME
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    model = forecast.estimate(str(path))
    html = render_forecast_html(model, generated_at="x")
    assert EVIL_NAME not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    doc = _parse(html)
    for t, attrs in doc.tags:
        assert "src" not in attrs, t
        if "href" in attrs:
            assert t == "a" and re.match(r"https?://", attrs["href"])
    rows = _table(html, "month-items")
    assert [r[0] for r in rows[1:-1]] == [m["month"] for m in model["months"]]
    assert rows[-1][-1] == fmt_number(model["total"])
    assert len(_table(html, "prices")) == len(model["prices"]) + 1
    assert len(_table(html, "assumptions")) == len(model["assumptions"]) + 1
    for w in model["warnings"]:
        assert str(escape(w)) in html


def test_times_read_in_utc_plus_8(html):
    from costkit.outputs.html import generated_at_now, local_time

    assert local_time("2026-11-25T17:00:00+00:00") == "2026-11-26 01:00 +08:00"
    assert local_time("2025-08-31T17:00:00.123456+00:00") == "2025-09-01 01:00 +08:00"
    assert local_time(None) == "—" and local_time("2025-08") == "2025-08"
    assert 'class="generated-at">2026-11-26 01:00 +08:00<' in html
    assert generated_at_now().endswith("+08:00")


def test_headline_names_the_prices_that_drive_the_total(html, model):
    drivers = re.search(r'<section class="drivers".*?</section>', html, re.S).group(0)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", drivers))
    # ImageSplicing is most of the sample total: its post-cutover price and confidence are named, the
    # zero price of before the cutover is not.
    assert "imm.ImageSplicing" in text and "0.05 CNY per calls" in text and "illustrative" in text
    assert "0 CNY per calls" not in text
    assert 'id="illustrative-banner"' in html


def test_cause_names_and_sums_for_the_templates():
    from costkit.outputs.html import cause_name, dec_sum

    assert cause_name("coverage_gap") == "coverage gap" and cause_name("new_cause") == "new cause"
    assert dec_sum(["0.01", "-0.03", None, "x"]) == "-0.02" and dec_sum([]) == "0"
