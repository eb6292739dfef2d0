"""costkit export with both sides: billed bill lines and expected charges aggregated per day x item in DuckDB."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.outputs.focus import COSTKIT_COLUMNS, column_names, focus_columns, focus_expected
from costkit.store.db import Store
from test_audit import PRICES, add_tasks, base_month, import_bill, splice_line

TYPES = {"Decimal": pa.decimal128(38, 18), "String": pa.string(), "JSON": pa.string(),
         "DateTime": pa.timestamp("us", tz="UTC"), "Integer": pa.int64()}


def _store(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as st:
        base_month(st, days=("2025-09-01", "2025-09-02"), n=3)
        add_tasks(st, "2025-09-02", 2, sources=2, tags={"team": "b"}, prefix="src")
        import_bill(st, tmp_path, [splice_line("2025-09-01", 3), splice_line("2025-09-02", 5, price="1200")])
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    return path, str(prices)


def test_focus_parquet_has_billed_and_expected_rows_with_the_schema_types(tmp_path):
    path, prices = _store(tmp_path)
    out = tmp_path / "f.parquet"
    r = CliRunner().invoke(main, ["--store", str(path), "export", "--month", "2025-09", "--schema", "focus",
                                  "--format", "parquet", "--prices", prices, "--out", str(out), "--rows", "both"])
    assert r.exit_code == 0, r.stderr
    t = pq.read_table(out)
    assert t.column_names == column_names()
    for c in focus_columns():
        assert t.schema.field(c["name"]).type == TYPES[c["type"]], c["name"]
    rows = t.to_pylist()
    assert {r["x_costkit_source"] for r in rows} == {"billed", "expected"}
    exp = [r for r in rows if r["x_costkit_source"] == "expected"]
    img = {(r["x_costkit_billing_date"], r["Tags"]): r for r in exp if r["x_costkit_item"] == "imm.ImageSplicing"}
    # one row per day x item x class x project x tags (not per task): 09-02 has two tag sets
    assert sorted(img) == [("2025-09-01", '{"team": "a"}'), ("2025-09-02", '{"team": "a"}'),
                           ("2025-09-02", '{"team": "b"}')]
    a = img[("2025-09-02", '{"team": "a"}')]
    assert a["BilledCost"] == Decimal("3") and a["ListCost"] == Decimal("3") and a["ConsumedQuantity"] == Decimal(3)
    assert a["PricingUnit"] == "1000 Calls" and a["PricingQuantity"] == Decimal("0.003")
    assert a["ListUnitPrice"] * a["PricingQuantity"] == a["ListCost"]
    assert a["ChargePeriodStart"].isoformat() == "2025-09-01T16:00:00+00:00"
    assert a["ResourceId"] == "p1" and a["RegionId"] == "cn-hangzhou" and a["ServiceCategory"] == "Media"
    assert a["x_costkit_bill_line"] is None and a["BillingCurrency"] == "CNY"
    get = [r for r in exp if r["x_costkit_item"] == "oss.GetRequest"]
    assert len(get) == 1 and get[0]["ConsumedQuantity"] == Decimal(8) and get[0]["x_costkit_storage_class"] == "Standard"
    assert get[0]["SkuId"] == "oss:GetRequest" and get[0]["PricingUnit"] == "10000 Requests"
    billed = [r for r in rows if r["x_costkit_source"] == "billed"]
    assert len(billed) == 2 and sum(r["BilledCost"] for r in billed) == Decimal("9")


def test_focus_csv_and_costkit_schema_carry_both_sources(tmp_path):
    path, prices = _store(tmp_path)
    out = tmp_path / "f.csv"
    r = CliRunner().invoke(main, ["--store", str(path), "export", "--month", "2025-09", "--prices", prices,
                                  "--out", str(out), "--rows", "both"])
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == column_names()
    assert {r["x_costkit_source"] for r in rows} == {"billed", "expected"}
    assert all(r["ChargePeriodStart"].endswith("Z") for r in rows)
    out2 = tmp_path / "c.parquet"
    r = CliRunner().invoke(main, ["--store", str(path), "export", "--month", "2025-09", "--schema", "costkit",
                                  "--format", "parquet", "--prices", prices, "--out", str(out2), "--rows", "both"])
    assert r.exit_code == 0, r.stderr
    t = pq.read_table(out2)
    assert t.column_names == [n for n, _ in COSTKIT_COLUMNS]
    srcs = t.column("x_costkit_source").to_pylist()
    assert srcs.count("billed") == 2 and "expected" in srcs


def test_expected_frame_matches_the_cost_engine(tmp_path):
    path, prices = _store(tmp_path)
    from costkit.engine.history import price_history
    from costkit.engine.period import parse_period
    with Store.open(path) as st:
        frame = focus_expected(st, "2025-09", prices_file=prices)
        rep = price_history(st, parse_period("2025-09"), prices_file=prices)
    total = sum(frame.loc[frame["x_costkit_item"] == "imm.ImageSplicing", "ListCost"])
    assert total == Decimal(rep["items"]["imm.ImageSplicing"]) == Decimal("8.00")


def test_export_rows_default_to_the_bill_and_expected_on_request(tmp_path):
    """A dashboard summing BilledCost of the default export gets the bill's payable total; --rows expected
    writes only costkit's expected charges; --account keeps one account's lines."""
    path, prices = _store(tmp_path)
    sums = {}
    for rows in ("billed", "expected"):
        out = tmp_path / f"{rows}.csv"
        args = ["--store", str(path), "export", "--month", "2025-09", "--prices", prices, "--out", str(out)]
        r = CliRunner().invoke(main, args + ([] if rows == "billed" else ["--rows", rows]))
        assert r.exit_code == 0, r.stderr
        got = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert {g["x_costkit_source"] for g in got} == {rows}
        sums[rows] = sum(Decimal(g["BilledCost"]) for g in got)
    assert sums["billed"] == Decimal("9")
    r = CliRunner().invoke(main, ["--store", str(path), "export", "--month", "2025-09", "--out",
                                  str(tmp_path / "x.csv"), "--account", "no-such-account"])
    assert r.exit_code == 2 and "no-such-account" in r.output
