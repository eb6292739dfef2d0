"""fetch-bill over real HTTP against the local BSS OpenAPI server: SDK protocol, signature, paging, faults."""
from decimal import Decimal

import pytest
from click.testing import CliRunner

from bss_server import BSSServer, bill_item, sample_items
from conftest import TEST_AK, TEST_SK
from costkit.sources.bills.bss import BillRetry
from costkit.store.bills import bill_lines_frame, bill_sources, fetch_bill
from costkit.cli.main import main
from costkit.store.db import Store

FAST = {"credentials": (TEST_AK, TEST_SK), "retry": BillRetry(attempts=3, base=0.001, cap=0.01)}


def run(store_path, *args, obj=None):
    obj = {"fetch_bill_kwargs": dict(FAST)} if obj is None else obj
    return CliRunner().invoke(main, ["--store", str(store_path), "fetch-bill", *args], obj=obj)


def many_items(n, month="2025-08"):
    out = []
    for i in range(n):
        day = f"{month}-{i % 28 + 1:02d}"
        out.append(bill_item(day, "oss", "GetRequest", billing_item="GET类请求次数", product_name="对象存储",
                             pretax_gross=f"0.{i % 97:02d}", list_price="0.01", list_price_unit="CNY/万次",
                             usage=str(100 * (i + 1)), usage_unit="次", instance_id=f"cn-shanghai;standard;{i}"))
    return out


def test_fetch_pages_with_next_token_and_stores_every_line(tmp_path):
    with BSSServer(many_items(650)) as srv:
        r = run(tmp_path / "s.duckdb", "--month", "2025-08", "--endpoint", srv.endpoint)
        assert r.exit_code == 0, r.output + r.stderr
        calls = [p for a, p in srv.requests if a == "DescribeInstanceBill"]
    assert len(calls) == 3                       # 300 + 300 + 50
    assert all(p["Granularity"] == "DAILY" and p["IsBillingItem"].lower() == "true" and p["MaxResults"] == "300"
               and p["BillingCycle"] == "2025-08" for p in calls)
    assert "NextToken" not in calls[0] and calls[1]["NextToken"] and calls[2]["NextToken"] != calls[1]["NextToken"]
    assert "2025-08: 650 lines" in r.output
    with Store.open(tmp_path / "s.duckdb") as s:
        df = bill_lines_frame(s, "2025-08")
        assert len(df) == 650 and df["line_no"].is_unique
        assert bill_sources(s, "2025-08")["source"].tolist() == ["api:1234567890123456"]
        assert set(df["bill_account_id"]) == {"1234567890123456"}


def test_float_amounts_arrive_exactly(tmp_path):
    items = [bill_item("2025-08-03", "oss", "Storage", billing_item="标准存储（本地冗余）容量",
                       pretax_gross="1234567.89", invoice_discount="0.1", pretax="1234567.79", usage="2400.5",
                       usage_unit="GB", resource_package="0.000167", instance_id="cn-shanghai;standard"),
             bill_item("2025-08-03", "imm", "ImageSplicing", pretax_gross="0.000167", pretax="0.000167",
                       list_price="0.00000123", list_price_unit="CNY/次", usage="1", usage_unit="次")]
    with BSSServer(items) as srv, Store.open(tmp_path / "s.duckdb") as s:
        fetch_bill(s, "2025-08", endpoint=srv.endpoint, **FAST)
        df = bill_lines_frame(s, "2025-08")
    a, b = df.to_dict("records")
    assert a["pretax_gross_amount"] == Decimal("1234567.89")
    assert a["invoice_discount"] == Decimal("0.1") and a["pretax_amount"] == Decimal("1234567.79")
    assert a["usage"] == Decimal("2400.5") and a["deducted_by_resource_package"] == Decimal("0.000167")
    assert b["pretax_gross_amount"] == Decimal("0.000167") and b["list_price"] == Decimal("0.00000123")
    assert all(isinstance(v, Decimal) for v in (a["pretax_gross_amount"], b["pretax_amount"]))


def test_503_then_ok_is_retried(tmp_path):
    with BSSServer(sample_items("2025-08", 2)) as srv:
        srv.add_fault("server_503", times=1)
        srv.add_fault("throttle", times=1)   # the second request: throttled, then OK
        r = run(tmp_path / "s.duckdb", "--month", "2025-08", "--endpoint", srv.endpoint)
        assert r.exit_code == 0, r.stderr
        assert srv.request_count() == 3
    with Store.open(tmp_path / "s.duckdb") as s:
        assert len(bill_lines_frame(s, "2025-08")) == 8


