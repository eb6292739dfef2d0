"""The synthetic bill of a synthetic task month: planted discrepancies survive import, fetch and mapping."""
from collections import Counter
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from bss_server import BSSServer
from conftest import TEST_AK, TEST_SK
from costkit.sources.bills.bss import BillRetry
from costkit.sources.bills.mapping import billed_daily
from costkit.store.bills import mapped_bill_lines as mapped_bill
from costkit.cli.main import main
from costkit.store.db import Store
from costkit.testing.imm_server import synthetic_month_tasks
from costkit.testing.synthetic_bill import synthetic_bill_items, write_console_csv

SH = ZoneInfo("Asia/Shanghai")


def _succeeded_per_day(tasks, month):
    c = Counter()
    for t in tasks:
        if t["TaskType"] == "ImageSplicing" and t["Status"] == "Succeeded":
            day = datetime.fromisoformat(t["EndTime"].replace("Z", "+00:00")).astimezone(SH).date().isoformat()
            if day.startswith(month):
                c[day] += 1
    return c


def test_synthetic_bill_via_csv_and_api_agree_and_keep_the_plants(tmp_path):
    tasks = synthetic_month_tasks("2025-08", per_day=10)
    items = synthetic_bill_items(tasks, "2025-08", price_overrides={"2025-08-10": "0.6"},
                                 resource_plan={"2025-08-20": 3}, extra_calls={"2025-08-05": 7})
    csv_path = write_console_csv(items, tmp_path / "bill.csv", language="zh", encoding="gb18030")
    store_csv, store_api = tmp_path / "csv.duckdb", tmp_path / "api.duckdb"
    r = CliRunner().invoke(main, ["--store", str(store_csv), "import-bill", str(csv_path)])
    assert r.exit_code == 0, r.stderr
    with BSSServer(items) as srv:
        r = CliRunner().invoke(main, ["--store", str(store_api), "fetch-bill", "--month", "2025-08", "--endpoint",
                                      srv.endpoint], obj={"fetch_bill_kwargs": {
                                          "credentials": (TEST_AK, TEST_SK), "retry": BillRetry(base=0.001)}})
        assert r.exit_code == 0, r.stderr
    frames = []
    for path in (store_csv, store_api):
        with Store.open(path) as s:
            frames.append(billed_daily(mapped_bill(s, "2025-08")))
    cols = ["billing_date", "item", "storage_class", "quantity", "pretax_gross_amount", "deducted_by_resource_package",
            "pretax_amount", "net_amount"]
    assert frames[0][cols].values.tolist() == frames[1][cols].values.tolist()
    daily = frames[0]
    img = {r["billing_date"].isoformat(): r for r in daily.to_dict("records") if r["item"] == "imm.ImageSplicing"}
    expected = _succeeded_per_day(tasks, "2025-08")
    expected["2025-08-05"] += 7
    assert {d: int(r["quantity"]) for d, r in img.items()} == dict(expected)
    assert img["2025-08-10"]["list_prices"] == ["0.6 CNY/千次"]
    assert img["2025-08-11"]["list_prices"] == ["0.5 CNY/千次"]
    # the plan covered 3 calls (a quantity): the payable amount charges the rest, nothing is taken off money
    assert img["2025-08-20"]["deducted_by_resource_package"] == Decimal("3")
    assert img["2025-08-20"]["net_amount"] == img["2025-08-20"]["pretax_gross_amount"] == \
        (Decimal(int(img["2025-08-20"]["quantity"]) - 3) * Decimal("0.5") / 1000).quantize(Decimal("0.01"))
