"""Bill-line identity in the store: the natural key of a line, the scope of an import, and the migration that
gave `bill_lines` a key (store schema version 6).

A line's natural key is its account (the purchase account BillAccountID, else OwnerID, else the import's
account), billing day, product, billing-item code (else name), instance, pricing and charge type
(BillingType, SubscriptionType, Item) and RecordID (主键) where the bill has one, plus its ordinal among the
lines of one import with the same fields (two identical lines of one file stay two lines). The key is
computed in SQL (`KEY_SQL`) for new imports and for the lines of an older store alike, so both agree.

An import's scope is (kind, account, products, first day, last day) of one month: a file covers the products
and days its lines hold, a fetch the product codes it asked for (all when none) and the whole month.
Re-importing the same scope replaces what that import brought; another scope adds to the month.
"""
from __future__ import annotations

import json

SEP = "\x1f"

# The key of a line of table alias `l` (before the ordinal); `acct` is the line's account expression.
NATURAL_SQL = ("concat_ws(chr(31), {acct}, strftime(l.billing_date, '%Y-%m-%d'), "
               "coalesce(lower(l.product_code), l.product_name, ''), "
               "coalesce(l.billing_item_code, l.billing_item, ''), coalesce(l.instance_id, ''), "
               "coalesce(l.billing_type, ''), coalesce(l.subscription_type, ''), coalesce(l.item_type, ''), "
               "coalesce(l.record_id, ''))")


def account_sql(import_account: str = "NULL") -> str:
    """SQL: the account of a line of alias `l` (purchase account, owner, the import's account, '')."""
    return f"coalesce(l.bill_account_id, l.owner_id, {import_account}, '')"


def key_sql(import_account: str = "NULL") -> str:
    """SQL: the full line key of alias `l`: natural key || '#' || ordinal within the import."""
    nat = NATURAL_SQL.format(acct=account_sql(import_account))
    return (f"{nat} || '#' || CAST(row_number() OVER (PARTITION BY l.import_id, {nat} ORDER BY l.line_no) "
            "AS VARCHAR)")


def scope_key(kind: str, account, products, first_day, last_day) -> str:
    """The text that identifies an import's scope within a month (JSON; products sorted, None = all)."""
    return json.dumps([kind, account or "", None if products is None else sorted(products),
                       str(first_day), str(last_day)], ensure_ascii=False)


# Columns of bill_lines at schema version 6 (frozen: a later change is a new migration).
_V5_TEXT = ("billing_cycle", "product_code", "product_name", "product_type", "product_detail", "pip_code",
            "commodity_code", "billing_item", "billing_item_code", "instance_id", "nick_name", "region", "zone",
            "resource_group", "tag", "cost_unit", "instance_config", "instance_spec", "subscription_type",
            "item_type", "billing_type", "list_price_unit", "usage_unit", "currency", "owner_id",
            "bill_account_id", "bill_account_name", "owner_account_name", "record_id", "invoice_id")
_V5_NUMBERS = ("list_price", "usage", "pretax_gross_amount", "invoice_discount", "deducted_by_coupons",
               "deducted_by_cash_coupons", "deducted_by_prepaid_card", "deducted_by_resource_package",
               "pretax_amount", "payment_amount", "cash_amount", "outstanding_amount", "adjust_amount",
               "deducted_by_savings_plan", "after_discount_amount")
_NEW_TEXT = ("owner_account_name", "record_id", "invoice_id")
_NEW_NUMBERS = ("deducted_by_savings_plan", "after_discount_amount")


def migration_bill_identity(con) -> None:
    """Store migration 6: bill lines keyed by (month, line_key) instead of (source, month, line_no), so that
    several files and fetches make up one month; imports record their scope and what they added, replaced
    and skipped. Lines of an older store keep their import and get their key here."""
    cols = (["import_id BIGINT NOT NULL", "source VARCHAR NOT NULL", "month VARCHAR NOT NULL",
             "line_no INTEGER NOT NULL", "billing_date DATE NOT NULL"]
            + [f"{c} VARCHAR" for c in _V5_TEXT] + [f"{c} DECIMAL(38, 18)" for c in _V5_NUMBERS]
            + ["raw VARCHAR", "account VARCHAR NOT NULL", "line_key VARCHAR NOT NULL",
               "PRIMARY KEY (month, line_key)"])
    con.execute(f"CREATE TABLE bill_lines_v5 ({', '.join(cols)})")
    old = [c for c in ("import_id", "source", "month", "line_no", "billing_date", *_V5_TEXT, *_V5_NUMBERS, "raw")
           if c not in _NEW_TEXT + _NEW_NUMBERS]
    acct = account_sql("i.account_id")
    con.execute(f"""
        INSERT INTO bill_lines_v5 ({', '.join(old)}, account, line_key)
        SELECT {', '.join(old)}, account, line_key FROM (
            SELECT {', '.join('l.' + c for c in old)}, {acct} AS account, {key_sql('i.account_id')} AS line_key
            FROM (SELECT *, NULL::VARCHAR AS record_id FROM bill_lines) l
            LEFT JOIN bill_imports i ON i.id = l.import_id)
        -- two sources of one month (a CSV and a fetch) may hold the same line: the latest import keeps it
        QUALIFY row_number() OVER (PARTITION BY month, line_key ORDER BY import_id DESC) = 1""")
    con.execute("DROP TABLE bill_lines")
    con.execute("ALTER TABLE bill_lines_v5 RENAME TO bill_lines")
    for ddl in ("scope_key VARCHAR", "products VARCHAR", "first_day DATE", "last_day DATE",
                "added_lines INTEGER", "removed_lines INTEGER", "duplicate_lines INTEGER", "duplicates_of VARCHAR",
                "unknown_columns VARCHAR", "amount_rule VARCHAR"):
        con.execute(f"ALTER TABLE bill_imports ADD COLUMN {ddl}")
    # Older imports replaced per (source, month): that stays their scope.
    con.execute("UPDATE bill_imports SET scope_key = source, added_lines = line_count, duplicate_lines = 0")


__all__ = ["SEP", "NATURAL_SQL", "account_sql", "key_sql", "scope_key", "migration_bill_identity"]