def test_refetch_replaces_and_a_failure_keeps_the_stored_month(tmp_path):
    store = tmp_path / "s.duckdb"
    with BSSServer(sample_items("2025-08", 3)) as srv:
        assert run(store, "--month", "2025-08", "--endpoint", srv.endpoint).exit_code == 0
        srv.items = sample_items("2025-08", 2)
        r = run(store, "--month", "2025-08", "--endpoint", srv.endpoint)
        assert r.exit_code == 0 and "replaced 8" in r.output and "removed 4 line(s)" in r.output
        srv.add_fault("server_503", times=None)
        r = run(store, "--month", "2025-08", "--endpoint", srv.endpoint)
        assert r.exit_code == 1
        assert "gave up after 3 attempts" in r.stderr
    with Store.open(store) as s:
        assert len(bill_lines_frame(s, "2025-08")) == 8


def test_product_code_filter_and_unmapped_report(tmp_path):
    with BSSServer(sample_items("2025-08", 1)) as srv:
        r = run(tmp_path / "s.duckdb", "--month", "2025-08", "--endpoint", srv.endpoint, "--product-code", "oss")
        assert r.exit_code == 0, r.stderr
        assert [p.get("ProductCode") for _, p in srv.requests] == ["oss"]
    assert "2025-08: 3 lines" in r.output
    assert "unmapped: oss NetworkOut 外网流出流量" in r.output


def test_wrong_secret_fails_without_printing_it(tmp_path):
    obj = {"fetch_bill_kwargs": {"credentials": (TEST_AK, "wrong-secret-value"), "retry": FAST["retry"]}}
    with BSSServer(sample_items("2025-08", 1)) as srv:
        r = run(tmp_path / "s.duckdb", "--month", "2025-08", "--endpoint", srv.endpoint, obj=obj)
    assert r.exit_code == 1
    assert "SignatureDoesNotMatch" in r.stderr
    assert "wrong-secret-value" not in r.output + r.stderr


def test_credentials_from_the_default_chain(tmp_path):
    """The real chain (environment variables, read when the process starts), in a child process."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    with BSSServer(sample_items("2025-08", 1)) as srv:
        p = subprocess.run([sys.executable, "-m", "costkit.cli.main", "--store", str(tmp_path / "s.duckdb"), "fetch-bill",
                            "--month", "2025-08", "--endpoint", srv.endpoint], env=env, capture_output=True,
                           text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "2025-08: 4 lines" in p.stdout
    assert TEST_SK not in p.stdout + p.stderr


def test_empty_month_replaces_with_nothing(tmp_path):
    with BSSServer(sample_items("2025-08", 1)) as srv, Store.open(tmp_path / "s.duckdb") as s:
        fetch_bill(s, "2025-08", endpoint=srv.endpoint, **FAST)
        srv.items = []
        summary = fetch_bill(s, "2025-08", endpoint=srv.endpoint, **FAST)
        assert summary.months["2025-08"][1:] == (0, 4)
        assert bill_lines_frame(s, "2025-08").empty


def test_bad_month_and_endpoint_are_bad_input(tmp_path):
    assert run(tmp_path / "s.duckdb", "--month", "2025-13").exit_code == 2
    assert run(tmp_path / "s.duckdb", "--month", "2025-08", "--endpoint", "ftp://x").exit_code == 2


def test_server_rejects_what_the_real_api_rejects():
    with BSSServer([]) as srv:
        from costkit.sources.bills.bss import make_bss_client
        from alibabacloud_bssopenapi20171214 import models
        from darabonba.runtime import RuntimeOptions
        c = make_bss_client(srv.endpoint, credentials=(TEST_AK, TEST_SK))
        with pytest.raises(Exception, match="MaxResults"):
            c.describe_instance_bill_with_options(models.DescribeInstanceBillRequest(
                billing_cycle="2025-08", max_results=301), RuntimeOptions())
        resp = c.describe_instance_bill_with_options(models.DescribeInstanceBillRequest(
            billing_cycle="2025-08", granularity="MONTHLY"), RuntimeOptions())
        assert resp.body.success and resp.body.data.total_count == 0


def test_a_200_error_body_fails_instead_of_reading_as_an_empty_bill(tmp_path):
    store = tmp_path / "s.duckdb"
    with BSSServer(sample_items("2025-08", 2)) as srv:
        assert run(store, "--month", "2025-08", "--endpoint", srv.endpoint).exit_code == 0
        srv.add_fault("error", times=None, status=200, code="InternalError", message="try later")
        r = run(store, "--month", "2025-08", "--endpoint", srv.endpoint)
        assert r.exit_code == 1 and "InternalError" in r.stderr
    with Store.open(store) as s:
        assert len(bill_lines_frame(s, "2025-08")) == 8  # the stored month is kept
