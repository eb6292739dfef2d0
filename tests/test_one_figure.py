"""One expected figure: for one month, store, prices and settings, `cost --month`, the `--by day`, `--by
project` and `--by tag` totals, the audit's expected KPI, top projects and tags and trend point, and the sum
of the FOCUS export's expected BilledCost agree to the cent (day x item lines rounded once, finer splits by
largest remainder)."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from costkit.cli.main import main
from costkit.engine.rounding import allocate_cents
from costkit.store.bills import import_bill_csv
from costkit.store.db import Store
from costkit.testing.bill_items import bill_item
from costkit.testing.synthetic_bill import write_console_csv

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
# Prices with fractions of a cent per task, so that rounding per project or per month would differ.
PRICES = """\
entries:
  - {item: imm.ImageSplicing, unit: 1000 calls, price: "2.5", currency: CNY,
     effective_from: "2025-07-28T11:00:00+08:00", confidence: contract, source: test}
  - {item: oss.GetRequest, selectors: {storage_class: Standard}, unit: 10000 requests, price: "0.01",
     currency: CNY, confidence: contract, source: test}
  - {item: oss.PutRequest, selectors: {storage_class: Standard}, unit: 10000 requests, price: "0.01",
     currency: CNY, confidence: contract, source: test}
  - {item: oss.Storage, selectors: {storage_class: Standard, redundancy: LRS}, unit: GB-month, price: "0.12",
     currency: CNY, confidence: contract, source: test}
