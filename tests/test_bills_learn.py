"""prices learn: unit prices from bill lines into an overlay that passes `prices check`."""
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from bss_server import bill_item
from costkit.sources.bills.records import ParsedBill
from costkit.sources.bills.units import parse_unit, split_price_unit
from costkit.sources.bills.bss import parse_api_items
from costkit.store.bills import store_bill
from costkit.cli.main import main
from costkit.prices.book import load_price_book, read_book_file
from costkit.store.db import Store
from costkit.core.timeutil import SHANGHAI

FIX = Path(__file__).parent / "fixtures" / "bills"


def run(store_path, *args):
    return CliRunner().invoke(main, ["--store", str(store_path), *args])


def store_items(path, month, items):
    with Store.open(path) as s:
        lines = parse_api_items(items, origin="test", month=month)
        store_bill(s, ParsedBill("api", "http://127.0.0.1/test", lines, account_id="42"))


def learn(store, month, tmp_path, name="learnt.yaml"):
    out = tmp_path / name
    r = run(store, "prices", "learn", "--month", month, "--out", str(out))
    assert r.exit_code == 0, r.stderr
    check = CliRunner().invoke(main, ["prices", "check", str(out)])
    assert check.exit_code == 0, check.output + check.stderr
    book = read_book_file(out, layer="user")
    assert not book.problems
    return out, book


def test_learn_from_the_console_csv(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "zh-utf8-bom.csv")).exit_code == 0
    out, book = learn(store, "2025-08", tmp_path)
    got = {(e.item, e.selectors): e for e in book.entries}
    img = got[("imm.ImageSplicing", ())]
    assert (img.price, img.unit, img.currency, img.confidence) == (Decimal("0.5"), "1000 calls", "CNY", "bill")
    assert img.effective_from == datetime(2025, 8, 1, tzinfo=SHANGHAI) and img.effective_to is None
    assert "zh-utf8-bom.csv" in img.source and "2025-08" in img.source and "line 2" in img.source
    std = got[("oss.Storage", (("redundancy", "LRS"), ("storage_class", "Standard")))]
    assert (std.price, std.unit) == (Decimal("0.12"), "GB-month")        # 0.40 / 2400 GB-hours x 720
    arc = got[("oss.Storage", (("redundancy", "LRS"), ("storage_class", "Archive")))]
    assert arc.price == Decimal("0.033")
    assert got[("oss.GetRequest", (("storage_class", "IA"),))].price == Decimal("0.1")
    assert got[("oss.GetRequest", (("storage_class", "Standard"),))].unit == "10000 requests"
    assert got[("oss.ArchiveDirectRead", ())].price == Decimal("0.03")
    assert not any(e.item == "oss.EarlyDeletion" for e in book.entries)
    text = out.read_text(encoding="utf-8")
    assert "site: cn" in text and "currency: CNY" in text


def test_learnt_overlay_fills_in_the_unknown_imagesplicing_price(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "en-utf8.csv")).exit_code == 0
    out, _ = learn(store, "2025-08", tmp_path)
    at = datetime(2025, 9, 15, 12, tzinfo=SHANGHAI)
    assert load_price_book("cn").resolve("imm.ImageSplicing", {}, at)[0] is None
    entry, _ = load_price_book("cn", prices_file=out).resolve("imm.ImageSplicing", {}, at)
    assert entry.price == Decimal("0.5") and entry.layer == "user"
    # before the month the bundled free period still applies
    free, _ = load_price_book("cn", prices_file=out).resolve("imm.ImageSplicing", {}, datetime(2025, 7, 1, tzinfo=SHANGHAI))
    assert free.price == Decimal("0")


def test_cutover_month_starts_at_the_bundled_boundary_and_price_changes_split(tmp_path):
    store = tmp_path / "s.duckdb"
    items = [bill_item("2025-07-27", "imm", "ImageSplicing", pretax_gross="0", usage="0", usage_unit="次")]
    items += [bill_item(f"2025-07-{d}", "imm", "ImageSplicing", pretax_gross="1.2", list_price="0.0012",
                        list_price_unit="CNY/次", usage="1000", usage_unit="次") for d in (28, 29)]
    items += [bill_item("2025-07-30", "imm", "ImageSplicing", pretax_gross="1.5", list_price="1.5",
                        list_price_unit="CNY/千次", usage="1000", usage_unit="次")]
    store_items(store, "2025-07", items)
    _, book = learn(store, "2025-07", tmp_path)
    es = sorted((e for e in book.entries if e.item == "imm.ImageSplicing"), key=lambda e: e.effective_from)
    assert [(e.effective_from.isoformat(), e.effective_to and e.effective_to.isoformat(), e.price) for e in es] == [
        ("2025-07-28T11:00:00+08:00", "2025-07-30T00:00:00+08:00", Decimal("1.2")),
        ("2025-07-30T00:00:00+08:00", None, Decimal("1.5")),
    ]


