"""costkit advise: each rule fires on planted waste and stays quiet without it, and each saving matches a
hand computation on a small history (the prices used are written beside each computation).

Prices (tests/test_cost.PRICES, user layer, CNY): ImageSplicing 1 per call; GET and PUT 0.01 per request
in Standard, 0.1 in IA/Archive; IA retrieval 1 per GB; acceleration 0.5 per GB; storage per GB-hour
Standard 0.001 (0.72 per GB-month), IA 0.002 (1.44); early deletion at the class's storage price.
`IA_CHEAP` makes IA storage 0.0005 per GB-hour (0.36 per GB-month), as IA is really cheaper than Standard.
"""
from __future__ import annotations

import hashlib
from decimal import Decimal
import json

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from costkit.advise.run import advise
from costkit.cli.main import main
from costkit.engine.period import parse_period
from costkit.model.settings import parse_settings
from costkit.store.db import Store
from test_cost import GB, KB, T, add_task, bucket, obj, prices, store  # noqa: F401 (fixtures)

SEP = parse_period("2025-09")
IA_CHEAP = [{"item": "oss.Storage", "selectors": {"storage_class": "IA", "redundancy": "LRS"}, "unit": "GB-month",
             "price": "0.36", "currency": "CNY", "confidence": "contract", "source": "test"}]


def run(store, prices_path, **settings):
    """Advise on September; a `prices=` overlay replaces the matching entries of the prices file (a user
    file outranks settings `prices:`, so the overlay is written into the file the engine reads)."""
    overlay = settings.pop("prices", None)
    if overlay:
        prices_path = _with_overlay(prices_path, overlay)
    return advise(store, SEP, prices_file=prices_path, settings=parse_settings(settings) if settings else None)


def _with_overlay(prices_path, overlay) -> str:
    def key(e):
        return e["item"], tuple(sorted((e.get("selectors") or {}).items()))
    doc = yaml.safe_load(Path(prices_path).read_text())
    replaced = {key(e) for e in overlay}
    doc["entries"] = [e for e in doc["entries"] if key(e) not in replaced] + list(overlay)
    out = Path(prices_path).with_name("prices-overlay.yaml")
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(out)


def only(model, rule):
    found = [f for f in model["findings"] if f["rule"] == rule]
    assert len(found) <= 1
    return found[0] if found else None