"""


def run(store, *args):
    r = CliRunner().invoke(main, ["--store", str(store), *args])
    assert r.exit_code in (0, 1), r.output
    return r


def figures(store, month: str, prices: str, tmp_path) -> dict:
    """Every expected figure of the month, by where it is shown."""
    def cost(*by):
        return json.loads(run(store, "cost", "--month", month, "--prices", prices, "--format", "json", *by).stdout)

    out = {"cost --month": cost()["total"]}
    day = cost("--by", "day")
    out["cost --by day"] = str(sum(Decimal(g["total"]) for g in day["groups"]))
    proj = cost("--by", "project")
    out["cost --by project"] = str(sum(Decimal(g["total"]) for g in proj["groups"]))
    audit = json.loads(run(store, "audit", "--month", month, "--prices", prices, "--format", "json").stdout)
    out["audit KPI"] = audit["kpis"]["expected"]
    out["audit trend"] = next(t["expected"] for t in audit["trend"] if t["month"] == month)
    if len(proj["groups"]) <= 10:
        out["audit top projects"] = str(sum(Decimal(p["amount"]) for p in audit["top"]["projects"]))
    keys = {t["label"].split("=")[0] for t in audit["top"]["tags"]}
    for k in keys:
        vals = [t for t in audit["top"]["tags"] if t["label"].startswith(k + "=")]
        tag = cost("--by", f"tag:{k}")
        out[f"cost --by tag:{k}"] = str(sum(Decimal(g["total"]) for g in tag["groups"]))
        if len(vals) == len(tag["groups"]):
            out[f"audit top tags {k}"] = str(sum(Decimal(t["amount"]) for t in vals))
    path = tmp_path / f"focus-{month}.csv"
    run(store, "export", "--month", month, "--prices", prices, "--rows", "expected", "--out", str(path))
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    out["FOCUS expected BilledCost"] = str(sum(Decimal(r["BilledCost"]) for r in rows))
    exact = sum(Fraction(Decimal(r["x_costkit_exact_cost"])) for r in rows)
    out["_exact"] = exact
    return out


def _several_projects(path):
    """Tasks of 3 projects and 2 tag keys over 5 days (prices in fractions of a cent), and their bill."""
    recs, items = [], []
    for d in range(1, 6):
        day = f"2025-09-{d:02d}"
        for i in range(7 + d):
            end = datetime.fromisoformat(day).replace(hour=3 + i % 20, tzinfo=SH) + timedelta(seconds=i)
            recs.append(dict(region="cn-hangzhou", project=f"p{i % 3}", task_id=f"t-{day}-{i}",
                             task_type="ImageSplicing", status="Succeeded", start_time=end - timedelta(seconds=3),
                             end_time=end, sources=[{"uri": f"oss://b/in/{day}/{i}.jpg", "rotate": None}],
                             target_uri=f"oss://b/out/{day}/{i}.jpg",
                             tags={"team": "abc"[i % 3], "env": "xy"[i % 2]} if i % 4 else {},
                             origin="listtasks"))
        n = 7 + d
        items.append(bill_item(day, "imm", "ImageSplicing", product_name="智能媒体管理",
                               pretax_gross=str(Decimal(n) * Decimal("0.0025")), list_price="2.5",
                               list_price_unit="CNY/千次", usage=str(n), usage_unit="次", instance_id="p0"))
        items.append(bill_item(day, "oss", "GetRequest", billing_item="GET类请求次数", product_name="对象存储",
                               pretax_gross="0.01", list_price="0.01", list_price_unit="CNY/万次", usage=str(2 * n),
                               usage_unit="次", instance_id="cn-hangzhou;standard"))
    with Store.open(path) as s:
        s.upsert_tasks(recs, seen_at=datetime(2025, 10, 1, tzinfo=UTC))
        rid = s.begin_run("listtasks", "cn-hangzhou", "p0", datetime(2025, 8, 31, 16, tzinfo=UTC),
                          datetime(2025, 9, 30, 16, tzinfo=UTC))
        s.finish_run(rid, pages=1, new=0, updated=0, unchanged=0, errors=[], ok=True)
        import_bill_csv(s, write_console_csv(items, path.with_suffix(".csv"), language="en", encoding="utf-8"))


def _assert_one_figure(f: dict):
    exact = f.pop("_exact")
    assert len(set(f.values())) == 1, f
    return exact


def test_every_expected_figure_agrees_on_a_store_with_several_projects_and_tags(tmp_path):
    store = tmp_path / "s.duckdb"
    _several_projects(store)
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    f = figures(store, "2025-09", str(prices), tmp_path)
    assert {"cost --by tag:team", "audit top tags team", "audit top projects"} <= set(f)
    exact = _assert_one_figure(f)
    assert abs(exact - Fraction(Decimal(f["cost --month"]))) < Fraction(5, 100)   # a few day lines' rounding


def test_every_expected_figure_agrees_on_the_demo_store(tmp_path):
    from costkit.demo.audit import MONTH, run_demo_audit
    r = run_demo_audit(tmp_path / "demo", per_day=30)
    _assert_one_figure(figures(r.store, MONTH, str(r.prices), tmp_path))


def test_the_demo_advice_leaves_the_audit_store_agreeing_with_the_audit_report(tmp_path):
    """The demo's advice plants synthetic object facts in a copy: `cost --month` on the audit's store still
    gives the expected KPI that audit-2025-08.json printed (a bug: the facts went into the audit's store)."""
    from costkit.demo.advise import run_demo_advise
    from costkit.demo.audit import MONTH, run_demo_audit
    r = run_demo_audit(tmp_path / "demo", per_day=30)
    audit_expected = json.loads(r.json.read_text(encoding="utf-8"))["kpis"]["expected"]
    run_demo_advise(tmp_path / "demo", r.store, r.prices, MONTH)
    assert figures(r.store, MONTH, str(r.prices), tmp_path)["audit KPI"] == audit_expected
    assert (tmp_path / "demo" / "advise-demo.duckdb").exists()


def test_largest_remainder_hands_out_exactly_the_line_cents():
    parts = {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}
    assert allocate_cents(Decimal("1.00"), parts) == {"a": Decimal("0.34"), "b": Decimal("0.33"),
                                                      "c": Decimal("0.33")}
    parts = {"a": Fraction(4, 1000), "b": Fraction(4, 1000), "c": Fraction(2, 1000)}   # 0.010 -> 0.01
    got = allocate_cents(Decimal("0.01"), parts)
    assert sum(got.values()) == Decimal("0.01") and got["c"] == 0


def test_auditing_with_prices_learnt_from_the_same_bill_warns_and_names_the_entries(tmp_path):
    store = tmp_path / "s.duckdb"
    _several_projects(store)
    learnt = tmp_path / "learnt.yaml"
    r = run(store, "prices", "learn", "--month", "2025-09", "--out", str(learnt))
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["--store", str(store), "audit", "--month", "2025-09", "--prices", str(learnt),
                                  "--format", "json"])
    m = json.loads(r.stdout)
    trap = m["learnt_from_this_bill"]
    assert {e["item"] for e in trap["entries"]} >= {"imm.ImageSplicing"}
    assert "price differences cannot show" in trap["warning"] and "imm.ImageSplicing" in trap["warning"]
    assert m["warnings"][0] == trap["warning"] or m["warnings"][1] == trap["warning"]
    assert "costkit: warning: Prices learnt from the 2025-09 bill" in r.stderr
    html = CliRunner().invoke(main, ["--store", str(store), "audit", "--month", "2025-09", "--prices",
                                     str(learnt), "--format", "html"]).stdout
    assert 'id="learnt-trap"' in html.split("</header>")[0]
    # a contract price file does not warn
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    m = json.loads(run(store, "audit", "--month", "2025-09", "--prices", str(prices), "--format", "json").stdout)
    assert m["learnt_from_this_bill"] == {"warning": None, "entries": []}
