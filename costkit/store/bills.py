"""Bill lines in the store: the `bill_imports` / `bill_lines` tables, replacing a month, reading it back.

Each canonical field (`costkit.sources.bills.records`) is a snake_case column of `bill_lines`
(`FIELD_COLUMNS`); amounts, prices and usage are DECIMAL(38, 18), never binary floats. Billing days are
Asia/Shanghai (UTC+8): `billing_date` is a DATE in that zone, the month is `YYYY-MM`.

Import identity (`costkit.store.bill_identity`): a month is the union of its imports. Each line has a
natural key (account, day, product, billing item, instance, pricing and charge type, RecordID); each import
is recorded with its scope (kind, account, products, days). Re-importing the same scope replaces exactly
what the earlier import of that scope brought; another scope adds; a line whose key is already stored (by
another import) is stored once and counted as a duplicate of that import. Each month of an import is one
transaction: a failed import leaves the previous lines in place.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd

from costkit.core.errors import BadInput
from costkit.core.timeutil import parse_month
from costkit.sources.bills.bss import fetch_bill_lines
from costkit.sources.bills.csvfile import read_bill_csv
from costkit.sources.bills.mapping import load_mapping, map_lines
from costkit.sources.bills.records import (
    CANONICAL_FIELDS, FIELD_COLUMNS, NUMERIC_FIELDS, SCALE, BillLine, ParsedBill, check_one_currency, month_days,
)
from costkit.store.bill_identity import account_sql, key_sql, scope_key

PAYABLE_RULE = "net = payable amount (应付金额 / PretaxAmount)"
FALLBACK_RULE = ("net = PretaxGrossAmount - InvoiceDiscount - DeductedByCoupons (no payable amount in the "
                 "bill)")

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
    """What one import stored: per month (import id, lines stored, lines replaced) in `months`, and in
    `details` per month: added, replaced, removed, skipped duplicates by import id, unknown columns."""

    origin: str
    source: str
    months: dict = field(default_factory=dict)    # month -> (import id, lines stored, lines replaced)
    details: dict = field(default_factory=dict)   # month -> dict (see `_store_month`)
    skipped: int = 0
    unmapped: list = field(default_factory=list)  # lines no mapping rule matched (see costkit.billmap)
    unknown_columns: list = field(default_factory=list)

    def line(self) -> str:
        parts = []
        for m, (imp, n, r) in sorted(self.months.items()):
            d = self.details.get(m, {})
            text = (f"{m}: {n} lines stored by import #{imp}: added {d.get('added', n)}, "
                    f"replaced {d.get('replaced', r)}")
            dup = d.get("duplicates") or {}
            text += f", skipped {sum(dup.values())} duplicate(s)"
            if dup:
                text += " (already stored by " + ", ".join(f"#{k}: {v}" for k, v in sorted(dup.items())) + ")"
            if d.get("removed"):
                text += f", removed {d['removed']} line(s) the earlier import of this scope had"
            parts.append(text)
        text = f"bill {self.origin} [{self.source}]: " + ("; ".join(parts) or "no lines")
        if self.skipped:
            text += f"; {self.skipped} blank/total rows skipped"
        if self.unknown_columns:
            text += f"; columns not read (kept in raw): {', '.join(self.unknown_columns)}"
        return text


def source_key(kind: str, account_id: str | None) -> str:
    return f"{kind}:{account_id}" if account_id else kind


def _batch_table(bill: ParsedBill, lines: list, import_id: int, source: str, month: str):
    import pyarrow as pa

    dec = pa.decimal128(38, SCALE)
    cols: dict[str, list] = {"import_id": [import_id] * len(lines), "source": [source] * len(lines),
                             "month": [month] * len(lines), "line_no": [l.line_no for l in lines]}
    schema = [("import_id", pa.int64()), ("source", pa.string()), ("month", pa.string()), ("line_no", pa.int32())]
    for f in CANONICAL_FIELDS:
        c = FIELD_COLUMNS[f]
        cols[c] = [l.values.get(f) for l in lines]
        schema.append((c, pa.date32() if f == "BillingDate" else dec if f in NUMERIC_FIELDS else pa.string()))
    cols["raw"] = [json.dumps(l.raw, ensure_ascii=False, sort_keys=True) for l in lines]
    schema.append(("raw", pa.string()))
    return pa.Table.from_pydict(cols, schema=pa.schema(schema))


def _scope(bill: ParsedBill, lines: list, month: str):
    """(products or None for all, first day, last day) that an import of `month` covers."""
    first, nxt = month_days(month)
    if bill.scope_products is not None or bill.kind == "api":
        products = None if not bill.scope_products else {str(p).lower() for p in bill.scope_products}
        return products, first, nxt - timedelta(days=1)
    products = {str(l.values.get("ProductCode") or "").lower() or (l.values.get("ProductName") or "")
                for l in lines}
    days = [l.values["BillingDate"] for l in lines]
    return products, min(days), max(days)


def _store_month(con, bill: ParsedBill, source: str, month: str, lines: list, now) -> dict:
    """Store one month of `bill` (in the caller's transaction): replace what the earlier import of the same
    scope brought, skip lines another import already stored. Returns the counts."""
    products, d0, d1 = _scope(bill, lines, month)
    sk = scope_key(bill.kind, bill.account_id, products, d0, d1)
    prev = [r[0] for r in con.execute("SELECT id FROM bill_imports WHERE month = ? AND scope_key = ?",
                                      [month, sk]).fetchall()]
    import_id = con.execute(
        "INSERT INTO bill_imports (source, kind, month, origin, sha256, encoding, header_language, account_id, "
        "account_name, imported_at, line_count, replaced_lines, replaced_import, scope_key, products, first_day, "
        "last_day, unknown_columns, amount_rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        [source, bill.kind, month, bill.origin, bill.sha256, bill.encoding, bill.header_language, bill.account_id,
         bill.account_name, now, max(prev) if prev else None, sk,
         None if products is None else json.dumps(sorted(products), ensure_ascii=False), d0, d1,
         json.dumps(bill.unknown_columns, ensure_ascii=False) if bill.unknown_columns else None,
         _amount_rule(lines)]).fetchone()[0]
    old_keys: set = set()
    if prev:
        marks = ", ".join("?" * len(prev))
        old_keys = {r[0] for r in con.execute(
            f"DELETE FROM bill_lines WHERE month = ? AND import_id IN ({marks}) RETURNING line_key",
            [month, *prev]).fetchall()}
    con.register("_costkit_bill_batch", _batch_table(bill, lines, import_id, source, month))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _costkit_keyed AS SELECT * EXCLUDE (_acct) FROM ("
                    f"SELECT l.*, {account_sql('l._acct')} AS account, {key_sql('l._acct')} AS line_key "
                    "FROM (SELECT *, ?::VARCHAR AS _acct FROM _costkit_bill_batch) l)", [bill.account_id])
    finally:
        con.unregister("_costkit_bill_batch")
    dups = dict(con.execute("SELECT s.import_id, count(*) FROM _costkit_keyed k JOIN bill_lines s ON s.month = ? "
                            "AND s.line_key = k.line_key GROUP BY s.import_id", [month]).fetchall())
    names = ", ".join(BILL_LINE_COLUMNS + ("account", "line_key"))
    new_keys = {r[0] for r in con.execute(
        f"INSERT INTO bill_lines ({names}) SELECT {names} FROM _costkit_keyed k WHERE NOT EXISTS "
        "(SELECT 1 FROM bill_lines s WHERE s.month = k.month AND s.line_key = k.line_key) RETURNING line_key"
    ).fetchall()}
    con.execute("DROP TABLE _costkit_keyed")
    replaced = len(new_keys & old_keys)
    counts = {"import_id": import_id, "stored": len(new_keys), "added": len(new_keys - old_keys),
              "replaced": replaced, "removed": len(old_keys - new_keys),
              "duplicates": {int(k): int(v) for k, v in dups.items()}}
    con.execute("UPDATE bill_imports SET line_count = ?, replaced_lines = ?, added_lines = ?, removed_lines = ?, "
                "duplicate_lines = ?, duplicates_of = ? WHERE id = ?",
                [len(new_keys), len(old_keys), counts["added"], counts["removed"], sum(dups.values()),
                 json.dumps(counts["duplicates"]) if dups else None, import_id])
    return counts


def _amount_rule(lines: list) -> str:
    """Which money rule the import's lines use: the payable amount, or the documented fallback formula."""
    payable = sum(1 for l in lines if l.values.get("PretaxAmount") is not None)
    if payable == len(lines):
        return PAYABLE_RULE
    return FALLBACK_RULE if not payable else f"{PAYABLE_RULE}; {len(lines) - payable} line(s): {FALLBACK_RULE}"


def store_bill(store, bill: ParsedBill, *, now: datetime | None = None) -> ImportSummary:
    """Store a parsed bill, each month it holds in one transaction (see the module doc: import identity)."""
    now = now or datetime.now(UTC)
    source = source_key(bill.kind, bill.account_id)
    summary = ImportSummary(bill.origin, source, skipped=bill.skipped, unknown_columns=list(bill.unknown_columns))
    by_month: dict[str, list[BillLine]] = {}
    for l in bill.lines:
        by_month.setdefault(l.values["BillingCycle"], []).append(l)
    for m in bill.scope_months:
        by_month.setdefault(m, [])
    with store.transaction():
        for month, lines in sorted(by_month.items()):
            c = _store_month(store._con, bill, source, month, lines, now)
            summary.months[month] = (c["import_id"], c["stored"], c["replaced"] + c["removed"])
            summary.details[month] = c
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
    """The imports whose lines are in the store for `month`, latest first (columns of `bill_imports`, plus
    `lines`: lines stored from it, and `payable`: their exact net total as decimal text, see `NET_SQL`)."""
    with store._lock:
        return store._con.execute(
            f"SELECT i.*, n.lines, n.payable FROM bill_imports i JOIN (SELECT import_id, count(*) AS lines, "
            f"CAST(sum({NET_SQL}) AS VARCHAR) AS payable FROM bill_lines WHERE month = ? GROUP BY import_id) n ON n.import_id = i.id "
            "WHERE i.month = ? ORDER BY i.imported_at DESC, i.id DESC", [month, month]).df()


# A line's net money (the payable-amount rule; the fallback formula where the bill has no payable amount).
NET_SQL = ("coalesce(pretax_amount, pretax_gross_amount - coalesce(invoice_discount, 0) "
           "- coalesce(deducted_by_coupons, 0))")


IMPORT_COLUMNS = ["import", "kind", "origin", "account", "products", "first_day", "last_day", "lines", "payable",
                  "added", "replaced", "duplicates", "duplicates_of", "imported_at"]


def import_rows(store, month: str, *, account: str | None = None) -> tuple[list, list]:
    """(IMPORT_COLUMNS, one row per import whose lines make up `month`, oldest first): `bill-lines --sources`.
    `payable` is the exact net total of the lines the import stored (its currency)."""
    from costkit.sources.bills.records import decimal_text
    srcs = bill_sources(store, month)
    if account is not None:
        srcs = srcs[srcs["account_id"].fillna("") == account]
    rows = []
    for r in srcs.iloc[::-1].to_dict("records"):
        def v(k):
            x = r.get(k)
            return None if x is None or (isinstance(x, float) and x != x) or x is pd.NaT else x
        prods = json.loads(v("products")) if v("products") else ["(all)"]
        rows.append([int(r["id"]), r["kind"], r["origin"], v("account_id"), ",".join(prods),
                     str(v("first_day"))[:10] if v("first_day") else None,
                     str(v("last_day"))[:10] if v("last_day") else None, int(r["lines"]),
                     decimal_text(_strip(Decimal(r["payable"]))) if v("payable") is not None else None,
                     v("added_lines"), v("replaced_lines"), v("duplicate_lines"), v("duplicates_of"),
                     pd.Timestamp(r["imported_at"]).isoformat()])
    return IMPORT_COLUMNS, rows


def month_accounts(store, month: str) -> list[str]:
    """The accounts whose lines make up `month` (sorted; '' for lines that name none)."""
    with store._lock:
        return [r[0] for r in store._con.execute(
            "SELECT DISTINCT account FROM bill_lines WHERE month = ? ORDER BY 1", [month]).fetchall()]


def bill_lines_frame(store, month: str, *, source: str | None = None, account: str | None = None) -> pd.DataFrame:
    """Stored bill lines of `month`: every import's (the month is their union), or one account's, or one
    source's (`csv`, `api:<account>`, as stored).

    Columns: `BILL_LINE_COLUMNS` (snake_case canonical fields; numbers as Decimal, billing_date as
    datetime.date, Asia/Shanghai) plus `account`, `line_key` and `origin` (the file or endpoint). Empty when
    nothing is stored. BadInput when `account` is given but holds no line of the month.
    """
    parse_month(month)
    where, args = "l.month = ?", [month]
    if source is not None:
        where, args = where + " AND l.source = ?", args + [source]
    if account is not None:
        accounts = month_accounts(store, month)
        if accounts and account not in accounts:
            raise BadInput(f"no {month} bill lines of account {account!r}; the month holds: "
                           f"{', '.join(a or '(none)' for a in accounts)}", field="--account")
        where, args = where + " AND l.account = ?", args + [account]
    names = ", ".join(f"l.{c}" for c in BILL_LINE_COLUMNS + ("account", "line_key"))
    with store._lock:
        cur = store._con.execute(
            f"SELECT {names}, i.origin FROM bill_lines l JOIN bill_imports i ON i.id = l.import_id "
            f"WHERE {where} ORDER BY l.billing_date, l.import_id, l.line_no", args)
        rows = cur.fetchall()
    # dtype=object: keeps None (pandas 3 would turn text columns into str with NaN)
    df = pd.DataFrame(rows, columns=[*BILL_LINE_COLUMNS, "account", "line_key", "origin"], dtype=object)
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


def fetch_bill(store, month: str, **kw) -> ImportSummary:
    """`costkit fetch-bill`: fetch the month (all products, or the codes given), then store it in one
    transaction. An empty answer still replaces what the earlier fetch of the same scope brought."""
    bill = fetch_bill_lines(month, **kw)
    bill.scope_months = (month,)
    return store_bill(store, bill)


def mapped_bill_lines(store, month: str, *, source: str | None = None, mapping=None,
                      account: str | None = None) -> pd.DataFrame:
    """Every stored bill line of `month` with its costkit item (None when unmapped): the columns are in
    `costkit.sources.bills.mapping`'s module doc, numbers as Python Decimals (for the audit's arithmetic).

    `mapping`: a BillMapping, a path, or None for the bundled file.
    """
    if mapping is None or isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    return map_lines(bill_lines_frame(store, month, source=source, account=account), mapping)


def mapped_bill(store, month: str, *, source: str | None = None, mapping=None,
                account: str | None = None) -> pd.DataFrame:
    """Python API: `mapped_bill_lines` as a notebook frame. Same columns; every number (amounts, usage,
    quantity, deductions, net_amount) an exact Arrow decimal (`pd.ArrowDtype(pa.decimal128(38, s))`),
    `billing_date`, `day_start` and `day_end` tz-aware datetime64 (Asia/Shanghai), text as pandas strings.
    """
    return numeric_frame(mapped_bill_lines(store, month, source=source, mapping=mapping, account=account))


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
