"""FOCUS 1.2 export of billed charges: column names, types, values, CSV and Parquet."""
import csv
import io
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.outputs.focus import (MANDATORY_COLUMNS, column_names, concat_focus, focus_billed, focus_columns,
                           focus_frame)
from costkit.store.db import Store

FIX = Path(__file__).parent / "fixtures" / "bills"
CONDITIONAL = ("ConsumedQuantity", "ConsumedUnit", "ListUnitPrice", "RegionId", "ResourceId", "SkuId", "Tags")
TYPES = {"Decimal": pa.decimal128(38, 18), "String": pa.string(), "JSON": pa.string(),
         "DateTime": pa.timestamp("us", tz="UTC"), "Integer": pa.int64()}


def run(store_path, *args):
    return CliRunner().invoke(main, ["--store", str(store_path), *args])


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s.duckdb"
    assert run(path, "import-bill", str(FIX / "zh-utf8-bom.csv")).exit_code == 0
    return path


def test_schema_file_has_every_mandatory_and_applicable_conditional_column():
    cols = focus_columns()
    names = [c["name"] for c in cols]
    assert len(names) == len(set(names))
    assert set(MANDATORY_COLUMNS) <= set(names) and len(MANDATORY_COLUMNS) == 21
    assert set(CONDITIONAL) <= set(names)
    levels = {c["name"]: c["level"] for c in cols}
    assert all(levels[n] == "Mandatory" for n in MANDATORY_COLUMNS)
    assert all(levels[n] == "Conditional" for n in CONDITIONAL)
    for c in cols:
        assert c["description"] and c["billed"] and c["expected"], c["name"]
        assert c["level"] in ("Mandatory", "Conditional", "Recommended", "Custom")
        if c["level"] == "Custom":
            assert c["name"].startswith("x_")
        else:
            assert not c["name"].startswith("x_")
    assert {"x_costkit_source", "x_costkit_item"} <= set(names)


def test_parquet_column_names_and_types(store, tmp_path):
    out = tmp_path / "f.parquet"
    r = run(store, "export", "--month", "2025-08", "--schema", "focus", "--format", "parquet", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    t = pq.read_table(out)
    assert t.column_names == column_names()
    for c in focus_columns():
        f = t.schema.field(c["name"])
        assert f.type == TYPES[c["type"]], c["name"]
        assert f.nullable == c["nullable"], c["name"]
    assert t.num_rows == 9
    rows = t.to_pylist()
    img = [r for r in rows if r["x_costkit_item"] == "imm.ImageSplicing" and r["x_costkit_billing_date"] == "2025-08-02"][0]
    assert img["ListCost"] == Decimal("0.5") and img["BilledCost"] == Decimal("0.3")
    assert img["EffectiveCost"] == Decimal("0.3") and img["x_costkit_deducted_by_resource_package"] == Decimal("0.2")
    assert img["ChargePeriodStart"].isoformat() == "2025-08-01T16:00:00+00:00"      # 2025-08-02 00:00 UTC+8
    assert img["ChargePeriodEnd"].isoformat() == "2025-08-02T16:00:00+00:00"
    assert img["BillingPeriodStart"].isoformat() == "2025-07-31T16:00:00+00:00"
    assert img["BillingPeriodEnd"].isoformat() == "2025-08-31T16:00:00+00:00"
    assert img["BillingCurrency"] == "CNY" and img["ServiceCategory"] == "Media"
    assert img["x_costkit_source"] == "billed" and img["ChargeCategory"] == "Usage"
    net = [r for r in rows if r["x_costkit_billing_item_code"] == "NetworkOut"][0]
    assert net["x_costkit_item"] is None and net["ServiceName"] == "Object Storage Service"
    assert net["BilledCost"] == Decimal("0.7") and net["ContractedCost"] == Decimal("0.75")
    assert net["RegionId"] == "cn-shanghai" and net["SkuId"] == "oss:NetworkOut"


def test_csv_export_text(store, tmp_path):
    out = tmp_path / "f.csv"
    r = run(store, "export", "--month", "2025-08", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == column_names()
    first = rows[0]
    assert first["ChargePeriodStart"] == "2025-07-31T16:00:00Z"
    assert first["Tags"] == '{"synthetic": "true", "team": "catalog"}'
    assert first["BilledCost"] == "0.6" and first["PricingQuantity"] == "1.2" and first["PricingUnit"] == "1000 Calls"
    assert first["ListUnitPrice"] == "0.5" and first["ConsumedQuantity"] == "1200" and first["ConsumedUnit"] == "Calls"
    assert first["x_costkit_usage"] == "1200" and first["x_costkit_usage_unit"] == "次"
    # ListUnitPrice x PricingQuantity = ListCost wherever the bill states a list price
    for r in rows:
        if r["ListUnitPrice"]:
            assert Decimal(r["ListUnitPrice"]) * Decimal(r["PricingQuantity"]) == Decimal(r["ListCost"]), r
    units = {r["x_costkit_billing_item_code"]: (r["PricingUnit"], r["ConsumedUnit"]) for r in rows}
    assert units["GetRequest"] == ("10000 Requests", "Requests") and units["Storage"] == ("GB-Hours", "GB-Hours")
    assert units["NetworkOut"] == ("GB", "GB")
    put = [r for r in rows if r["x_costkit_billing_item_code"] == "PutRequest"][0]
    assert put["BilledCost"] == "0.0012"
    assert all(r["BillingCurrency"] == "CNY" and r["x_costkit_source"] == "billed" for r in rows)


def test_costkit_schema_and_empty_month(store, tmp_path):
    out = tmp_path / "c.parquet"
    assert run(store, "export", "--month", "2025-08", "--schema", "costkit", "--format", "parquet",
               "--out", str(out)).exit_code == 0
    t = pq.read_table(out)
    assert t.schema.field("net_amount").type == pa.decimal128(38, 18) and t.num_rows == 9
    empty = tmp_path / "e.parquet"
    r = run(store, "export", "--month", "2025-09", "--format", "parquet", "--out", str(empty))
    assert r.exit_code == 0 and pq.read_table(empty).num_rows == 0
    assert pq.read_table(empty).column_names == column_names()


def test_expected_rows_concatenate_with_billed(store):
    with Store.open(store) as s:
        billed = focus_billed(s, "2025-08")
    row = billed.iloc[0].to_dict()
    row.update(x_costkit_source="expected", BilledCost=Decimal("0.61"), x_costkit_bill_line=None)
    both = concat_focus(billed, focus_frame([row]))
    assert list(both.columns) == column_names() and len(both) == 10
    assert both["x_costkit_source"].tolist().count("expected") == 1
    with pytest.raises(TypeError):
        focus_frame([dict(row, BilledCost=0.61)])
    with pytest.raises(ValueError):
        focus_frame([dict(row, BillingCurrency=None)])
    with pytest.raises(ValueError):
        focus_frame([dict(row, Unknown=1)])


def test_readme_documents_every_export_column():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [c for c in column_names() if f"`{c}`" not in readme]
    assert not missing
