"""Bill CSV import: encodings, header languages, exact amounts, replacement, unmapped lines, bad input."""
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from costkit.sources.bills.records import parse_amount
from costkit.sources.bills.csvfile import read_bill_csv
from costkit.sources.bills.mapping import load_mapping, map_lines
from costkit.store.bills import bill_lines_frame, bill_sources, mapped_bill_lines as mapped_bill
from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.store.db import Store

FIX = Path(__file__).parent / "fixtures" / "bills"
VARIANTS = ["zh-utf8-bom.csv", "zh-gb18030.csv", "en-utf8.csv", "en-gb18030.csv"]


def run(store_path, *args, obj=None):
    return CliRunner().invoke(main, ["--store", str(store_path), *args], obj=obj)


def _lines(store_path, month="2025-08"):
    with Store.open(store_path) as s:
        return bill_lines_frame(s, month)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_encoding_and_header_language_reads_the_same_lines(tmp_path, name):
    bill = read_bill_csv(FIX / name)
    assert bill.encoding == {"zh-utf8-bom.csv": "utf-8-sig", "zh-gb18030.csv": "gb18030",
                             "en-utf8.csv": "utf-8", "en-gb18030.csv": "gb18030"}[name]
    assert bill.header_language == ("zh" if name.startswith("zh") else "en")
    assert len(bill.lines) == 9
    first = bill.lines[0].values
    assert first["BillingDate"].isoformat() == "2025-08-01"
    assert first["BillingItem"] == "ImageSplicing"
    assert first["Usage"] == Decimal("1200")            # "1,200"
    assert first["PretaxGrossAmount"] == Decimal("0.60")  # "¥0.60"
    assert first["ListPriceUnit"] == "CNY/千次"
    storage = [l.values for l in bill.lines if l.values["BillingItemCode"] == "Storage"][0]
    assert storage["BillingItem"] == "标准存储（本地冗余）容量"
    assert storage["ListPrice"] is None
    put = [l.values for l in bill.lines if l.values["BillingItemCode"] == "PutRequest"][0]
    assert put["PretaxAmount"] == Decimal("0.0012") and isinstance(put["PretaxAmount"], Decimal)


def test_import_all_variants_stores_identical_lines_and_replaces_the_month(tmp_path):
    store = tmp_path / "s.duckdb"
    frames = []
    for name in VARIANTS:
        r = run(store, "import-bill", str(FIX / name))
        assert r.exit_code == 0, r.output
        frames.append(_lines(store))
        assert len(frames[-1]) == 9              # replaced, never doubled
    cols = ["billing_date", "billing_item", "billing_item_code", "instance_id", "usage", "pretax_gross_amount",
            "pretax_amount", "deducted_by_resource_package", "currency"]
    for f in frames[1:]:
        assert f[cols].values.tolist() == frames[0][cols].values.tolist()
    with Store.open(store) as s:
        assert s._con.execute("SELECT count(*) FROM bill_lines").fetchone()[0] == 9
        assert s._con.execute("SELECT count(*) FROM bill_imports").fetchone()[0] == 4


def test_reimport_replaces_lines_in_one_go(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "zh-utf8-bom.csv"), "--month", "2025-08").exit_code == 0
    r = run(store, "import-bill", str(FIX / "zh-utf8-bom-v2.csv"))
    assert r.exit_code == 0, r.output
    # the earlier import of the same scope (file, account, products, days) is replaced: 8 lines again, 1 gone
    assert "replaced 8" in r.output and "removed 1 line(s)" in r.output
    df = _lines(store)
    assert len(df) == 8
    assert sorted(df["pretax_amount"])[-1] == Decimal("0.65")
    assert sum(df["pretax_amount"]) == Decimal("0.65") + Decimal("0.30") + Decimal("0.02") + Decimal("0.04") + \
        Decimal("0.0012") + Decimal("0.40") + Decimal("0.022") + Decimal("0.30")


def test_failed_import_keeps_the_previous_lines(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "zh-utf8-bom.csv")).exit_code == 0
    r = run(store, "import-bill", str(FIX / "bad-amount.csv"))
    assert r.exit_code == 2
    assert len(_lines(store)) == 9