def test_gross_over_usage_with_ten_thousand_units_and_bare_currency_price_unit(tmp_path):
    store = tmp_path / "s.duckdb"
    store_items(store, "2025-09", [
        bill_item("2025-09-01", "oss", "PutRequest", billing_item="PUT类和其他请求次数", pretax_gross="0.3",
                  usage="3", usage_unit="万次", instance_id="cn-hangzhou;ia"),
        bill_item("2025-09-01", "oss", "GetRequest", billing_item="GET类请求次数", pretax_gross="0.5",
                  list_price="0.00001", list_price_unit="CNY", usage="50000", usage_unit="次",
                  instance_id="cn-hangzhou;standard"),
        bill_item("2025-09-01", "imm", "ImageSplicing", pretax_gross="1", usage="3", usage_unit="次"),
    ])
    _, book = learn(store, "2025-09", tmp_path)
    got = {(e.item, e.selectors): e for e in book.entries}
    assert got[("oss.PutRequest", (("storage_class", "IA"),))].price == Decimal("0.1")
    assert got[("oss.GetRequest", (("storage_class", "Standard"),))].price == Decimal("0.1")
    img = got[("imm.ImageSplicing", ())]
    assert img.price == Decimal("333.333333333333") and "rounded" in img.note


def test_learn_without_bill_lines_is_bad_input(tmp_path):
    r = run(tmp_path / "s.duckdb", "import-bill", str(FIX / "en-utf8.csv"))
    assert r.exit_code == 0
    r = run(tmp_path / "s.duckdb", "prices", "learn", "--month", "2025-10")
    assert r.exit_code == 2 and "no bill lines stored for 2025-10" in r.stderr


def test_learn_prints_yaml_to_stdout(tmp_path):
    assert run(tmp_path / "s.duckdb", "import-bill", str(FIX / "en-utf8.csv")).exit_code == 0
    r = run(tmp_path / "s.duckdb", "prices", "learn", "--month", "2025-08")
    assert r.exit_code == 0 and r.stdout.startswith("# Prices learnt") and "confidence: bill" in r.stdout


@pytest.mark.parametrize("text,dim,mult", [
    ("次", "count", 1), ("万次", "count", 10000), ("千次", "count", 1000), ("1000 calls", "count", 1000),
    ("10,000 requests", "count", 10000), ("Count", "count", 1), ("GB", "GB", 1), ("MB", "GB", Fraction(1, 1024)),
    ("TB", "GB", 1024), ("GB*小时", "GB-hour", 1), ("GB-hour", "GB-hour", 1), ("GB/小时", "GB-hour", 1),
    ("GB/月", "GB-hour", 720), ("Byte", "GB", Fraction(1, 1024**3)), ("GB×Hour", "GB-hour", 1),
])
def test_parse_unit(text, dim, mult):
    assert parse_unit(text) == (dim, Fraction(mult))


@pytest.mark.parametrize("text", ["", "小时", "次GB", "widgets"])
def test_parse_unit_unknown(text):
    assert parse_unit(text) is None


def test_split_price_unit():
    assert split_price_unit("CNY/万次") == ("CNY", "万次")
    assert split_price_unit("元/GB/小时") == ("CNY", "GB/小时")
    assert split_price_unit("USD") == ("USD", None)
    assert split_price_unit("USD per 1000 calls") == ("USD", "1000 calls")


def test_storage_list_price_per_gb_hour_and_per_gb_month(tmp_path):
    store = tmp_path / "s.duckdb"
    store_items(store, "2025-10", [
        bill_item("2025-10-01", "oss", "Storage", billing_item="标准存储（本地冗余）容量", pretax_gross="0.4",
                  list_price="0.12", list_price_unit="元/GB/月", usage="2400", usage_unit="GB",
                  instance_id="cn-hangzhou;standard"),
        bill_item("2025-10-01", "oss", "StorageZRS", billing_item="标准存储（同城冗余）容量", pretax_gross="1",
                  list_price="0.000208333333", list_price_unit="CNY/GB*小时", usage="4800", usage_unit="GB*小时",
                  instance_id="cn-hangzhou;standard"),
    ])
    _, book = learn(store, "2025-10", tmp_path)
    got = {(e.item, e.selectors): e for e in book.entries}
    assert got[("oss.Storage", (("redundancy", "LRS"), ("storage_class", "Standard")))].price == Decimal("0.12")
    zrs = got[("oss.Storage", (("redundancy", "ZRS"), ("storage_class", "Standard")))]
    assert zrs.price == Decimal("0.14999999976")  # 0.000208333333 x 720, exact and zrs.unit == "GB-month"
