"""Bill lines in the store: the `bill_imports` / `bill_lines` tables, replacing a month, reading it back.

Each canonical field (`costkit.sources.bills.records`) is a snake_case column of `bill_lines`
(`FIELD_COLUMNS`); amounts, prices and usage are DECIMAL(38, 18), never binary floats. Billing days are
Asia/Shanghai (UTC+8): `billing_date` is a DATE in that zone, the month is `YYYY-MM`.

Replacement: a bill source is its kind (`csv` or `api`) plus the account when the bill names one. Importing
a month from a source again deletes that (source, month)'s lines and inserts the new ones in one
transaction: a month is never doubled, and a failed import leaves the previous lines in place.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd

from costkit.core.errors import BadInput
from costkit.core.timeutil import parse_month
from costkit.sources.bills.bss import fetch_bill_lines
from costkit.sources.bills.csvfile import read_bill_csv
from costkit.sources.bills.mapping import load_mapping, map_lines
from costkit.sources.bills.records import check_one_currency
from costkit.sources.bills.records import (
    CANONICAL_FIELDS, FIELD_COLUMNS, NUMERIC_FIELDS, SCALE, BillLine, ParsedBill,
)

UTC = timezone.utc

BILL_LINE_COLUMNS = ("import_id", "source", "month", "line_no",
                     *(FIELD_COLUMNS[f] for f in CANONICAL_FIELDS), "raw")


def migration_bills(con) -> None:
    """Store migration (listed in `costkit.store.MIGRATIONS`): `bill_imports` (one row per import) and
    `bill_lines` (the lines of the latest import of each (source, month)).

    Frozen once released: a later schema change is a new migration, never an edit of this one.
    """
    con.execute("CREATE SEQUENCE bill_import_id START 1")
    con.execute("""
        CREATE TABLE bill_imports (
            id BIGINT PRIMARY KEY DEFAULT nextval('bill_import_id'),
            source VARCHAR NOT NULL,       -- 'csv' or 'api', plus ':<account id>' when the bill names it
            kind VARCHAR NOT NULL CHECK (kind IN ('csv', 'api')),
            month VARCHAR NOT NULL,        -- billing cycle YYYY-MM (Asia/Shanghai)
            origin VARCHAR NOT NULL,       -- file path or endpoint
            sha256 VARCHAR,
            encoding VARCHAR,
            header_language VARCHAR,
            account_id VARCHAR,
            account_name VARCHAR,
            imported_at TIMESTAMPTZ NOT NULL,
            line_count INTEGER NOT NULL,
            replaced_lines INTEGER NOT NULL,
            replaced_import BIGINT
        )""")
    con.execute("""
        CREATE TABLE bill_lines (
            import_id BIGINT NOT NULL,
            source VARCHAR NOT NULL,
            month VARCHAR NOT NULL,
            line_no INTEGER NOT NULL,      -- CSV line number in the file, or the API item's ordinal
            billing_date DATE NOT NULL,  -- Asia/Shanghai billing day
            billing_cycle VARCHAR,
            product_code VARCHAR,
            product_name VARCHAR,
            product_type VARCHAR,
            product_detail VARCHAR,
            pip_code VARCHAR,
            commodity_code VARCHAR,
            billing_item VARCHAR,
            billing_item_code VARCHAR,
            instance_id VARCHAR,
            nick_name VARCHAR,
            region VARCHAR,
            zone VARCHAR,
            resource_group VARCHAR,
            tag VARCHAR,
            cost_unit VARCHAR,
            instance_config VARCHAR,
            instance_spec VARCHAR,
            subscription_type VARCHAR,
            item_type VARCHAR,
            billing_type VARCHAR,
            list_price_unit VARCHAR,
            usage_unit VARCHAR,
            currency VARCHAR,
            owner_id VARCHAR,
            bill_account_id VARCHAR,
            bill_account_name VARCHAR,
            list_price DECIMAL(38, 18),
            usage DECIMAL(38, 18),
            pretax_gross_amount DECIMAL(38, 18),
            invoice_discount DECIMAL(38, 18),
            deducted_by_coupons DECIMAL(38, 18),
            deducted_by_cash_coupons DECIMAL(38, 18),
            deducted_by_prepaid_card DECIMAL(38, 18),
            deducted_by_resource_package DECIMAL(38, 18),
            pretax_amount DECIMAL(38, 18),
            payment_amount DECIMAL(38, 18),
            cash_amount DECIMAL(38, 18),
            outstanding_amount DECIMAL(38, 18),
            adjust_amount DECIMAL(38, 18),
            raw VARCHAR,                   -- JSON object: the line as read (every column, as text)
            PRIMARY KEY (source, month, line_no)
        )""")


@dataclass
class ImportSummary:
    """What one import stored: per month, lines stored and lines replaced."""

    origin: str
    source: str
    months: dict = field(default_factory=dict)    # month -> (import id, lines, replaced lines)
    skipped: int = 0
    unmapped: list = field(default_factory=list)  # lines no mapping rule matched (see costkit.billmap)

    def line(self) -> str:
        parts = [f"{m}: {n} lines" + (f" (replaced {r})" if r else "") for m, (_, n, r) in sorted(self.months.items())]
        text = f"bill {self.origin} [{self.source}]: " + ("; ".join(parts) or "no lines")
        if self.skipped:
            text += f"; {self.skipped} blank/total rows skipped"
        return text


def source_key(kind: str, account_id: str | None) -> str:
    return f"{kind}:{account_id}" if account_id else kind


def store_bill(store, bill: ParsedBill, *, now: datetime | None = None) -> ImportSummary:
    """Store a parsed bill: for each month it holds, replace that (source, month) in one transaction."""
    import pyarrow as pa

    now = now or datetime.now(UTC)
    source = source_key(bill.kind, bill.account_id)
    summary = ImportSummary(bill.origin, source, skipped=bill.skipped)
    by_month: dict[str, list[BillLine]] = {}
    for l in bill.lines:
        by_month.setdefault(l.values["BillingCycle"], []).append(l)
    dec = pa.decimal128(38, SCALE)
    con = store._con
    with store.transaction():
        for month, lines in sorted(by_month.items()):
            prev = con.execute("SELECT max(id) FROM bill_imports WHERE source = ? AND month = ?",
                               [source, month]).fetchone()[0]
            replaced = con.execute("DELETE FROM bill_lines WHERE source = ? AND month = ? RETURNING 1",
                                   [source, month]).fetchall()
            import_id = con.execute(
                "INSERT INTO bill_imports (source, kind, month, origin, sha256, encoding, header_language, "
                "account_id, account_name, imported_at, line_count, replaced_lines, replaced_import) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [source, bill.kind, month, bill.origin, bill.sha256, bill.encoding, bill.header_language,
                 bill.account_id, bill.account_name, now, len(lines), len(replaced), prev]).fetchone()[0]
            cols: dict[str, list] = {"import_id": [import_id] * len(lines), "source": [source] * len(lines),
                                     "month": [month] * len(lines), "line_no": [l.line_no for l in lines]}
            schema = [("import_id", pa.int64()), ("source", pa.string()), ("month", pa.string()),
                      ("line_no", pa.int32())]
            for f in CANONICAL_FIELDS:
                c = FIELD_COLUMNS[f]
                cols[c] = [l.values.get(f) for l in lines]
                schema.append((c, pa.date32() if f == "BillingDate" else dec if f in NUMERIC_FIELDS
                               else pa.string()))
            cols["raw"] = [json.dumps(l.raw, ensure_ascii=False, sort_keys=True) for l in lines]
            schema.append(("raw", pa.string()))
            table = pa.Table.from_pydict(cols, schema=pa.schema(schema))
            con.register("_costkit_bill_batch", table)
            try:
                names = ", ".join(BILL_LINE_COLUMNS)
                con.execute(f"INSERT INTO bill_lines ({names}) SELECT {names} FROM _costkit_bill_batch")
            finally:
                con.unregister("_costkit_bill_batch")
            summary.months[month] = (import_id, len(lines), len(replaced))
    return summary


def import_bill_csv(store, path, *, month: str | None = None, currency: str | None = None) -> ImportSummary:
    """`costkit import-bill`: read the CSV, then store it (replacing each month it holds from this source)."""
    if month is not None:
        parse_month(month, field="--month")
    bill = read_bill_csv(path, month=month, currency=currency)
    if not bill.lines:
        raise BadInput("no bill lines in the file" + (f" for {month}" if month else ""), path=path)
    check_one_currency(bill)
    return store_bill(store, bill)


def bill_sources(store, month: str) -> pd.DataFrame:
    """The imports whose lines are in the store for `month`, latest first (columns of `bill_imports`)."""
    with store._lock:
        return store._con.execute(
            "SELECT i.* FROM bill_imports i WHERE i.month = ? AND i.id IN (SELECT DISTINCT import_id FROM "
            "bill_lines WHERE month = ?) ORDER BY i.imported_at DESC, i.id DESC", [month, month]).df()


def bill_lines_frame(store, month: str, *, source: str | None = None) -> pd.DataFrame:
    """Stored bill lines of `month` from one source (default: the source imported last for that month).

    Columns: `BILL_LINE_COLUMNS` (snake_case canonical fields; numbers as Decimal, billing_date as
    datetime.date, Asia/Shanghai) plus `origin` (the file or endpoint). Empty when nothing is stored.
    """
    parse_month(month)
    if source is None:
        srcs = bill_sources(store, month)
        if srcs.empty:
            return _empty_lines()
        source = srcs.iloc[0]["source"]
    names = ", ".join(f"l.{c}" for c in BILL_LINE_COLUMNS)
    with store._lock:
        cur = store._con.execute(
            f"SELECT {names}, i.origin FROM bill_lines l JOIN bill_imports i ON i.id = l.import_id "
            "WHERE l.month = ? AND l.source = ? ORDER BY l.billing_date, l.line_no", [month, source])
        rows = cur.fetchall()
    # dtype=object: keeps None (pandas 3 would turn text columns into str with NaN)
    df = pd.DataFrame(rows, columns=[*BILL_LINE_COLUMNS, "origin"], dtype=object)
    for c in ("import_id", "line_no"):
        df[c] = df[c].astype("int64")
    return _normalise_decimals(df)


def _normalise_decimals(df: pd.DataFrame) -> pd.DataFrame:
    for f in NUMERIC_FIELDS:
        c = FIELD_COLUMNS[f]
        df[c] = [None if v is None else _strip(v) for v in df[c]]
    return df


def _strip(d: Decimal) -> Decimal:
    """DECIMAL(38, 18) values without the padding zeros (same value)."""
    n = d.normalize()
    return n.quantize(Decimal(1)) if n == n.to_integral() and n.as_tuple().exponent > 0 else n


def _empty_lines() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in (*BILL_LINE_COLUMNS, "origin")})
    for c in ("import_id", "line_no"):
        df[c] = df[c].astype("int64")
    return df


def fetch_bill(store, month: str, **kw) -> ImportSummary:
    """`costkit fetch-bill`: fetch the month, then replace it in the store in one transaction."""
    bill = fetch_bill_lines(month, **kw)
    summary = store_bill(store, bill)
    if month not in summary.months:
        # An empty month still replaces what was stored for it.
        with store.transaction():
            source = source_key("api", bill.account_id)
            replaced = store._con.execute("DELETE FROM bill_lines WHERE source = ? AND month = ? RETURNING 1",
                                          [source, month]).fetchall()
            store._con.execute(
                "INSERT INTO bill_imports (source, kind, month, origin, account_id, account_name, imported_at, "
                "line_count, replaced_lines) VALUES (?, 'api', ?, ?, ?, ?, ?, 0, ?)",
                [source, month, bill.origin, bill.account_id, bill.account_name, datetime.now(UTC),
                 len(replaced)])
        summary.months[month] = (None, 0, len(replaced))
    return summary


def mapped_bill_lines(store, month: str, *, source: str | None = None, mapping=None) -> pd.DataFrame:
    """Every stored bill line of `month` with its costkit item (None when unmapped): the columns are in
    `costkit.sources.bills.mapping`'s module doc, numbers as Python Decimals (for the audit's arithmetic).

    `mapping`: a BillMapping, a path, or None for the bundled file.
    """
    if mapping is None or isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    return map_lines(bill_lines_frame(store, month, source=source), mapping)


def mapped_bill(store, month: str, *, source: str | None = None, mapping=None) -> pd.DataFrame:
    """Python API: `mapped_bill_lines` as a notebook frame. Same columns; every number (amounts, usage,
    quantity, deductions, net_amount) an exact Arrow decimal (`pd.ArrowDtype(pa.decimal128(38, s))`),
    `billing_date`, `day_start` and `day_end` tz-aware datetime64 (Asia/Shanghai), text as pandas strings.
    """
    return numeric_frame(mapped_bill_lines(store, month, source=source, mapping=mapping))


def numeric_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its object columns typed: Decimals -> Arrow decimals, dates and datetimes -> tz-aware
    datetime64 (Asia/Shanghai), strings -> pandas strings; other objects (dicts) are left as they are."""
    from datetime import date

    from costkit.core.frames import decimal_series
    from costkit.core.timeutil import SHANGHAI
    out = df.copy()
    for c in df.columns:
        if df[c].dtype != object:
            continue
        vals = [v for v in df[c] if v is not None and v is not pd.NA and v == v]
        if vals and all(isinstance(v, Decimal) for v in vals):
            out[c] = decimal_series(list(df[c]), index=df.index)
        elif vals and all(isinstance(v, datetime) for v in vals):
            out[c] = pd.to_datetime(df[c], utc=True).dt.tz_convert(SHANGHAI)
        elif vals and all(isinstance(v, date) for v in vals):
            out[c] = pd.to_datetime([None if v is None else str(v) for v in df[c]]).tz_localize(SHANGHAI)
        elif all(isinstance(v, str) for v in vals):
            out[c] = df[c].astype("string")
    return out
