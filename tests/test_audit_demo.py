"""The demo pipeline: synthetic month -> local IMM server (real SDK) with an outage -> local BSS server (real SDK)
-> audit; the report finds the three planted discrepancies."""
import json

from costkit.demo.audit import MISSED_DAY, PLAN_DAY, PRICE_DAYS, run_demo_audit


def test_demo_audit_finds_the_planted_discrepancies(tmp_path):
    r = run_demo_audit(tmp_path, per_day=40)
    assert all(r.found.values()), r.found
    assert any("may already be lost" in w for w in r.warnings)          # the retention guard warned
    m = json.loads(r.json.read_text(encoding="utf-8"))
    days = {(d["day"], d["item"]): {c["cause"]: c for c in d["causes"]} for d in m["days"]}
    assert "coverage_gap" in days[(MISSED_DAY, "imm.ImageSplicing")]
    assert all("price" in days[(d, "imm.ImageSplicing")] for d in PRICE_DAYS)
    assert days[(PLAN_DAY, "imm.ImageSplicing")]["resource_plan"]["amount"] == "-0.05"  # PLAN_CALLS x 2.5 / 1000
    assert any(g["start"].startswith("2025-08-09T16:10") for g in m["coverage"]["gaps"])
    html = r.html.read_text(encoding="utf-8")
    assert "coverage gap" in html and "covered by resource plan" in html and "price difference" in html
    assert "SYNTHETIC" in html and r.store.parent == tmp_path
    assert r.csv.read_text(encoding="utf-8").startswith("scope,day,item")


def test_demo_month_is_the_union_of_two_console_exports(tmp_path):
    from costkit.store.bills import bill_sources
    from costkit.store.db import Store
    from costkit.demo.audit import MONTH

    r = run_demo_audit(tmp_path, per_day=20)
    assert "import #1" in r.bill_line and "import #2" in r.bill_line
    assert "products imm" in r.bill_line and "products oss" in r.bill_line
    first = (tmp_path / f"bill-{MONTH}-imm.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert first.startswith("资源购买账号ID,资源购买账号,资源归属账号ID") and len(first.split(",")) == 39
    with Store.open(r.store) as s:
        assert len(bill_sources(s, MONTH)) == 2
