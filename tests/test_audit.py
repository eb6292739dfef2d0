"""costkit audit: a reconciliation case for every cause, tolerance and exit status, escaping, gold files.

Stores are built with the real store API (upsert_tasks, collection runs) and bills with the real bill importer
(a console CSV written by costkit.testing.synthetic_bill). Test prices are round: 1 CNY per splice.
Regenerate the gold files with: COSTKIT_REGEN_GOLD=1 .venv/bin/python -m pytest tests/test_audit.py
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from gold_html import scrub_html
from costkit.audit.reconcile import build_audit
from costkit.audit.tolerance import parse_floor, parse_tolerance
from costkit.outputs.audit import render_audit
from costkit.store.bills import import_bill_csv
from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.store.db import Store
from costkit.testing.bill_items import bill_item
from costkit.testing.synthetic_bill import write_console_csv

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")
GOLD = Path(__file__).parent / "gold"
REGION, PROJECT = "cn-hangzhou", "p1"
PRICES = """\
entries:
  - {item: imm.ImageSplicing, unit: calls, price: "1", currency: CNY, effective_from: "2025-07-28T11:00:00+08:00",
     confidence: contract, source: test contract price}
  - {item: oss.GetRequest, selectors: {storage_class: Standard}, unit: requests, price: "0.01", currency: CNY,
     confidence: contract, source: test}
  - {item: oss.PutRequest, selectors: {storage_class: Standard}, unit: requests, price: "0", currency: CNY,
     confidence: contract, source: test}
  - {item: oss.Storage, selectors: {storage_class: Standard, redundancy: LRS}, unit: GB-month, price: "0",
     currency: CNY, confidence: contract, source: test}
