"""Each row of the usage model, priced on hand-computed cases (see README, 'Usage model')."""
from decimal import Decimal

import pytest

from costkit.core.errors import BadInput
from costkit.engine.forecast import estimate, task_counts

from helpers_forecast import SPLICE_PRICE, write_scenario


def run(tmp_path, **over):
    return estimate(write_scenario(tmp_path, **over), sensitivity=False)


def items(model):
    return {k: Decimal(v) for k, v in model["items"].items()}


def test_standard_month_prices_splices_requests_and_hourly_storage(tmp_path):
    # September 2025 has 720 hours: 10,000 tasks complete each hour.
    m = run(tmp_path, tasks_per_month=7200000, target_retention_days=1)
    it = items(m)
    assert it["imm.ImageSplicing"] == Decimal("7200.00")          # 7.2M calls x 1 CNY / 1000
    assert it["oss.GetRequest"] == Decimal("28.80")               # 7.2M x 2 sources x (GET + HEAD) x 0.01 / 10,000
    assert it["oss.PutRequest"] == Decimal("7.20")                # 7.2M x 0.01 / 10,000
    # alive objects: 10,000 x (1+2+...+24 over the first day, then 24 each hour) = 170,040,000 object-hours
    # of 1 MB = 166,054.6875 GB-h x 0.12 / 720
    assert it["oss.Storage"] == Decimal("27.68")
    assert it["oss.EarlyDeletion"] == Decimal("0.00")              # Standard has no minimum duration
    assert it["oss.IaRetrieval"] == it["oss.ArchiveDirectRead"] == it["oss.TransferAcceleration"] == 0
    assert Decimal(m["total"]) == sum(it.values())


def test_ia_failed_tasks_still_read_sources_and_targets_below_64kb_bill_as_64kb(tmp_path):
    m = run(tmp_path, source_storage_class="IA", target_storage_class="IA", sources_per_task=3,
            source_size_mb="10", target_size_mb="0.01", failure_rate="0.1", target_retention_days=10,
            prices=[dict(SPLICE_PRICE, price="2")])
    it = items(m)
    assert it["oss.GetRequest"] == Decimal("43.20")       # 720,000 x 3 x 2 x 0.1 / 10,000 (failed too)
    assert it["oss.PutRequest"] == Decimal("6.48")        # 648,000 succeeded x 0.1 / 10,000
    assert it["oss.IaRetrieval"] == Decimal("685.55")     # 21,093.75 GB x 0.0325
    assert it["imm.ImageSplicing"] == Decimal("1296.00")  # 648,000 x 2 / 1000
    # 900 targets/h, 240 h each, billed as 64 KB: 129,708,000 object-hours / 16,384 GB-h x 0.08 / 720
    assert it["oss.Storage"] == Decimal("0.88")
    # deleted in September: created in hours 0..479 -> 432,000 objects x 480 missing hours / 16,384 x 0.08 / 720
    assert it["oss.EarlyDeletion"] == Decimal("1.41")


def test_cutover_month_bills_only_splices_completing_after_11_00(tmp_path):
    # July 2025: 744 hours, 1,000 tasks an hour; 85 hours from 2025-07-28 11:00 to 08-01 00:00.
    m = run(tmp_path, start="2025-07", tasks_per_month=744000)
    month = m["months"][0]
    assert month["billable_splices"] == "85000"
    assert month["items"]["imm.ImageSplicing"] == "85.00"


def test_daily_profile_moves_splices_across_the_cutover(tmp_path):
    profile = ["0"] * 24
    profile[12] = "1"  # every task completes 12:00-13:00 Beijing time
    m = run(tmp_path, start="2025-07", tasks_per_month=31000, daily_profile=profile)
    # the 28th at 12:00 is after the cutover: days 28..31 = 4 of 31 days
    assert m["months"][0]["billable_splices"] == "4000"


def test_archive_sources_without_direct_read_fail_and_only_heads_are_priced(tmp_path):
    m = run(tmp_path, source_storage_class="Archive")
    it = items(m)
    assert it["imm.ImageSplicing"] == 0 and it["oss.PutRequest"] == 0 and it["oss.Storage"] == 0
    assert it["oss.GetRequest"] == Decimal("14.40")  # 720,000 x 2 HEAD x 0.1 / 10,000
    assert any("without archive_direct_read" in w for w in m["warnings"])