def test_bad_amount_is_one_line_naming_file_line_and_column(tmp_path):
    r = run(tmp_path / "s.duckdb", "import-bill", str(FIX / "bad-amount.csv"))
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert "\n" not in err
    assert f"{FIX / 'bad-amount.csv'}:4: 应付金额: not an amount: '0.0.2'" in err
    assert "Traceback" not in r.output


def test_month_option_rejects_lines_outside_it(tmp_path):
    r = run(tmp_path / "s.duckdb", "import-bill", str(FIX / "en-utf8.csv"), "--month", "2025-09")
    assert r.exit_code == 2
    assert "en-utf8.csv:2: BillingDate: billing day 2025-08-01 is not in --month 2025-09" in r.stderr
    r = run(tmp_path / "s.duckdb", "import-bill", str(FIX / "en-utf8.csv"), "--month", "2025-8")
    assert r.exit_code == 2 and "--month" in r.stderr


def test_missing_header_and_missing_file(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    r = run(tmp_path / "s.duckdb", "import-bill", str(p))
    assert r.exit_code == 2 and "no bill-details header" in r.stderr
    r = run(tmp_path / "s.duckdb", "import-bill", str(tmp_path / "nope.csv"))
    assert r.exit_code == 2 and "file not found" in r.stderr


def test_english_file_without_currency_needs_the_option(tmp_path):
    p = tmp_path / "nocur.csv"
    p.write_text("BillingDate,BillingItem,PretaxAmount\n2025-08-03,GetRequest,1.50\n", encoding="utf-8")
    r = run(tmp_path / "s.duckdb", "import-bill", str(p))
    assert r.exit_code == 2 and "--currency" in r.stderr
    r = run(tmp_path / "s.duckdb", "import-bill", str(p), "--currency", "USD")
    assert r.exit_code == 0, r.output
    assert _lines(tmp_path / "s.duckdb")["currency"].tolist() == ["USD"]


def test_unmapped_lines_are_reported_and_kept(tmp_path):
    store = tmp_path / "s.duckdb"
    r = run(store, "import-bill", str(FIX / "zh-gb18030.csv"))
    assert r.exit_code == 0
    assert "8 lines mapped to costkit items, 1 unmapped" in r.output
    assert "unmapped: oss NetworkOut 外网流出流量: 1 line(s), gross 0.75" in r.output
    with Store.open(store) as s:
        frame = mapped_bill(s, "2025-08")
    assert len(frame) == 9
    un = frame[~frame["mapped"]]
    assert un["billing_item_code"].tolist() == ["NetworkOut"]
    assert un["item"].tolist() == [None]
    r = run(store, "bill-lines", "--month", "2025-08", "--unmapped", "--format", "json")
    assert r.exit_code == 0 and "NetworkOut" in r.output and "GetRequest" not in r.output


def test_mapping_items_selectors_quantities_and_net(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "en-utf8.csv")).exit_code == 0
    with Store.open(store) as s:
        f = mapped_bill(s, "2025-08")
    by = {(r["billing_item_code"], r["instance_id"], r["billing_date"].isoformat()): r for r in f.to_dict("records")}
    img = by[("ImageSplicing", "synthetic-project", "2025-08-02")]
    assert img["item"] == "imm.ImageSplicing" and img["quantity"] == Decimal(1000) and img["quantity_unit"] == "calls"
    assert img["deducted_by_resource_package"] == Decimal("0.20")
    assert img["net_amount"] == Decimal("0.30")
    assert img["day_start"].isoformat() == "2025-08-02T00:00:00+08:00"
    ia = by[("GetRequest", "cn-shanghai;ia", "2025-08-01")]
    assert ia["item"] == "oss.GetRequest" and ia["selectors"] == {"storage_class": "IA"}
    assert ia["net_amount"] == Decimal("0.04")
    arc = by[("ChargedDatasize", "cn-shanghai;archive", "2025-08-01")]
    assert arc["item"] == "oss.Storage" and arc["selectors"] == {"storage_class": "Archive", "redundancy": "LRS"}
    assert arc["quantity_unit"] == "GB-hour" and arc["quantity"] == Decimal(480)
    std = by[("Storage", "cn-shanghai;standard", "2025-08-01")]
    assert std["selectors"] == {"storage_class": "Standard", "redundancy": "LRS"}
    assert by[("RetrievalDataArchiveDirect", "cn-shanghai;archive", "2025-08-01")]["item"] == "oss.ArchiveDirectRead"
    for c in ("pretax_gross_amount", "net_amount", "quantity", "usage"):
        assert all(v is None or isinstance(v, Decimal) for v in f[c])