def test_ia_small_targets_fires_with_hand_computed_saving(store, prices):
    # A 1 GB floor (usage.min_billable_kb) makes the minimum size visible in cents: a 0.5 GB IA target bills 1 GB.
    add_task(store, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg"], "oss://d/small.jpg")   # stored 496 h in Sep
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/small.jpg", GB // 2, "IA")
    f = only(run(store, prices, usage={"min_billable_kb": 1024 * 1024}), "ia_small_targets")
    # figures are sums of day x item lines, each rounded once (costkit.engine.rounding):
    # today: storage 1 GB x 0.002/h: 09-10 16 h 0.032 -> 0.03, 20 days x 0.048 -> 0.05 = 1.03; PUT IA 0.10; = 1.13
    # after (Standard): 0.5 GB x 0.001/h: 16 h 0.008 -> 0.01, 20 days x 0.012 -> 0.01 = 0.21; PUT 0.01; = 0.22
    assert (f["today"], f["after"]) == ("1.13", "0.22")
    assert f["saving"] == {"period": "0.91", "month": "0.91", "year": "10.92"}
    # one-time: copy (PUT Standard 0.01) + early deletion of the IA copy, 720 - 496 = 224 h x 1 GB x 0.002 = 0.448
    assert [x["amount"] for x in f["one_time"]["lines"]] == ["0.01", "0.45"] and f["one_time"]["total"] == "0.46"
    assert f["evidence"]["objects"] == 1 and f["evidence"]["buckets"] == ["d"]


def test_ia_small_targets_does_not_fire_on_large_ia_or_small_standard(store, prices):
    add_task(store, "t1", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/big.jpg")
    add_task(store, "t2", T(2025, 9, 11), ["oss://s/a.jpg"], "oss://d/small-std.jpg")
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/big.jpg", 100 * KB, "IA")
    obj(store, "oss://d/small-std.jpg", 10 * KB, "Standard")
    assert only(run(store, prices), "ia_small_targets") is None


def test_early_deleted_targets_fires_with_hand_computed_saving(store, prices):
    add_task(store, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg"], "oss://d/short.jpg")
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/short.jpg", GB, "IA", gone_since=T(2025, 9, 15))   # kept 120 h (written in hour 00:00Z)
    f = only(run(store, prices), "early_deleted_targets")
    # day x item lines, each rounded once: storage 1 GB x 0.002/h: 09-10 16 h 0.032 -> 0.03, 4 days x 0.048
    # -> 0.05, 09-15 8 h 0.016 -> 0.02 = 0.25; early deletion (720 - 120) h x 0.002 = 1.20; PUT IA 0.10: 1.55
    # after (Standard, 0.001/h): 0.02 + 4 x 0.02 + 0.01 = 0.11; PUT 0.01: 0.12 -> saving 1.43
    assert (f["today"], f["after"], f["saving"]["period"]) == ("1.55", "0.12", "1.43")
    assert f["one_time"]["total"] == "0.00"


def test_early_deleted_targets_does_not_fire_past_the_minimum_or_in_standard(store, prices):
    add_task(store, "old", T(2025, 8, 1), ["oss://s/a.jpg"], "oss://d/old.jpg")
    add_task(store, "std", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/std.jpg")
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/old.jpg", GB, "IA", gone_since=T(2025, 9, 15))   # 45 days: past IA's 30
    obj(store, "oss://d/std.jpg", GB, "Standard", gone_since=T(2025, 9, 12))
    assert only(run(store, prices), "early_deleted_targets") is None


def test_hot_ia_sources_fires_and_counts_source_storage_and_reads_elsewhere(store, prices):
    for i in range(3):
        add_task(store, f"t{i}", T(2025, 9, 10 + i), ["oss://s/hot.jpg"], None)
    obj(store, "oss://s/hot.jpg", GB, "IA")   # no Last-Modified: exists the whole month (720 h)
    f = only(run(store, prices, prices=IA_CHEAP), "hot_ia_sources")
    # today: GET 3 tasks x (HEAD + GET) x 0.1 = 0.60; IA retrieval 3 x 1 GB x 1 = 3.00: 3.60
    # after (Standard): GET 6 x 0.01 = 0.06; no retrieval -> replay saves 3.54
    # source storage: Standard 1 GB x 720 h x 0.001 = 0.72 instead of IA 720 x 0.0005 = 0.36 -> costs 0.36
    assert (f["today"], f["after"]) == ("3.60", "0.06")
    assert [a["amount"] for a in f["adjustments"]] == ["-0.36"]
    assert f["saving"]["period"] == "3.18" and f["needs"] == ["sources_read_elsewhere_per_month"]
    g = only(run(store, prices, prices=IA_CHEAP, advise={"sources_read_elsewhere_per_month": 2}), "hot_ia_sources")
    # 2 reads elsewhere: retrieval 2 x 1 GB x 1 + GET 2 x (0.1 - 0.01) = 2.18 more
    assert [a["amount"] for a in g["adjustments"]] == ["-0.36", "2.18"]
    assert g["saving"]["period"] == "5.36" and g["needs"] == []


def test_hot_ia_sources_does_not_fire_when_storage_outweighs_reads(store, prices):
    add_task(store, "t1", T(2025, 9, 10), ["oss://s/cold.jpg"], None)
    obj(store, "oss://s/cold.jpg", GB, "IA")
    cheap_reads = IA_CHEAP + [{"item": "oss.IaRetrieval", "unit": "GB", "price": "0.01", "currency": "CNY",
                               "confidence": "contract", "source": "test"}]
    # one read saves 0.01 + 2 x (0.1 - 0.01) = 0.19 < Standard storage's extra 0.36
    assert only(run(store, prices, prices=cheap_reads), "hot_ia_sources") is None


def test_archive_without_direct_read_fires_on_failed_tasks(store, prices):
    add_task(store, "f1", T(2025, 9, 10), ["oss://arc/a.jpg"], "oss://d/x.jpg", status="Failed")
    add_task(store, "f2", T(2025, 9, 11), ["oss://arc/a.jpg"], "oss://d/y.jpg", status="Failed")
    obj(store, "oss://arc/a.jpg", GB, "Archive")
    bucket(store, "arc", False)
    f = only(run(store, prices), "archive_no_direct_read")
    # each failed task: 1 HEAD at the Archive GET price 0.1 (the GET is refused, 4xx, unbilled): 0.20 saved
    assert (f["today"], f["after"], f["saving"]["period"]) == ("0.20", "0.00", "0.20")
    assert f["evidence"]["buckets"] == ["arc"] and f["evidence"]["tasks"] == 2


def test_archive_rule_does_not_fire_with_direct_read_or_restored(store, prices):
    add_task(store, "f1", T(2025, 9, 10), ["oss://arc/a.jpg"], None, status="Failed")
    add_task(store, "f2", T(2025, 9, 10), ["oss://arc2/b.jpg"], None, status="Failed")
    obj(store, "oss://arc/a.jpg", GB, "Archive")
    obj(store, "oss://arc2/b.jpg", GB, "Archive", restore="restored", expiry=T(2025, 9, 20))
    bucket(store, "arc", True)
    bucket(store, "arc2", False)
    assert only(run(store, prices), "archive_no_direct_read") is None


def test_failed_retries_fires_with_the_failed_attempts_reads(store, prices):
    add_task(store, "f1", T(2025, 9, 11), ["oss://s/a.jpg", "oss://s/b.jpg"], "oss://d/o.jpg", status="Failed")
    add_task(store, "r1", T(2025, 9, 11, 1), ["oss://s/a.jpg", "oss://s/b.jpg"], "oss://d/o.jpg")
    obj(store, "oss://s/a.jpg", GB)
    obj(store, "oss://s/b.jpg", GB)
    f = only(run(store, prices), "failed_retries")
    # the failed attempt: 2 sources x (HEAD + GET) x 0.01 = 0.04
    assert (f["today"], f["after"], f["saving"]["period"]) == ("0.04", "0.00", "0.04")
    assert f["evidence"]["examples"][0][:4] == ["f1", "", "2025-09-11T08:00:00+08:00", "r1"]


def test_failed_retries_does_not_fire_without_a_later_attempt(store, prices):
    add_task(store, "r0", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/o.jpg")            # earlier, not a retry
    add_task(store, "f1", T(2025, 9, 11), ["oss://s/a.jpg"], "oss://d/o.jpg", status="Failed")
    obj(store, "oss://s/a.jpg", GB)
    assert only(run(store, prices), "failed_retries") is None


def test_same_region_acceleration_fires_with_hand_computed_saving(store, prices):
    for i in range(2):
        add_task(store, f"t{i}", T(2025, 9, 10 + i), ["oss://s/a.jpg"], f"oss://d/o{i}.jpg")
    bucket(store, "d", False)   # location oss-cn-hangzhou, the tasks' region
    f = only(run(store, prices, accelerated_gb_per_task=2), "same_region_acceleration")
    # 2 tasks x 2 GB x 0.5 = 2.00, all of it saved
    assert (f["today"], f["after"], f["saving"]["period"]) == ("2.00", "0.00", "2.00")


def test_same_region_acceleration_quiet_cross_region_and_asks_when_mixed(store, prices):
    from costkit.sources.oss.cache import write_buckets
    from costkit.sources.oss.facts import BucketFact
    from test_cost import CHECKED
    add_task(store, "t0", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://far/o.jpg")
    write_buckets(store, [BucketFact("far", True, "oss-cn-shanghai", "Standard", "LRS", True, False, "api")], CHECKED)
    assert only(run(store, prices, accelerated_gb_per_task=2), "same_region_acceleration") is None
    assert only(run(store, prices), "same_region_acceleration") is None          # no acceleration at all
    add_task(store, "t1", T(2025, 9, 11), ["oss://s/a.jpg"], "oss://d/o.jpg")
    bucket(store, "d", False)
    m = run(store, prices, accelerated_gb_per_task=2)
    f = only(m, "same_region_acceleration")
    assert f["saving"] is None and not f["counts_in_total"] and f["needs"] and f["today"] == "1.00"
    assert "same_region_acceleration" in m["possible_saving"]["not_counted"]


def test_unread_targets_fires_only_when_ia_saves_and_asks_for_reads_elsewhere(store, prices):
    add_task(store, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg"], "oss://d/unread.jpg")
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/unread.jpg", GB)
    # with the default test prices IA storage (1.44) costs more than Standard (0.72): no finding
    assert only(run(store, prices), "unread_targets") is None
    m = run(store, prices, prices=IA_CHEAP)
    f = only(m, "unread_targets")
    # day x item lines, each rounded once: Standard 1 GB x 0.001/h: 09-10 16 h 0.016 -> 0.02, 20 days x 0.024
    # -> 0.02 = 0.42; PUT 0.01: 0.43; after (IA, 0.0005/h): 0.01 + 20 x 0.01 = 0.21; PUT IA 0.10: 0.31 -> 0.12
    assert (f["today"], f["after"], f["saving"]["period"]) == ("0.43", "0.31", "0.12")
    assert f["needs"] == ["targets_read_elsewhere_per_month"] and not f["counts_in_total"]
    assert m["possible_saving"]["period"] == "0.00"
    g = only(run(store, prices, prices=IA_CHEAP, advise={"targets_read_elsewhere_per_month": 0}), "unread_targets")
    assert g["counts_in_total"] and g["saving"]["period"] == "0.12"


def test_unread_targets_does_not_fire_when_a_later_task_reads_the_target(store, prices):
    add_task(store, "t1", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/mid.jpg")
    add_task(store, "t2", T(2025, 9, 12), ["oss://d/mid.jpg"], "oss://d/final.jpg")
    obj(store, "oss://s/a.jpg", 1)
    obj(store, "oss://d/mid.jpg", GB)
    obj(store, "oss://d/final.jpg", 1)      # below IA's minimum size: not a candidate
    assert only(run(store, prices, prices=IA_CHEAP), "unread_targets") is None


def _digest(store) -> str:
    rows = [store._con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("tasks", "objects", "buckets")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_replays_leave_the_store_unchanged_and_total_does_not_double_count(store, prices):
    add_task(store, "f1", T(2025, 9, 11), ["oss://s/hot.jpg"], "oss://d/o.jpg", status="Failed")
    add_task(store, "r1", T(2025, 9, 11, 1), ["oss://s/hot.jpg"], "oss://d/o.jpg")
    obj(store, "oss://s/hot.jpg", GB, "IA")
    obj(store, "oss://d/o.jpg", 1)
    before = _digest(store)
    m = run(store, prices, prices=IA_CHEAP)
    assert _digest(store) == before
    hot, retry = only(m, "hot_ia_sources"), only(m, "failed_retries")
    # hot: today GET 4 x 0.1 + retrieval 2 x 1 = 2.40, after 4 x 0.01 = 0.04, storage -0.36 -> 2.00
    # retry: the failed attempt's 2 x 0.1 + 1 = 1.20
    assert (hot["saving"]["period"], retry["saving"]["period"]) == ("2.00", "1.20")
    # together: only r1's reads remain, in Standard: 2.40 - 0.02 - 0.36 = 2.02 (not 2.00 + 1.20)
    assert m["possible_saving"]["period"] == "2.02"
    assert [f["rule"] for f in m["findings"]] == ["hot_ia_sources", "failed_retries"]


def test_cli_formats_fail_over_and_bad_amount(tmp_path, prices):
    db = tmp_path / "h.duckdb"
    with Store.open(db) as st:
        add_task(st, "t1", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/<script>x.jpg")
        obj(st, "oss://s/a.jpg", 1)
        obj(st, "oss://d/<script>x.jpg", 10 * KB, "IA")
    r = CliRunner()
    base = ["--store", str(db), "advise", "--month", "2025-09", "--prices", prices]
    res = r.invoke(main, base + ["--format", "json"])
    assert res.exit_code == 0, res.output
    model = json.loads(res.stdout)
    assert model["format_version"] == 1 and model["possible_saving"]["period"] == "0.09"   # PUT 0.10 -> 0.01
    assert r.invoke(main, base + ["--fail-over", "0.09"]).exit_code == 0
    res = r.invoke(main, base + ["--fail-over", "0.08"])
    assert res.exit_code == 3 and "possible saving 0.09 CNY is over --fail-over 0.08" in res.stderr
    res = r.invoke(main, base + ["--fail-over", "lots"])
    assert res.exit_code == 2 and res.stderr.startswith("costkit: error: --fail-over:")
    html = tmp_path / "a.html"
    assert r.invoke(main, base + ["--format", "html", "--out", str(html)]).exit_code == 0
    text = html.read_text()
    assert "&lt;script&gt;x.jpg" in text and "<script" not in text and "<svg" in text
    csv_text = r.invoke(main, base + ["--format", "csv"]).stdout
    assert csv_text.splitlines()[0].startswith("period,rank,rule,change") and "ia_small_targets" in csv_text
    res = r.invoke(main, base[:3] + ["--since", "2025-09-01", "--until", "2025-09-16", "--prices", prices])
    assert res.exit_code == 0 and "ia_small_targets" in res.stdout


def test_settings_advise_key_is_validated():
    from costkit.core.errors import BadInput
    with pytest.raises(BadInput, match="advise.nope"):
        parse_settings({"advise": {"nope": 1}})
    with pytest.raises(BadInput, match="0 or more"):
        parse_settings({"advise": {"sources_read_elsewhere_per_month": -1}})


def test_demo_month_advice_finds_the_three_plants(tmp_path):
    from costkit.demo.advise import run_demo_advise
    from costkit.demo.audit import MONTH, run_demo_audit
    audit = run_demo_audit(tmp_path, per_day=40)
    paths, model, planted = run_demo_advise(tmp_path, audit.store, audit.prices, MONTH)
    found = {f["rule"]: f for f in model["findings"]}
    for rule in ("ia_small_targets", "early_deleted_targets", "archive_no_direct_read"):
        assert planted[rule] and rule in found, (rule, planted)
    assert found["ia_small_targets"]["evidence"]["objects"] == planted["ia_small_targets"]
    assert found["early_deleted_targets"]["evidence"]["objects"] == planted["early_deleted_targets"]
    assert found["archive_no_direct_read"]["evidence"]["tasks"] == planted["archive_no_direct_read"]
    assert Decimal(found["early_deleted_targets"]["saving"]["month"]) > 0
    assert paths[0].name == "advise.html" and "<svg" in paths[0].read_text(encoding="utf-8")
    html = paths[0].read_text(encoding="utf-8")
    assert html.index('id="illustrative-banner"') < html.index("<h1") and "Synthetic data." in html


def test_advice_on_real_data_carries_no_synthetic_banner(store, prices):
    from costkit.outputs.advise import render_advise

    add_task(store, "t1", T(2025, 9, 10), ["oss://s/a.jpg"], "oss://d/t.jpg")
    assert "Synthetic data." not in render_advise(run(store, prices), "html")
