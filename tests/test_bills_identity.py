"""A month is the union of its imports: natural line keys, import scopes, duplicates stored once, the console's
39-column header, the payable-amount rule with a resource-plan quantity, --sources and --account."""
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from bss_server import BSSServer, sample_items
from conftest import TEST_AK, TEST_SK
from costkit.cli.main import main
from costkit.sources.bills.bss import BillRetry
from costkit.store.bills import bill_lines_frame, mapped_bill_lines as mapped_bill
from costkit.store.db import Store

FIX = Path(__file__).parent / "fixtures" / "bills"
FAST = {"credentials": (TEST_AK, TEST_SK), "retry": BillRetry(attempts=2, base=0.001, cap=0.01)}


def run(store, *args):
    return CliRunner().invoke(main, ["--store", str(store), *args], obj={"fetch_bill_kwargs": FAST})


def _frame(store, **kw):
    with Store.open(store) as s:
        return mapped_bill(s, "2025-08", **kw)


def test_two_files_by_product_add_up_to_the_month(tmp_path):
    store = tmp_path / "s.duckdb"
    assert "added 2, replaced 0" in run(store, "import-bill", str(FIX / "console-39-imm.csv")).output
    r = run(store, "import-bill", str(FIX / "console-39-oss.csv"))
    assert r.exit_code == 0 and "added 2, replaced 0, skipped 0" in r.output
    f = _frame(store)
    assert len(f) == 4 and set(f["product_code"]) == {"imm", "oss"}
    assert sum(f["net_amount"]) == Decimal("0.60") + Decimal("0.25") + Decimal("0.02") + Decimal("0.01")
    r = run(store, "bill-lines", "--month", "2025-08", "--sources", "--format", "json")
    assert r.exit_code == 0, r.output
    assert '"products": "imm"' in r.output and '"products": "oss"' in r.output and '"payable": "0.85"' in r.output


def test_reimporting_a_file_replaces_only_what_it_brought(tmp_path):
    store = tmp_path / "s.duckdb"
    run(store, "import-bill", str(FIX / "console-39-imm.csv"))
    run(store, "import-bill", str(FIX / "console-39-oss.csv"))
    r = run(store, "import-bill", str(FIX / "console-39-imm.csv"))
    assert "added 0, replaced 2, skipped 0" in r.output
    assert len(_frame(store)) == 4


def test_an_overlapping_file_stores_each_line_once_and_names_the_import_it_duplicates(tmp_path):
    store = tmp_path / "s.duckdb"
    run(store, "import-bill", str(FIX / "console-39-imm.csv"))
    r = run(store, "import-bill", str(FIX / "console-39-both.csv"))
    assert "added 2, replaced 0, skipped 2 duplicate(s) (already stored by #1: 2)" in r.output
    assert len(_frame(store)) == 4
    # the English twin of the same export (same scope as console-39-both): replaces what that import brought
    r = run(store, "import-bill", str(FIX / "console-39-en.csv"))
    assert "added 0, replaced 2, skipped 2 duplicate(s) (already stored by #1: 2)" in r.output
    assert len(_frame(store)) == 4


def test_two_accounts_add_and_account_selects_one(tmp_path):
    store = tmp_path / "s.duckdb"
    run(store, "import-bill", str(FIX / "console-39-imm.csv"))
    run(store, "import-bill", str(FIX / "console-39-account-b.csv"))
    assert len(_frame(store)) == 3
    assert len(_frame(store, account="2001")) == 1
    r = run(store, "bill-lines", "--month", "2025-08", "--account", "9999")
    assert r.exit_code == 2 and "no 2025-08 bill lines of account '9999'" in r.output


def test_the_39_column_header_reads_accounts_list_price_currency_and_record_id(tmp_path):
    store = tmp_path / "s.duckdb"
    r = run(store, "import-bill", str(FIX / "console-39-both.csv"))
    assert r.exit_code == 0 and "columns not read" not in r.output
    f = _frame(store)
    line = f[f["record_id"] == "r-imm-2"].iloc[0]
    assert (line["bill_account_id"], line["owner_id"], line["owner_account_name"]) == ("1001", "1002", "owner@example")
    assert (line["list_price"], line["list_price_unit"], line["currency"]) == (Decimal("0.5"), "元/千次", "CNY")
    assert line["source"] == "csv:1001" and line["account"] == "1001"


