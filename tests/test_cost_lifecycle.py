"""Targets priced under the buckets' lifecycle rules: rules read by the inventory through oss2 from the local
OSS server (GetBucketLifecycle, GetObjectTagging), then priced by `cost`, against hand-computed figures.

Prices (tests/test_cost.py): storage per GB-hour Standard 0.001, IA 0.002, Archive 0.0005; early deletion at
the storage price of the class. Every target is 1 GB; September 2025 (UTC+8) ends 2025-09-30T16:00Z.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

import test_cost as tc
from conftest import TEST_AK, TEST_SK
from oss_server import OSSServer

from costkit.core.money import round_money
from costkit.engine.inventory import run_inventory
from costkit.model.settings import parse_settings
from costkit.sources.oss.cache import write_facts
from costkit.sources.oss.facts import Fact
from costkit.sources.oss.lifecycle import rules_frame
from costkit.sources.retry import RetryPolicy
from costkit.store.db import Store

UTC = timezone.utc
GB = 1024**3
T = tc.T
PERIOD_END = T(2025, 9, 30, 16)
STD, IA, ARC = Fraction(1, 1000), Fraction(2, 1000), Fraction(5, 10000)   # per GB-hour


def hours(a: datetime, b: datetime) -> int:
    return int((b - a) / timedelta(hours=1))


prices = tc.prices   # the price-file fixture of tests/test_cost.py


@pytest.fixture()
def store():
    with Store.open(":memory:") as st:
        yield st


@pytest.fixture()
def srv():
    with OSSServer() as s:
        yield s


def target(srv, store, uri, end, tags=None, upload=True):
    """A Succeeded task completing at `end` whose 1 GB target `uri` was last modified then."""
    b, k = uri[6:].split("/", 1)
    if upload:
        srv.put(b, k, GB, last_modified=end, tags=tags)
    tc.add_task(store, uri, end, [], uri)


def inventory(srv, store, now):
    return run_inventory(store, endpoint=srv.endpoint, credentials=(TEST_AK, TEST_SK),
                         retry=RetryPolicy(attempts=2, base=0.001), now=now)


def priced(store, prices, **kw):
    r = tc.sep(store, prices, **kw)
    return r["items"]["oss.Storage"], r["items"].get("oss.EarlyDeletion", "0.00"), r


def money(f: Fraction) -> str:
    return str(round_money(f))


def day_lines(*spans) -> str:
    """The storage figure of spans (start, end, price per hour): the exact amount per Asia/Shanghai day over
    all spans, each day's line rounded half-up once, summed (the one-expected-figure rule of the engine)."""
    per_day: dict = {}
    for a, b, rate in spans:
        h = a
        while h < b:
            day = (h + timedelta(hours=8)).date()
            per_day[day] = per_day.get(day, Fraction(0)) + rate
            h += timedelta(hours=1)
    return str(sum((round_money(v) for v in per_day.values()), round_money(0)))


def test_expiration_days_from_last_modified_rounded_up_to_utc_midnight(srv, store, prices):
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "week", "prefix": "exp/", "expiration_days": 7}]
    end = T(2025, 9, 5, 3)                 # 11:00 UTC+8; rounded up to 2025-09-06T00:00Z, + 7 days
    target(srv, store, "oss://lcb/exp/a.jpg", end)
    target(srv, store, "oss://lcb/other/b.jpg", end)      # outside the rule's prefix: kept
    inventory(srv, store, T(2025, 9, 6))
    rules = rules_frame(store)
    assert list(rules["action"]) == ["expire"] and list(rules["days"]) == [7]
    storage, early, _ = priced(store, prices)
    assert hours(end, T(2025, 9, 13)) == 189
    assert storage == day_lines((end, T(2025, 9, 13), STD), (end, PERIOD_END, STD)) and early == "0.00"


def test_lag_setting_moves_the_deletion_to_the_daily_run(srv, store, prices):
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "week", "expiration_days": 7}]
    end = T(2025, 9, 5, 3)
    target(srv, store, "oss://lcb/a.jpg", end)
    inventory(srv, store, T(2025, 9, 6))
    storage, _, _ = priced(store, prices, settings=parse_settings({"lifecycle_lag_hours": 24}))
    assert storage == day_lines((end, T(2025, 9, 14), STD))          # 189 + 24 h


def test_transitions_change_the_class_and_early_deletion_uses_the_class_at_deletion(srv, store, prices):
    """Standard -> IA after 5 days -> Archive after 12 -> expired after 20: Archive's 60-day minimum counts
    from LastModified (the billing-facts lifecycle example, scaled)."""
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "cool", "prefix": "tr/", "expiration_days": 20,
                                    "transitions": [(5, "IA"), (12, "Archive")]}]
    end = T(2025, 9, 1, 2)                 # rounded up to 2025-09-02T00:00Z
    target(srv, store, "oss://lcb/tr/a.jpg", end)
    inventory(srv, store, T(2025, 9, 3))
    storage, early, r = priced(store, prices)
    std_h, ia_h, arc_h = hours(end, T(2025, 9, 7)), 7 * 24, 8 * 24
    assert (std_h, ia_h, arc_h) == (142, 168, 192)
    assert storage == day_lines((end, T(2025, 9, 7), STD), (T(2025, 9, 7), T(2025, 9, 14), IA),
                                (T(2025, 9, 14), T(2025, 9, 22), ARC))           # exactly 0.574
    lived = hours(end, T(2025, 9, 22))
    assert early == money((1440 - lived) * ARC)                                       # 938 h of Archive
    assert r["items"]["oss.PutRequest"] == "0.01"        # uploaded as Standard


