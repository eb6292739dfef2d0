"""The demo reports as a reader sees them: opened in headless Chromium at 1280 px, and printed to PDF.

The demo forecast (bundled scenario) and the demo audit (the synthetic month with its planted lost day) are
rendered once per session; each test reads the page's layout and computed styles, not the HTML text.
"""
from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest

from browser import browser, pdf_pages, rgb  # noqa: F401  (browser is a fixture)

CHINESE_TAG = "团队=广告"
MAX_FORECAST_PAGES = 6
MAX_AUDIT_PAGES = 10


def _render_audit(model: dict) -> str:
    from costkit.outputs.audit import render_audit

    return render_audit(model, "html")


@pytest.fixture(scope="session")
def reports(browser, tmp_path_factory) -> dict:
    """Paths of the rendered demo reports: `forecast`, `audit`, and `audit_cjk` (the demo audit with a
    Chinese tag name); the browser fixture comes first so nothing is built when Chromium is missing."""
    from costkit.demo.audit import run_demo_audit
    from costkit.engine.forecast import estimate
    from costkit.outputs.html import render_forecast_html

    out = tmp_path_factory.mktemp("reports")
    scenario = resources.files("costkit").joinpath("data", "demo-scenario.yaml")
    forecast = out / "forecast.html"
    forecast.write_text(render_forecast_html(estimate(str(scenario))), encoding="utf-8")
    demo = run_demo_audit(out / "audit", per_day=40)
    model = json.loads(demo.json.read_text(encoding="utf-8"))
    model["top"]["tags"][0]["label"] = CHINESE_TAG
    cjk = out / "audit-cjk.html"
    cjk.write_text(_render_audit(model), encoding="utf-8")
    return {"forecast": forecast, "audit": demo.html, "audit_cjk": cjk}


@pytest.fixture(scope="session")
def pdfs(browser, reports) -> dict:
    """Each demo report printed to PDF, as the text of each page."""
    out = {}
    for name in ("forecast", "audit"):
        browser.open(reports[name])
        out[name] = pdf_pages(browser.pdf())
    return out


def test_calendar_gap_cell_is_coloured_on_an_even_week(browser, reports):
    """The planted lost day (partly collected) sits on the second, even week row, where the zebra rule of
    style.css used to paint it as a plain cell."""
    from costkit.demo.audit import MISSED_DAY

    browser.open(reports["audit"])
    cells = browser.js("""
        const cell = [...document.querySelectorAll('table.calendar td.cal')]
            .find(td => td.querySelector('strong') && td.querySelector('strong').textContent === arguments[0]);
        const row = cell.parentElement;
        const zebra = document.querySelector('table.day-items tbody tr:nth-child(even) td');
        const collected = [...row.children].find(td => td.classList.contains('cal-collected'));
        const bg = el => getComputedStyle(el).backgroundColor;
        return {cls: cell.className, even: [...row.parentElement.children].indexOf(row) % 2 === 1,
                gap: bg(cell), zebra: bg(zebra), collected: bg(collected), body: bg(document.body)};
    """, MISSED_DAY[8:])
    assert ("cal-gap" in cells["cls"] or "cal-partial" in cells["cls"]) and cells["even"], cells
    plain = {rgb(cells[k])[:3] for k in ("zebra", "collected", "body")}
    assert rgb(cells["gap"])[:3] not in plain, cells
    r, g, b = rgb(cells["gap"])[:3]
    assert r > b + 30, cells      # warm (amber or red), the colours the legend gives gaps


def test_forecast_total_column_is_in_the_viewport(browser, reports):
    browser.open(reports["forecast"])
    box = browser.js("""
        const cells = [...document.querySelectorAll('table.month-items td.total, table.month-items th.total')];
        const rects = cells.map(c => c.getBoundingClientRect());
        return {n: cells.length, left: Math.min(...rects.map(r => r.left)),
                right: Math.max(...rects.map(r => r.right)), width: document.documentElement.clientWidth,
                inner: window.innerWidth, first: document.querySelector('table.month-items tbody th').getBoundingClientRect().left};
    """)
    assert box["inner"] == 1280 and box["n"] >= 3, box
    assert 0 <= box["left"] and box["right"] <= box["width"], box
    assert 0 <= box["first"] < box["left"], box


@pytest.mark.parametrize("name", ["forecast", "audit"])
def test_no_element_is_wider_than_the_page(browser, reports, name):
    browser.open(reports[name])
    over = browser.js("""
        const width = document.documentElement.clientWidth;
        const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
            const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
            return false; };
        const out = [];
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width && (r.right > width + 1 || r.left < -1) && !scrolls(el))
                out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
        }
        return {width, scroll: document.documentElement.scrollWidth, out: out.slice(0, 10)};
    """)
    assert over["scroll"] <= over["width"], over
    assert over["out"] == [], over


