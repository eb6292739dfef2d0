"""FOCUS 1.2 export of a month's charges (costkit/data/focus-columns.yaml lists and documents every column).

- `focus_columns()` -> the column specs (name, type, level, nullable, description, billed, expected);
- `focus_billed(store, month)` -> DataFrame of the billed side, one row per stored bill line (mapped or not),
  `x_costkit_source = "billed"`;
- `focus_frame(rows)` builds a frame in column order from dicts, so the expected side (costkit.history_cost)
  can produce rows with `x_costkit_source = "expected"` and `concat_focus(billed, expected)` them;
- `write_focus(frame, path, fmt)` writes CSV (plain decimals, ISO 8601 UTC with Z) or Parquet (decimal128(38,
  18), timestamp[us, UTC], int64, string).

The rows themselves are gathered from the store by costkit.audit.focus_rows; this module frames and writes
them. Decimal columns hold `decimal.Decimal`, DateTime columns aware UTC `pandas.Timestamp`s.
"""
from __future__ import annotations

import importlib.resources
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pandas as pd

from costkit.sources.bills.records import SCALE, decimal_text
from costkit.core import csvsafe
from costkit.core.errors import BadInput
from costkit.core.yamlio import load_yaml_file

FOCUS_TYPES = ("Decimal", "String", "DateTime", "JSON", "Integer")
MANDATORY_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodStart",
    "ChargePeriodEnd", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName")


def focus_columns_path() -> Path:
    return Path(str(importlib.resources.files("costkit") / "data" / "focus-columns.yaml"))


@lru_cache(maxsize=1)
def _columns_cached(path: str) -> tuple:
    data = load_yaml_file(path)
    cols = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(cols, list):
        raise BadInput("columns: expected a list", path=path)
    out = []
    for c in cols:
        if c.get("type") not in FOCUS_TYPES:
            raise BadInput(f"unknown type {c.get('type')!r}", path=path, line=c.line_of("type"), field="type")
        name = c.get("name")
        if c.get("level") == "Custom" and not str(name).startswith("x_"):
            raise BadInput(f"{name}: a custom column must start with x_", path=path, line=c.line)
        out.append({"name": name, "type": c["type"], "level": c.get("level"),
                    "nullable": c.get("nullable") in (True, "true"), "description": c.get("description"),
                    "billed": c.get("billed"), "expected": c.get("expected")})
    return tuple(out)


def focus_columns() -> list[dict]:
    """The export's column specs, in order (from costkit/data/focus-columns.yaml)."""
    return [dict(c) for c in _columns_cached(str(focus_columns_path()))]


def column_names() -> list[str]:
    return [c["name"] for c in focus_columns()]


def arrow_schema(columns: list[dict] | None = None):
    import pyarrow as pa

    types = {"Decimal": pa.decimal128(38, SCALE), "String": pa.string(), "JSON": pa.string(),
             "DateTime": pa.timestamp("us", tz="UTC"), "Integer": pa.int64()}
    return pa.schema([pa.field(c["name"], types[c["type"]], nullable=c["nullable"])
                      for c in (columns or focus_columns())])


def focus_frame(rows: list[dict], columns: list[dict] | None = None) -> pd.DataFrame:
    """A FOCUS frame from row dicts (missing keys are null), columns in the file's order; checks
    non-nullable columns and types."""
    columns = columns or focus_columns()
    names = [c["name"] for c in columns]
    extra = {k for r in rows for k in r} - set(names)
    if extra:
        raise ValueError(f"not FOCUS export columns: {', '.join(sorted(extra))}")
    data = {}
    for c in columns:
        vals = [r.get(c["name"]) for r in rows]
        if not c["nullable"] and any(v is None for v in vals):
            raise ValueError(f"{c['name']}: null in a non-nullable column")
        if c["type"] == "Decimal":
            if any(v is not None and not isinstance(v, Decimal) for v in vals):
                raise TypeError(f"{c['name']}: Decimal values only (never floats)")
            data[c["name"]] = pd.Series(vals, dtype=object)
        elif c["type"] == "DateTime":
            data[c["name"]] = pd.to_datetime(pd.Series(vals, dtype=object), utc=True)
        elif c["type"] == "Integer":
            data[c["name"]] = pd.Series(vals, dtype="Int64")
        else:
            data[c["name"]] = pd.Series(vals, dtype=object)
    return pd.DataFrame(data, columns=names)


def concat_focus(*frames: pd.DataFrame) -> pd.DataFrame:
    """Billed and expected frames as one, in column order (x_costkit_source tells them apart)."""
    names = column_names()
    parts = [f[names] for f in frames if f is not None and len(f)]
    if not parts:
        return focus_frame([])
    return pd.concat(parts, ignore_index=True)


def focus_billed(store, month: str, *, source: str | None = None, mapping=None, account=None) -> pd.DataFrame:
    """The billed side of the FOCUS export for `month`: one row per stored bill line (see the module doc)."""
    from costkit.audit.focus_rows import billed_focus_rows

    return focus_frame(billed_focus_rows(store, month, source=source, mapping=mapping, account=account))


def _expected_frame(rows: list[dict]) -> pd.DataFrame:
    return focus_frame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])


def focus_expected(store, month: str, *, settings=None, prices_file=None) -> pd.DataFrame:
    """The expected side of the FOCUS export for `month` (`x_costkit_source = "expected"`)."""
    from costkit.audit.focus_rows import expected_rows

    return _expected_frame(expected_rows(store, month, settings=settings, prices_file=prices_file)[0])