def test_mapping_by_chinese_name_without_code_and_brackets_either_width(tmp_path):
    import pandas as pd
    rows = [{"billing_item": name, "billing_item_code": None, "product_code": None, "product_name": "对象存储",
             "instance_id": inst, "usage": Decimal(1), "usage_unit": unit, "billing_date": pd.Timestamp("2025-08-01").date(),
             "pretax_gross_amount": Decimal(1), "pretax_amount": Decimal(1), "invoice_discount": None,
             "deducted_by_coupons": None, "deducted_by_resource_package": None}
            for name, inst, unit in [("标准存储(本地冗余)容量", "cn-hangzhou;standard", "GB"),
                                     ("GET类请求次数", "cn-hangzhou;archive", "万次"),
                                     ("PUT类和其他请求次数", "cn-hangzhou;standard", "次"),
                                     ("低频(本地冗余)/归档保留不足规定时长计费项（容量*小时数）", "cn-hangzhou;ia", "GB*小时"),
                                     ("数据取回容量", "cn-hangzhou;archive", "GB"),
                                     ("数据取回容量", "cn-hangzhou;ia", "GB")]]
    f = map_lines(pd.DataFrame(rows), load_mapping())
    assert f["item"].tolist() == ["oss.Storage", "oss.GetRequest", "oss.PutRequest", "oss.EarlyDeletion", None,
                                  "oss.IaRetrieval"]
    assert f["quantity"].tolist()[1] == Decimal(10000)
    assert f["selectors"].tolist()[3] == {"storage_class": "IA", "redundancy": "LRS"}
    assert "storage class IA only" in f["note"].tolist()[4]


def test_bad_mapping_file_is_bad_input(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("rules:\n  - item: oss.Nope\n    codes: [X]\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"m.yaml:2: item: unknown item key"):
        load_mapping(p)
    r = run(tmp_path / "s.duckdb", "import-bill", str(FIX / "en-utf8.csv"), "--mapping", str(p))
    assert r.exit_code == 2


@pytest.mark.parametrize("text,value", [
    ("1234.5", "1234.5"), ("1,234.50", "1234.50"), ("-0.01", "-0.01"), ("¥12.30", "12.30"), ("￥12.30", "12.30"),
    ("12.30 CNY", "12.30"), ("USD 3", "3"), ("$1,000", "1000"), ("(0.50)", "-0.50"), ("-¥0.5", "-0.5"),
    (" 7 ", "7"), (0.1, "0.1"), (1e-05, "0.00001"), (1234567.89, "1234567.89"),
    (1.6666666666666667e-05, "0.000016666666666667"), ("0.0000000000000000015", "0.000000000000000002"),
])
def test_parse_amount_exact(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["0.0.2", "12,34", "1,2345.6", "abc", "1.2.3", "NaN", "inf", "12 34", "--5",
                                  "1e400", "1.2E-5", "1e5", "1.23E+05"])
def test_parse_amount_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_amount(text)


@pytest.mark.parametrize("text", ["", "-", "N/A", None])
def test_parse_amount_empty(text):
    assert parse_amount(text) is None


def test_sources_keep_csv_and_api_apart(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "en-utf8.csv")).exit_code == 0
    with Store.open(store) as s:
        srcs = bill_sources(s, "2025-08")
        assert srcs["source"].tolist() == ["csv"]
        assert bill_lines_frame(s, "2025-09").empty


def test_billed_daily_sums_per_day_and_item(tmp_path):
    from costkit.sources.bills.mapping import billed_daily
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(FIX / "zh-utf8-bom.csv")).exit_code == 0
    with Store.open(store) as s:
        daily = billed_daily(mapped_bill(s, "2025-08"))
    key = {(r["billing_date"].isoformat(), r["item"], r["storage_class"]): r for r in daily.to_dict("records")}
    assert len(daily) == 8                       # 9 lines, NetworkOut unmapped
    img2 = key[("2025-08-02", "imm.ImageSplicing", None)]
    assert img2["quantity"] == Decimal(1000) and img2["deducted_by_resource_package"] == Decimal("0.20")
    assert img2["net_amount"] == Decimal("0.30") and img2["list_prices"] == ["0.5 CNY/千次"]
    ia = key[("2025-08-01", "oss.GetRequest", "IA")]
    assert ia["invoice_discount"] == Decimal("0.01") and ia["lines"] == 1