"""


@pytest.fixture()
def prices(tmp_path):
    p = tmp_path / "prices.yaml"
    p.write_text(PRICES)
    return str(p)


def at(day: str, hour: int = 12, second: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SH) + timedelta(seconds=second)


def add_tasks(store, day, n, *, status="Succeeded", hour=12, sources=0, tags=None, user_data=None, target=None,
              prefix="t"):
    recs = []
    for i in range(n):
        end = at(day, hour, i)
        recs.append(dict(region=REGION, project=PROJECT, task_id=f"{prefix}-{day}-{hour}-{status}-{i}",
                         task_type="ImageSplicing", status=status, start_time=end - timedelta(seconds=3),
                         end_time=end, sources=[{"uri": f"oss://b/in/{day}/{i}/{k}.jpg", "rotate": None}
                                                for k in range(sources)],
                         target_uri=target, tags=tags or {"team": "a"}, user_data=user_data, origin="listtasks"))
    store.upsert_tasks(recs, seen_at=datetime(2025, 10, 1, tzinfo=UTC))


def collected(store, start: str, end: str):
    """A successful collection run whose window is [start, end) (Asia/Shanghai dates or instants)."""
    s = datetime.fromisoformat(start).replace(tzinfo=SH) if len(start) == 10 else datetime.fromisoformat(start)
    e = datetime.fromisoformat(end).replace(tzinfo=SH) if len(end) == 10 else datetime.fromisoformat(end)
    rid = store.begin_run("listtasks", REGION, PROJECT, s, e)
    store.finish_run(rid, pages=1, new=0, updated=0, unchanged=0, errors=[], ok=True)


def splice_line(day, calls, *, price="1000", plan="0", discount="0", coupons="0", billing_item="ImageSplicing"):
    gross = Decimal(calls) * Decimal(price) / 1000
    return bill_item(day, "imm", "ImageSplicing", billing_item=billing_item, product_name="智能媒体管理",
                     pretax_gross=str(gross), invoice_discount=discount, coupons=coupons, resource_package=plan,
                     pretax=str(gross - Decimal(discount) - Decimal(coupons) - Decimal(plan)), list_price=price,
                     list_price_unit="CNY/千次", usage=str(calls), usage_unit="次", instance_id=PROJECT,
                     region=REGION)


def import_bill(store, tmp_path, items, name="bill.csv"):
    path = write_console_csv(items, tmp_path / name, language="en", encoding="utf-8")
    import_bill_csv(store, path)


def audit(store, prices, month="2025-09", **kw):
    return build_audit(store, month, prices_file=prices, **kw)


def day_row(model, day, item="imm.ImageSplicing"):
    return next(r for r in model["days"] if r["day"] == day and r["item"] == item)


def causes(row) -> dict:
    return {c["cause"]: c["amount"] for c in row["causes"]}


def item_row(model, item="imm.ImageSplicing"):
    return next(r for r in model["items"] if r["item"] == item)


@pytest.fixture()
def store():
    with Store.open(":memory:") as st:
        yield st


def base_month(store, days=("2025-09-01", "2025-09-02", "2025-09-03"), n=10):
    for d in days:
        add_tasks(store, d, n)
    collected(store, "2025-08-31", "2025-10-01")


# ---------------------------------------------------------------------------------------------
# Every cause

def test_matching_bill_has_no_variance(store, tmp_path, prices):
    base_month(store)
    import_bill(store, tmp_path, [splice_line(d, 10) for d in ("2025-09-01", "2025-09-02", "2025-09-03")])
    m = audit(store, prices)
    r = item_row(m)
    assert (r["billed_quantity"], r["expected_quantity"], r["billed_net"], r["expected"], r["variance"]) == \
        ("30", "30", "30.00", "30.00", "0.00")
    assert r["causes"] == [] and r["explanation"] == "matches" and r["within_tolerance"]
    assert m["status"] == "within tolerance" and m["out_of_tolerance"] == [] and m["format_version"] == 1
    assert m["anomalies"] == [] and m["kpis"]["direction"] == "none"


def test_coverage_gap(store, tmp_path, prices):
    add_tasks(store, "2025-09-01", 10)
    add_tasks(store, "2025-09-03", 10)
    collected(store, "2025-08-31", "2025-09-02")
    collected(store, "2025-09-03", "2025-10-01")       # 09-02 was never collected: its tasks are lost
    import_bill(store, tmp_path, [splice_line(d, 10) for d in ("2025-09-01", "2025-09-02", "2025-09-03")])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-02")) == {"coverage_gap": "10.00"}
    r = item_row(m)
    assert r["variance"] == "10.00" and r["causes"][0]["quantity"] == "10" and not r["within_tolerance"]
    cal = {c["day"]: c["state"] for c in m["coverage"]["calendar"]}
    assert cal["2025-09-02"] == "gap" and cal["2025-09-01"] == "collected"
    assert m["coverage"]["gaps"][0]["start"].startswith("2025-09-01T16:00")
    assert [a["day"] for a in m["anomalies"]] == ["2025-09-02"]
    assert any(u["kind"] == "no collected task" and u["day"] == "2025-09-02"
               for u in m["unmatched"]["bill_lines_without_tasks"])


def test_price_difference(store, tmp_path, prices):
    base_month(store)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10), splice_line("2025-09-02", 10, price="1200"),
                                  splice_line("2025-09-03", 10)])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-02")) == {"price": "2.00"}
    r = item_row(m)
    assert r["variance"] == "2.00" and r["list_prices"] == ["1000 CNY/千次", "1200 CNY/千次"]
    assert "price difference" in r["explanation"]


def test_usage_difference(store, tmp_path, prices):
    base_month(store)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10), splice_line("2025-09-02", 13),
                                  splice_line("2025-09-03", 10)])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-02")) == {"usage": "3.00"}
    assert item_row(m)["quantity_delta"] == "3"


def test_discounts_and_resource_plan_each_shown(store, tmp_path, prices):
    base_month(store)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10, plan="3", discount="1", coupons="0.5"),
                                  splice_line("2025-09-02", 10), splice_line("2025-09-03", 10)])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-01")) == {"discount": "-1.00", "coupons": "-0.50", "resource_plan": "-3.00"}
    r = item_row(m)
    assert (r["billed_gross"], r["invoice_discount"], r["deducted_by_coupons"], r["deducted_by_resource_package"],
            r["billed_net"], r["variance"]) == ("30.00", "1.00", "0.50", "3.00", "25.50", "-4.50")
    assert m["kpis"]["direction"] == "favourable"
    assert m["kpis"]["deductions"]["deducted_by_resource_package"] == "3.00"


def test_splices_before_the_cutover(store, tmp_path, prices):
    add_tasks(store, "2025-07-27", 4)                  # wholly before the cutover: free
    add_tasks(store, "2025-07-28", 5, hour=9)           # before 11:00 on the cutover day: free
    add_tasks(store, "2025-07-28", 6, hour=15)          # after: paid
    collected(store, "2025-07-01", "2025-08-01")
    import_bill(store, tmp_path, [splice_line("2025-07-27", 4), splice_line("2025-07-28", 11)])
    m = audit(store, prices, month="2025-07")
    assert causes(day_row(m, "2025-07-27")) == {"before_cutover": "4.00"}
    assert causes(day_row(m, "2025-07-28")) == {"before_cutover": "5.00"}
    r = item_row(m)
    assert r["expected"] == "6.00" and r["variance"] == "9.00"
    assert r["causes"][0]["quantity"] == "9"


def test_failed_tasks_that_were_billed(store, tmp_path, prices):
    base_month(store)
    add_tasks(store, "2025-09-02", 3, status="Failed", hour=14)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10), splice_line("2025-09-02", 13),
                                  splice_line("2025-09-03", 10)])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-02")) == {"failed_billed": "3.00"}
    assert m["kpis"]["failed"] == 3 and m["kpis"]["failure_rate_pct"] == "9.09"


def test_day_boundary_nets_out_across_adjacent_days(store, tmp_path, prices):
    base_month(store)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10), splice_line("2025-09-02", 12),
                                  splice_line("2025-09-03", 8)])
    m = audit(store, prices)
    assert causes(day_row(m, "2025-09-02")) == {"day_boundary": "2.00"}
    assert causes(day_row(m, "2025-09-03")) == {"day_boundary": "-2.00"}
    r = item_row(m)
    assert r["variance"] == "0.00" and r["within_tolerance"]
    assert {a["day"] for a in m["anomalies"]} == {"2025-09-02", "2025-09-03"}


def test_day_boundary_when_the_bill_uses_utc_days(store, tmp_path, prices):
    nights = {"2025-09-01": 5, "2025-09-02": 2, "2025-09-03": 7, "2025-09-04": 1}   # 03:00 UTC+8 = previous UTC day
    for d, n in nights.items():
        add_tasks(store, d, 10)
        add_tasks(store, d, n, hour=3)
    collected(store, "2025-08-31", "2025-10-01")
    days = sorted(nights)
    bill = [splice_line(d, 10 + (nights[days[i + 1]] if i + 1 < len(days) else 0)) for i, d in enumerate(days)]
    import_bill(store, tmp_path, bill)
    m = audit(store, prices)
    assert [causes(day_row(m, d)) for d in days] == [{"day_boundary": "-3.00"}, {"day_boundary": "5.00"},
                                                      {"day_boundary": "-6.00"}, {"day_boundary": "-1.00"}]
    assert any("UTC days" in w for w in m["warnings"])


def test_oss_lines_claim_only_the_splicing_share(store, tmp_path, prices):
    for d in ("2025-09-01", "2025-09-02"):
        add_tasks(store, d, 10, sources=5)               # 10 x 5 x (HEAD + GET) = 100 GET-type requests a day
    collected(store, "2025-08-31", "2025-10-01")
    items = [splice_line(d, 10) for d in ("2025-09-01", "2025-09-02")]
    for d, usage in (("2025-09-01", 1000), ("2025-09-02", 50)):   # the bucket serves others too; 09-02 is short
        items.append(bill_item(d, "oss", "GetRequest", billing_item="GET类请求次数", product_name="对象存储",
                               pretax_gross=str(Decimal(usage) / 100), list_price="0.01", list_price_unit="CNY/次",
                               usage=str(usage), usage_unit="次", instance_id="cn-hangzhou;standard"))
    import_bill(store, tmp_path, items)
    m = audit(store, prices)
    d1, d2 = day_row(m, "2025-09-01", "oss.GetRequest"), day_row(m, "2025-09-02", "oss.GetRequest")
    assert (d1["expected"], d1["billed_net"], d1["variance"], d1["not_splicing"]) == ("1.00", "10.00", "0.00", "9.00")
    assert causes(d1) == {"not_splicing": "9.00"}
    assert (d2["variance"], causes(d2)) == ("-0.50", {"usage": "-0.50"})
    r = item_row(m, "oss.GetRequest")
    assert r["claim"] == "splicing share" and r["not_splicing"] == "9.00" and r["variance"] == "-0.50"
    assert m["kpis"]["not_splicing"] == "9.00"


def test_causes_add_up_to_every_variance(store, tmp_path, prices):
    base_month(store, n=7)
    add_tasks(store, "2025-09-02", 2, status="Failed", hour=14)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 7, price="1333", plan="0.33"),
                                  splice_line("2025-09-02", 9), splice_line("2025-09-03", 7, discount="0.07"),
                                  splice_line("2025-09-04", 5)])
    m = audit(store, prices)
    for r in m["days"] + m["items"]:
        assert sum(Decimal(c["amount"]) for c in r["causes"] if c["claimed"]) == Decimal(r["variance"]), r
        assert Decimal(r["billed_net"]) - Decimal(r["expected"]) == Decimal(r["variance"]) + Decimal(r["not_splicing"])
    assert sum(Decimal(r["variance"]) for r in m["items"]) == Decimal(m["kpis"]["variance"])


def test_a_product_missing_from_the_bill_is_not_audited(store, tmp_path, prices):
    add_tasks(store, "2025-09-01", 10, sources=5)        # expected OSS GET requests, but an IMM-only bill
    collected(store, "2025-08-31", "2025-10-01")
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10)])
    m = audit(store, prices)
    assert [r["item"] for r in m["items"]] == ["imm.ImageSplicing"] and m["status"] == "within tolerance"
    assert m["not_audited"][0]["item"] == "oss.GetRequest" and m["not_audited"][0]["expected"] == "1.00"
    assert any(w.startswith("Not audited: oss.GetRequest") for w in m["warnings"])


# ---------------------------------------------------------------------------------------------
# Tolerance, exit status, bad input

def test_tolerance_parsing():
    assert parse_tolerance("1%") == Decimal("0.01") and parse_tolerance("0.5 %") == Decimal("0.005")
    assert parse_tolerance("0.02") == Decimal("0.02") and parse_floor("0.10") == Decimal("0.10")
    for bad in ("abc", "100%", "-1%", "nan"):
        with pytest.raises(BadInput):
            parse_tolerance(bad)
    with pytest.raises(BadInput):
        parse_floor("-1")



def test_public_audit_names_are_the_split_modules_functions():
    """`from costkit.audit import ...` (README) still gives the audit and its renderer, from their homes."""
    import costkit
    import costkit.audit as audit

    assert audit.build_audit is build_audit is costkit.build_audit
    assert audit.render_audit is render_audit
    assert (audit.parse_tolerance, audit.parse_floor) == (parse_tolerance, parse_floor)
    with pytest.raises(AttributeError):
        audit.no_such_name

def test_floor_keeps_tiny_items_within_tolerance(store, tmp_path, prices):
    base_month(store, days=("2025-09-01",), n=3)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 3, price="1010")])   # +0.03 on 3.00 = 1 %
    assert item_row(audit(store, prices, tolerance=Decimal("0")))["within_tolerance"]     # floor 0.05
    assert not item_row(audit(store, prices, tolerance=Decimal("0"), floor=Decimal("0.01")))["within_tolerance"]


def _disk_store(tmp_path, bill_price):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as st:
        base_month(st)
        import_bill(st, tmp_path, [splice_line(d, 10, price=bill_price)
                                   for d in ("2025-09-01", "2025-09-02", "2025-09-03")])
    return path


def test_cli_exit_0_within_tolerance(tmp_path, prices):
    path = _disk_store(tmp_path, "1000")
    out = tmp_path / "a.json"
    r = CliRunner().invoke(main, ["--store", str(path), "audit", "--month", "2025-09", "--prices", prices,
                                  "--format", "json", "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    assert json.loads(out.read_text())["status"] == "within tolerance"


def test_cli_exit_3_out_of_tolerance_after_writing_the_report(tmp_path, prices):
    path = _disk_store(tmp_path, "1100")
    for fmt in ("html", "csv"):
        out = tmp_path / f"a.{fmt}"
        r = CliRunner().invoke(main, ["--store", str(path), "audit", "--month", "2025-09", "--prices", prices,
                                      "--tolerance", "1%", "--format", fmt, "--out", str(out)])
        assert r.exit_code == 3, r.stderr
        assert "outside the tolerance" in r.stderr and out.exists()
    rows = out.read_text().splitlines()
    assert rows[0].startswith("scope,day,item") and "price=3.00" in rows[1]
    r = CliRunner().invoke(main, ["--store", str(path), "audit", "--month", "2025-09", "--prices", prices,
                                  "--tolerance", "15%", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["items"][0]["status"] == "within tolerance"


def test_cli_bad_input_exit_2(tmp_path, prices):
    path = _disk_store(tmp_path, "1000")
    for args in (["--month", "2025-13"], ["--month", "2025-09", "--tolerance", "x"],
                 ["--month", "2025-10"]):                                   # no bill for October
        r = CliRunner().invoke(main, ["--store", str(path), "audit", *args, "--prices", prices])
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1


def test_without_a_book_price_the_bill_price_is_used_and_said(store, tmp_path):
    base_month(store)
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10, price="500"), splice_line("2025-09-02", 10, price="500"),
                                  splice_line("2025-09-03", 10, price="600")])
    m = build_audit(store, "2025-09")
    assert any("predominant price 500" in w for w in m["warnings"])
    assert causes(day_row(m, "2025-09-03")) == {"price": "1.00"}


# ---------------------------------------------------------------------------------------------
# Escaping, gold files

EVIL = "<script>alert(1)</script>"


def test_outside_text_is_escaped(store, tmp_path, prices):
    base_month(store, days=("2025-09-01",))
    add_tasks(store, "2025-09-02", 2, tags={"team": EVIL}, user_data=EVIL, target=f"oss://b/out/{EVIL}.jpg",
              prefix="evil")
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10),
                                  bill_item("2025-09-01", "oss", "Weird", billing_item=EVIL, product_name=EVIL,
                                            pretax_gross="0.01", usage="1", usage_unit="次", instance_id=EVIL)])
    m = audit(store, prices)
    html = render_audit(m, "html", generated_at="2025-10-01T00:00:00+00:00")
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;") >= 4      # tag label, UserData, object key, bill text
    assert f"team={EVIL}" in json.dumps([t["label"] for t in m["top"]["tags"]], ensure_ascii=False)


def _gold_case(tmp_path, prices):
    st = Store.open(tmp_path / "gold.duckdb")
    base_month(st, days=("2025-09-01", "2025-09-02", "2025-09-03", "2025-09-04"), n=10)
    add_tasks(st, "2025-09-02", 3, status="Failed", hour=14)
    add_tasks(st, "2025-09-05", 4, sources=2, tags={"team": "b"})
    import_bill(st, tmp_path, [splice_line("2025-09-01", 10, plan="2"), splice_line("2025-09-02", 13),
                               splice_line("2025-09-03", 10, price="1200"), splice_line("2025-09-04", 12),
                               splice_line("2025-09-05", 2), splice_line("2025-09-06", 5),
                               bill_item("2025-09-05", "oss", "NetworkOut", billing_item="外网流出流量",
                                         product_name="对象存储", pretax_gross="0.5", usage="1", usage_unit="GB")])
    m = audit(st, prices)
    st.close()
    return m


VOLATILE = ("generated_at", "imported_at", "started_at", "costkit_version", "origin", "bill", "prices_file")


def _scrub(obj):
    if isinstance(obj, dict):
        return {k: ("<scrubbed>" if k in VOLATILE and v is not None else _scrub(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def _check_gold(name, text):
    path = GOLD / name
    if os.environ.get("COSTKIT_REGEN_GOLD") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing gold file {path}; regenerate with COSTKIT_REGEN_GOLD=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; regenerate with COSTKIT_REGEN_GOLD=1"


def test_gold_json_and_html(tmp_path, prices):
    m = _scrub(_gold_case(tmp_path, prices))
    m["price_book"]["version"] = "<scrubbed>"
    _check_gold("audit_report.json", render_audit(m, "json"))
    html = render_audit(m, "html", generated_at="<scrubbed>")
    assert "<style>" in html and "@media print" in html  # the stylesheet is inlined (then scrubbed below)
    _check_gold("audit_report.html", scrub_html(html))
    assert {c["cause"] for r in m["items"] for c in r["causes"]} >= {"resource_plan", "failed_billed", "price",
                                                                     "day_boundary", "coverage_gap"}
