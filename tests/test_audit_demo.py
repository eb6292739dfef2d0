"""The demo pipeline: synthetic month -> local IMM server (real SDK) with an outage -> local BSS server (real SDK)
-> audit; the report finds the three planted discrepancies."""
import json

from costkit.demo.audit import MISSED_DAY, PLAN_CALLS, PLAN_DAY, PRICE_DAYS, run_demo_audit


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