def test_class_seen_after_a_transition_is_not_the_upload_class(srv, store, prices):
    """The inventory saw IA after the rule's 5-day transition: before it the target was Standard."""
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "ia", "transitions": [(5, "IA")]}]
    end = T(2025, 9, 1, 2)
    srv.put("lcb", "a.jpg", GB, "IA", last_modified=end)
    tc.add_task(store, "t1", end, [], "oss://lcb/a.jpg")
    inventory(srv, store, T(2025, 9, 20))
    storage, early, _ = priced(store, prices)
    assert storage == day_lines((end, T(2025, 9, 7), STD), (T(2025, 9, 7), PERIOD_END, IA)) and early == "0.00"


def test_tag_filter_and_not_prefix_select_the_targets(srv, store, prices):
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "tmp", "prefix": "tag/", "tags": {"keep": "no"}, "expiration_days": 3,
                                    "not_prefix": "tag/hold/"}]
    end = T(2025, 9, 10, 10)               # rounded up to 2025-09-11T00:00Z, + 3 days
    target(srv, store, "oss://lcb/tag/a.jpg", end, tags={"keep": "no"})          # matches
    target(srv, store, "oss://lcb/tag/b.jpg", end, tags={"keep": "yes"})         # other tag value
    target(srv, store, "oss://lcb/tag/hold/c.jpg", end, tags={"keep": "no"})     # excluded by Not
    s = inventory(srv, store, T(2025, 9, 11))
    assert s.requests["GetObjectTagging"] == 3 and s.requests["GetBucketLifecycle"] == 1
    storage, _, _ = priced(store, prices)
    assert hours(end, T(2025, 9, 14)) == 86
    assert storage == day_lines((end, T(2025, 9, 14), STD), (end, PERIOD_END, STD), (end, PERIOD_END, STD))


def test_disabled_rule_and_size_bound_do_not_match(srv, store, prices):
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "off", "status": "Disabled", "expiration_days": 1},
                                   {"id": "small", "expiration_days": 1, "size_lt": 1024}]
    end = T(2025, 9, 10, 10)
    target(srv, store, "oss://lcb/a.jpg", end)
    inventory(srv, store, T(2025, 9, 11))
    storage, _, _ = priced(store, prices)
    assert storage == day_lines((end, PERIOD_END, STD))


def test_gone_target_is_dated_by_a_rule_when_earlier_than_the_check(srv, store, prices):
    """For a gone object the completion stands in for LastModified; the earlier of rule and check wins."""
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "week", "expiration_days": 7}]
    end = T(2025, 9, 5, 3)
    target(srv, store, "oss://lcb/late.jpg", end, upload=False)   # gone when first checked, after the rule
    target(srv, store, "oss://lcb/early.jpg", end, upload=False)  # gone when checked, before the rule
    inventory(srv, store, T(2025, 9, 6))
    write_facts(store, [Fact("oss://lcb/late.jpg", "lcb", "late.jpg", gone=True, via="head")], T(2025, 9, 1))
    store._con.execute("UPDATE objects SET gone_since = ? WHERE key = 'late.jpg'", [T(2025, 9, 20)])
    storage, _, r = priced(store, prices, settings=parse_settings({"target_size_mb": 1024}))   # sizes unknown
    # late.jpg: the rule's 2025-09-13T00:00Z (189 h); early.jpg: the check at 2025-09-06T00:00Z (21 h)
    assert storage == day_lines((end, T(2025, 9, 13), STD), (end, T(2025, 9, 6), STD))
    assert any(w.startswith("2 task(s) reference objects the inventory found already deleted")
               for w in r["warnings"])
    assert not any("use default object facts" in w for w in r["warnings"])


def test_rules_are_replaced_on_the_next_read_and_a_bucket_without_rules_has_none(srv, store):
    srv.add_bucket("lcb")
    srv.buckets["lcb"].lifecycle = [{"id": "a", "expiration_days": 7, "transitions": [(3, "IA")]}]
    target(srv, store, "oss://lcb/a.jpg", T(2025, 9, 5))
    inventory(srv, store, T(2025, 9, 6))
    assert len(rules_frame(store)) == 2
    srv.buckets["lcb"].lifecycle = None
    run_inventory(store, endpoint=srv.endpoint, credentials=(TEST_AK, TEST_SK), now=T(2025, 9, 8),
                  max_age=timedelta(0))
    assert rules_frame(store).empty


def test_cost_on_a_store_without_rules_equals_the_reference(store, prices):
    """No rules: the lifetime SQL gives what it gave before (the independent reference model)."""
    tc.add_task(store, "t1", T(2025, 9, 2, 5), ["oss://s/a.jpg"], "oss://d/o.jpg")
    assert tc.sep(store, prices)["items"]["oss.Storage"] == day_lines(
        (T(2025, 9, 2, 5), PERIOD_END, Fraction(1, 1024) * STD))