def test_payable_is_the_net_deductions_as_stated_and_the_plan_a_quantity(tmp_path):
    store = tmp_path / "s.duckdb"
    run(store, "import-bill", str(FIX / "console-39-imm.csv"))
    line = _frame(store).iloc[1]
    assert line["net_amount"] == Decimal("0.25") and line["amount_rule"] == "payable"
    assert line["deductions"] == Decimal("0.03")                  # discount 0.01 + voucher 0.02
    assert line["other_deduction"] == Decimal("0.02")             # 0.30 - 0.03 - 0.25, shown
    assert line["plan_quantity"] == Decimal("400")                # calls covered by a plan, not money
    assert line["quantity"] == Decimal("1000")


def test_without_a_payable_column_the_fallback_formula_is_used_and_named(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text("账单日期,产品Code,计费项Code,用量,用量单位,目录总价,优惠金额,优惠券抵扣金额,资源包抵扣量,币种\n"
                 "2025-08-01,imm,ImageSplicing,1000,次,0.50,0.05,0.05,200,CNY\n", encoding="utf-8")
    store = tmp_path / "s.duckdb"
    assert run(store, "import-bill", str(p)).exit_code == 0
    line = _frame(store).iloc[0]
    assert line["net_amount"] == Decimal("0.40") and line["amount_rule"] == "gross - discount - coupons"
    with Store.open(store) as s:
        rule = s._con.execute("SELECT amount_rule FROM bill_imports").fetchone()[0]
    assert "PretaxGrossAmount - InvoiceDiscount - DeductedByCoupons" in rule


def test_fetch_with_product_code_after_a_full_fetch_keeps_the_other_products(tmp_path):
    store = tmp_path / "s.duckdb"
    items = sample_items("2025-08", 2)
    n_imm = sum(1 for i in items if i["ProductCode"] == "imm")
    with BSSServer(items) as srv:
        assert run(store, "fetch-bill", "--month", "2025-08", "--endpoint", srv.endpoint).exit_code == 0
        r = run(store, "fetch-bill", "--month", "2025-08", "--endpoint", srv.endpoint, "--product-code", "imm")
        assert r.exit_code == 0, r.output
        assert f"added 0, replaced 0, skipped {n_imm} duplicate(s) (already stored by #1: {n_imm})" in r.output
        # the same scope again: it replaces what it brought (nothing), the full fetch's lines stay
        r = run(store, "fetch-bill", "--month", "2025-08", "--endpoint", srv.endpoint, "--product-code", "imm")
        assert f"skipped {n_imm}" in r.output
    with Store.open(store) as s:
        assert len(bill_lines_frame(s, "2025-08")) == len(items)


def test_an_older_store_is_migrated_and_keeps_its_lines(tmp_path):
    """A store at schema version 4 (bill lines keyed by source and line number) opens, gets line keys and
    import scopes, and a later import of the same lines skips them as duplicates."""
    import duckdb

    from costkit.store import schema
    store = tmp_path / "s.duckdb"
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    for v, m in enumerate(schema.MIGRATIONS[:4], start=1):
        m(con)
        con.execute("INSERT INTO schema_version VALUES (?, now())", [v])
    con.execute("INSERT INTO bill_imports (source, kind, month, origin, imported_at, line_count, replaced_lines) "
                "VALUES ('csv', 'csv', '2025-08', 'old.csv', now(), 2, 0)")
    for n, day in ((2, "2025-08-01"), (3, "2025-08-02")):
        con.execute("INSERT INTO bill_lines (import_id, source, month, line_no, billing_date, product_code, "
                    "billing_item_code, usage, usage_unit, pretax_amount, currency, bill_account_id) VALUES "
                    "(1, 'csv', '2025-08', ?, ?, 'imm', 'ImageSplicing', 1000, '次', 0.50, 'CNY', NULL)", [n, day])
    con.close()
    with Store.open(store) as s:
        assert s.schema_version == len(schema.MIGRATIONS)
        f = bill_lines_frame(s, "2025-08")
        assert len(f) == 2 and f["line_key"].str.endswith("#1").all()
        assert s._con.execute("SELECT scope_key FROM bill_imports").fetchone()[0] == "csv"