def test_archive_direct_read_needs_its_price_and_bills_bytes_read(tmp_path):
    partial = run(tmp_path, source_storage_class="Archive", archive_direct_read=True)
    assert partial["complete"] is False and partial["items"]["oss.ArchiveDirectRead"] is None
    assert [m["item"] for m in partial["missing_prices"]] == ["oss.ArchiveDirectRead"]
    with pytest.raises(BadInput, match="oss.ArchiveDirectRead"):
        estimate(write_scenario(tmp_path, source_storage_class="Archive", archive_direct_read=True),
                 sensitivity=False, strict=True)
    adr = {"item": "oss.ArchiveDirectRead", "unit": "GB", "price": "0.1", "currency": "CNY",
           "confidence": "contract", "source": "test"}
    m = run(tmp_path, source_storage_class="Archive", archive_direct_read=True, prices=[SPLICE_PRICE, adr])
    assert m["items"]["oss.ArchiveDirectRead"] == "140.63"  # 720,000 x 2 MB = 1,406.25 GB x 0.1


def test_cold_archive_sources_warn_that_restores_are_not_priced(tmp_path):
    m = run(tmp_path, source_storage_class="ColdArchive")
    assert any("restored" in w and "NOT priced" in w for w in m["warnings"])


def test_transfer_acceleration_per_task(tmp_path):
    acc = {"item": "oss.TransferAcceleration", "unit": "GB", "price": "0.5", "currency": "CNY",
           "confidence": "contract", "source": "test"}
    m = run(tmp_path, tasks_per_month=1000, accelerated_gb_per_task="0.2", prices=[SPLICE_PRICE, acc])
    assert m["items"]["oss.TransferAcceleration"] == "100.00"


def test_early_deletion_is_charged_in_the_month_of_deletion(tmp_path):
    # IA target kept 1 day (24 h) of a 720 h minimum: 696 h charged once at deletion, in hour 24 onwards.
    m = run(tmp_path, start="2025-09", months=2, tasks_per_month=720, target_storage_class="IA",
            target_size_mb="1024", target_retention_days=1)
    sept, octo = m["months"]
    # September: 1 target/h; deletions in hours 24..719 = 696 targets x 696 GB-h x 0.08 / 720
    assert sept["items"]["oss.EarlyDeletion"] == "53.82"
    # October (744 h, 720 tasks): the last 24 September targets plus October's first 720 targets
    assert Decimal(octo["quantities"]["oss.EarlyDeletion"]["quantity"]) > 0


def test_growth_compounds_and_rounds_half_up_to_whole_tasks():
    assert task_counts(1000, Decimal("0.1"), 4) == [1000, 1100, 1210, 1331]
    assert task_counts(5, Decimal("0.1"), 2) == [5, 6]  # 5.5 rounds half-up


def test_every_month_and_item_adds_up_to_the_totals(tmp_path):
    m = run(tmp_path, start="2025-06", months=14, tasks_per_month=123457, monthly_growth="0.037",
            failure_rate="0.013", source_storage_class="IA", target_storage_class="IA", target_retention_days=7,
            target_size_mb="0.3", source_size_mb="0.7")
    for month in m["months"]:
        assert Decimal(month["total"]) == sum(Decimal(v) for v in month["items"].values())
        assert set(month["items"]) == set(m["item_keys"])
    for k in m["item_keys"]:
        assert Decimal(m["items"][k]) == sum(Decimal(mm["items"][k]) for mm in m["months"])
    assert Decimal(m["total"]) == sum(Decimal(mm["total"]) for mm in m["months"])
    assert Decimal(m["total"]) == sum(Decimal(v) for v in m["items"].values())


def test_storage_stops_at_the_end_of_the_horizon(tmp_path):
    kept = run(tmp_path, tasks_per_month=720, target_size_mb="1024")
    # one 1 GB target per hour, never deleted: 1+2+...+720 = 259,560 GB-h x 0.12 / 720
    assert kept["items"]["oss.Storage"] == "43.26"
    assert any("never deleted" in w for w in kept["warnings"])


def test_sensitivity_moves_each_driver_by_20_percent(tmp_path):
    m = estimate(write_scenario(tmp_path, tasks_per_month=720000))
    drivers = {r["driver"]: r for r in m["sensitivity"]}
    t = drivers["tasks_per_month"]
    assert (t["low_value"], t["high_value"]) == ("576000", "864000")
    assert Decimal(t["low_total"]) < Decimal(t["base_total"]) < Decimal(t["high_total"])