@pytest.mark.parametrize("name", ["forecast", "audit"])
def test_report_makes_no_network_request_and_has_no_script(browser, reports, name):
    browser.open(reports[name])
    n_scripts = browser.js("return document.getElementsByTagName('script').length")
    urls = browser.requests()
    assert n_scripts == 0
    assert urls == [reports[name].resolve().as_uri()], urls


def test_chinese_names_are_text_in_the_svg_charts(browser, reports):
    browser.open(reports["audit_cjk"])
    texts = browser.js("""
        return [...document.querySelectorAll('figure.chart svg text')].map(t => t.textContent);
    """)
    assert CHINESE_TAG in texts, texts[:20]
    assert browser.js("return document.querySelectorAll('img').length") == 0
    # Drawn with the page's fonts, not the DejaVu Sans matplotlib measured with.
    family = browser.js("return getComputedStyle(document.querySelector('figure.chart svg text')).fontFamily")
    assert "DejaVu" not in family, family


def test_forecast_prints_its_headline_chart_and_table_on_page_one(pdfs):
    pages = pdfs["forecast"]
    assert len(pages) <= MAX_FORECAST_PAGES, len(pages)
    first = pages[0]
    for text in ("Horizon total", "Prices that drive the total", "Cost by month", "Cumulative total",
                 "Billable splices", "2025-07 1,200,000"):
        assert text in first, (text, first[-800:])


def test_audit_prints_the_reconciliation_with_its_heading_within_two_pages(pdfs):
    pages = pdfs["audit"]
    assert len(pages) <= MAX_AUDIT_PAGES, len(pages)
    where = [i for i, p in enumerate(pages) if "Reconciliation by item" in p]
    assert where and where[0] <= 1, [p[:200] for p in pages[:3]]
    # Not stranded: the heading's page also holds the table's first row.
    assert "imm.ImageSplicing" in pages[where[0]].split("Reconciliation by item", 1)[1]


def test_printed_tables_repeat_their_header_on_each_page(pdfs):
    """The forecast's month x item table starts on page 1 and goes on over the page; the page it goes on to
    opens with the table's header row again, and the Total row prints once."""
    pages = pdfs["forecast"]
    last_row = [i for i, p in enumerate(pages) if "\n2026-06 " in "\n" + p and "Total\n" in p]
    assert "\n2025-07 " in "\n" + pages[0].split("Billable splices", 1)[1], pages[0][-400:]
    assert last_row, [p[:120] for p in pages]
    page = pages[last_row[0]]
    if last_row[0] > 0:
        assert page.startswith("Month Tasks"), page[:200]
    assert sum(p.count("\nTotal ") for p in pages[:last_row[0] + 1]) == 1


def _amount(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("+", "").strip() or "0")


def test_audit_bridge_bars_add_up_in_its_table(browser, reports):
    """The month's bridge, and each item's, as the reader sees them: expected, then each step's amount added to
    the running total, ending at the billed net; the waterfall beside the table has one bar per claimed step."""
    browser.open(reports["audit"])
    tables = browser.js("""
        return [...document.querySelectorAll('table.bridge')].map(t => ({
            id: t.id, visible: t.getBoundingClientRect().width > 0,
            rows: [...t.querySelectorAll('tbody tr')].map(tr => ({
                cls: tr.className, label: tr.querySelector('th').textContent.trim(),
                amount: (tr.querySelector('td.amount') || {}).textContent || '',
                running: tr.querySelector('td.running').textContent})),
            bars: t.closest('.bridge-block').querySelectorAll('figure.bridge-chart svg').length}));
    """)
    assert tables and tables[0]["id"] == "bridge-month-table", [t["id"] for t in tables]
    for t in tables:
        rows = t["rows"]
        assert t["visible"] and rows[0]["cls"].startswith("bridge-start") and rows[-1]["cls"].startswith("bridge-end")
        total = _amount(rows[0]["amount"])
        for r in rows[1:-1]:
            if r["cls"].startswith("bridge-step"):
                total += _amount(r["amount"])
            assert _amount(r["running"]) == total, (t["id"], r, total)
        assert _amount(rows[-1]["amount"]) == total == _amount(rows[-1]["running"]), (t["id"], rows[-1])
        assert any(r["label"].startswith("rounding") for r in rows), t["id"]
    month = tables[0]["rows"]
    kpi = browser.js("return [document.getElementById('kpi-expected').firstChild.textContent, "
                     "document.getElementById('kpi-billed').firstChild.textContent]")
    assert [_amount(month[0]["amount"]), _amount(month[-1]["amount"])] == [_amount(k) for k in kpi]
    assert tables[0]["bars"] == 1


def test_audit_prints_the_kpis_and_the_bridge_on_page_one(pdfs):
    first = pdfs["audit"][0]
    for text in ("Synthetic data.", "Billed, net", "Expected", "Bill payable total", "Bridge: expected to billed",
                 "Running total", "coverage gap", "price diﬀerence", "rounding", "Billed net"):
        assert text in first, (text, first[-600:])