def _csv_cell(v, typ):
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v) or v is pd.NA:
        return ""
    if typ == "Decimal":
        return decimal_text(v)
    if typ == "DateTime":
        return pd.Timestamp(v).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(v)


def write_table(frame: pd.DataFrame, path, fmt: str, columns: list[dict]) -> None:
    """Write a frame whose columns are described by `columns` (FOCUS types) as CSV or Parquet, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        types = [c["type"] for c in columns]
        names = [c["name"] for c in columns]
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csvsafe.writer(fh, lineterminator="\n")
            w.writerow(names)
            for rec in frame[names].itertuples(index=False, name=None):
                w.writerow([_csv_cell(v, t) for v, t in zip(rec, types)])
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        schema = arrow_schema(columns)
        arrays = []
        for c, f in zip(columns, schema):
            vals = frame[c["name"]].tolist()
            vals = [None if (v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v))
                    else v for v in vals]
            if c["type"] == "DateTime":
                vals = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in vals]
            arrays.append(pa.array(vals, type=f.type))
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), tmp)
    else:
        raise BadInput(f"unknown format {fmt!r} (csv or parquet)", field="--format")
    tmp.replace(path)


def write_focus(frame: pd.DataFrame, path, fmt: str) -> None:
    write_table(frame, path, fmt, focus_columns())


# costkit's own schema: the mapped bill lines, one row per line.
COSTKIT_COLUMNS = [
    ("source", "String"), ("month", "String"), ("billing_date", "String"), ("line_no", "Integer"),
    ("product_code", "String"), ("product_name", "String"), ("billing_item_code", "String"),
    ("billing_item", "String"), ("instance_id", "String"), ("region", "String"), ("item", "String"),
    ("storage_class", "String"), ("redundancy", "String"), ("usage", "Decimal"), ("usage_unit", "String"),
    ("quantity", "Decimal"), ("quantity_unit", "String"), ("list_price", "Decimal"), ("list_price_unit", "String"),
    ("pretax_gross_amount", "Decimal"), ("invoice_discount", "Decimal"), ("deducted_by_coupons", "Decimal"),
    ("deducted_by_resource_package", "Decimal"), ("pretax_amount", "Decimal"), ("net_amount", "Decimal"),
    ("currency", "String"), ("day_start", "DateTime"), ("day_end", "DateTime"), ("x_costkit_source", "String"),
    ("note", "String"), ("project", "String"), ("tags", "String"),
]


def costkit_billed(store, month: str, *, source=None, mapping=None, account=None) -> pd.DataFrame:
    """The billed side in costkit's schema: the month's mapped bill lines, columns in COSTKIT_COLUMNS order."""
    from costkit.audit.focus_rows import costkit_billed_lines

    frame = costkit_billed_lines(store, month, source=source, mapping=mapping, account=account)
    return frame[[n for n, _ in COSTKIT_COLUMNS]]


def costkit_expected(rows: list[dict], month: str) -> pd.DataFrame:
    """costkit-schema frame from `expected_rows`: one per day x item x class x redundancy x project x tags."""
    from costkit.audit.focus_rows import costkit_expected_rows

    frame = pd.DataFrame(costkit_expected_rows(rows, month), columns=[n for n, _ in COSTKIT_COLUMNS], dtype=object)
    for c in ("day_start", "day_end"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


ROW_CHOICES = ("billed", "expected", "both")


def export_month(store, month: str, *, schema: str, fmt: str, out, source=None, mapping=None, settings=None,
                 prices_file=None, rows_kind: str = "billed", account=None) -> tuple[int, list[str]]:
    """`costkit export`: write the month's billed charges (every stored bill line: the default, so that a
    dashboard summing BilledCost gets the invoice's payable total), or the expected charges (the cost
    engine's day x item lines handed out per class x redundancy x project x tags), or both in one file
    (`x_costkit_source` tells them apart); returns (rows, notes)."""
    from costkit.audit.focus_rows import expected_rows

    if schema not in ("focus", "costkit"):
        raise BadInput(f"unknown schema {schema!r} (focus or costkit)", field="--schema")
    if rows_kind not in ROW_CHOICES:
        raise BadInput(f"expected one of {', '.join(ROW_CHOICES)}, got {rows_kind!r}", field="--rows")
    rows, notes = [], []
    if rows_kind != "billed":
        rows, notes = expected_rows(store, month, settings=settings, prices_file=prices_file)
    if schema == "focus":
        billed = focus_billed(store, month, source=source, mapping=mapping, account=account)
        if rows_kind == "expected":
            billed = billed.iloc[0:0]
        expected = _expected_frame(rows)
        frame = concat_focus(billed, expected)
        write_focus(frame, out, fmt)
    else:
        billed = costkit_billed(store, month, source=source, mapping=mapping, account=account)
        if rows_kind == "expected":
            billed = billed.iloc[0:0]
        expected = costkit_expected(rows, month)
        frame = pd.concat([f for f in (billed, expected) if len(f)], ignore_index=True) if (
            len(billed) or len(expected)) else billed
        cols = [{"name": n, "type": t, "nullable": True} for n, t in COSTKIT_COLUMNS]
        write_table(frame, out, fmt, cols)
    if billed.empty and rows_kind != "expected":
        notes.append(f"no bill lines stored for {month}" + (": only expected charges are exported" if rows else ""))
    if not rows and rows_kind != "billed":
        notes.append(f"no priced task history for {month}" + (": only billed charges are exported"
                                                              if len(billed) else ""))
    return len(frame), notes