def test_storage_class_from_the_billing_item_name_when_the_instance_does_not_say():
    import pandas as pd
    from costkit.sources.bills.mapping import class_from_text
    assert class_from_text("低频访问GET类请求次数") == "IA"
    assert class_from_text("低频访问(本地冗余)/归档存储容量") is None
    assert class_from_text("深度冷归档存储容量") == "DeepColdArchive"
    rows = [{"billing_item": "低频访问GET类请求次数", "billing_item_code": None, "product_code": "oss",
             "product_name": None, "instance_id": "some-bucket-id", "usage": Decimal(3), "usage_unit": "次",
             "billing_date": pd.Timestamp("2025-08-01").date(), "pretax_gross_amount": Decimal(1),
             "pretax_amount": Decimal(1), "invoice_discount": None, "deducted_by_coupons": None,
             "deducted_by_resource_package": None}]
    f = map_lines(pd.DataFrame(rows), load_mapping())
    assert f["item"].tolist() == ["oss.GetRequest"] and f["selectors"].tolist() == [{"storage_class": "IA"}]


@pytest.mark.parametrize("column,value,message", [
    ("账单日期", "2025-13-01", "账单日期: not a date: '2025-13-01'"),
    ("币种", "Yen!", "币种: not a currency: 'Yen!'"),
    ("用量", "12 GB", "用量: not an amount: '12 GB'"),
])
def test_bad_cells_name_file_line_and_column(tmp_path, column, value, message):
    text = (FIX / "zh-utf8-bom.csv").read_bytes().decode("utf-8-sig").splitlines()
    header = text[0].split(",")
    cells = text[3].split(",")
    cells[header.index(column)] = value
    text[3] = ",".join(cells)
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(text) + "\n", encoding="utf-8")
    r = run(tmp_path / "s.duckdb", "import-bill", str(p))
    assert r.exit_code == 2
    assert r.stderr.strip() == f"costkit: error: {p}:4: {message}"


def test_product_names_that_contain_the_rule_name_match():
    import pandas as pd
    base = {"billing_item_code": "ImageSplicing", "billing_item": "ImageSplicing", "instance_id": "p",
            "usage": Decimal(1), "usage_unit": "次", "billing_date": pd.Timestamp("2025-08-01").date(),
            "pretax_gross_amount": Decimal(1), "pretax_amount": Decimal(1), "invoice_discount": None,
            "deducted_by_coupons": None, "deducted_by_resource_package": None}
    rows = [dict(base, product_code=None, product_name="IMM智能媒体管理"),
            dict(base, product_code="imm", product_name=None),
            dict(base, product_code="ecs", product_name="云服务器ECS")]
    f = map_lines(pd.DataFrame(rows), load_mapping())
    assert f["item"].tolist() == ["imm.ImageSplicing", "imm.ImageSplicing", None]
    assert "not its products" in f["note"].tolist()[2]


def test_detailed_bill_file_without_billing_day_uses_the_usage_start(tmp_path):
    p = tmp_path / "detail.csv"
    p.write_text("BillingCycle,ProductCode,BillingItemCode,UsageStartTime,UsageEndTime,PretaxGrossAmount,"
                 "PretaxAmount,Usage,UsageUnit,Currency\n"
                 "2025-08,imm,ImageSplicing,2025-08-31 23:00:00,2025-09-01 00:00:00,0.05,0.05,100,次,CNY\n",
                 encoding="utf-8")
    r = run(tmp_path / "s.duckdb", "import-bill", str(p))
    assert r.exit_code == 0, r.stderr
    df = _lines(tmp_path / "s.duckdb")
    assert df["billing_date"].tolist()[0].isoformat() == "2025-08-31"
    assert df["usage"].tolist() == [Decimal(100)]
