"""Bill lines: read the console's bill-details CSV or BSS OpenAPI DescribeInstanceBill into the store.

Canonical fields are the DescribeInstanceBill names (billing-facts.md section 10); a console CSV's Chinese
or English headers map onto them (`HEADER_ALIASES`). In the store each field is a snake_case column of
`bill_lines` (`FIELD_COLUMNS`); amounts, prices and usage are DECIMAL(38, 18), never binary floats:

- CSV cells are parsed from their text (`parse_amount`: thousands separators and currency symbols are
  stripped only where unambiguous; anything else is bad input naming the file, line and column);
- the API's float fields (PretaxGrossAmount, InvoiceDiscount, ...) are converted through `repr`, i.e. the
  shortest decimal text that round-trips the wire value, never through float arithmetic;
- a value with more than 18 decimals (such as the float 1.6666666666666667e-05) is rounded half-up at 1e-18.

Billing days are Asia/Shanghai (UTC+8): `billing_date` is a DATE in that zone, the month is `YYYY-MM`.

Replacement: a bill source is its kind (`csv` or `api`) plus the account when the bill names one. Importing
a month from a source again deletes that (source, month)'s lines and inserts the new ones in one
transaction: a month is never doubled, and a failed import leaves the previous lines in place.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from costkit.sources.credentials import tea_config_kwargs
from costkit.core.errors import BadInput, CostkitError, RuntimeFailure, one_line
from costkit.core.timeutil import SHANGHAI, parse_month

UTC = timezone.utc
SCALE = 18                      # decimal places kept for amounts, prices and usage (DECIMAL(38, 18))

# --- canonical fields ------------------------------------------------------------------------------

NUMERIC_FIELDS = (
    "ListPrice", "Usage", "PretaxGrossAmount", "InvoiceDiscount", "DeductedByCoupons", "DeductedByCashCoupons",
    "DeductedByPrepaidCard", "DeductedByResourcePackage", "PretaxAmount", "PaymentAmount", "CashAmount",
    "OutstandingAmount", "AdjustAmount",
)
# Amounts (money); ListPrice and Usage are numbers too but not money in the bill's currency.
AMOUNT_FIELDS = tuple(f for f in NUMERIC_FIELDS if f not in ("ListPrice", "Usage"))
TEXT_FIELDS = (
    "BillingCycle", "ProductCode", "ProductName", "ProductType", "ProductDetail", "PipCode", "CommodityCode",
    "BillingItem", "BillingItemCode", "InstanceID", "NickName", "Region", "Zone", "ResourceGroup", "Tag",
    "CostUnit", "InstanceConfig", "InstanceSpec", "SubscriptionType", "Item", "BillingType", "ListPriceUnit",
    "UsageUnit", "Currency", "OwnerID", "BillAccountID", "BillAccountName",
)
CANONICAL_FIELDS = ("BillingDate", *TEXT_FIELDS, *NUMERIC_FIELDS)


def _snake(name: str) -> str:
    special = {"InstanceID": "instance_id", "OwnerID": "owner_id", "BillAccountID": "bill_account_id",
               "Item": "item_type"}
    if name in special:
        return special[name]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


FIELD_COLUMNS = {f: _snake(f) for f in CANONICAL_FIELDS}

# Header aliases, compared after `_norm_header` (NFKC, case-folded, without spaces, _ - / ( ) and the like).
# The console's official column list is not published (billing-facts.md section 10): the Chinese names
# seen in exports come first; extend this table when a real export uses another name.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "BillingDate": ("账单日期", "消费日期", "日期", "Billing Date", "Date", "Consume Date"),
    "BillingCycle": ("账单月份", "账期", "账单周期", "Billing Cycle", "Billing Month"),
    "ProductCode": ("产品Code", "产品代码", "产品编码", "Product Code"),
    "ProductName": ("产品", "产品名称", "Product", "Product Name"),
    "ProductType": ("产品类型", "Product Type"),
    "ProductDetail": ("产品明细", "Product Detail"),
    "PipCode": ("Pip Code",),
    "CommodityCode": ("商品Code", "商品代码", "商品编码", "Commodity Code"),
    "BillingItem": ("计费项", "计费项名称", "Billing Item", "Billable Item"),
    "BillingItemCode": ("计费项Code", "计费项代码", "计费项编码", "Billing Item Code", "Billable Item Code"),
    "InstanceID": ("资产/资源实例ID", "资源实例ID", "实例ID", "资源ID", "Instance ID", "Resource ID",
                   "Instance/Resource ID", "Asset/Resource Instance ID"),
    "NickName": ("实例昵称", "资源昵称", "Nick Name", "Instance Nickname"),
    "Region": ("地域", "区域", "Region"),
    "Zone": ("可用区", "Zone"),
    "ResourceGroup": ("资源组", "Resource Group"),
    "Tag": ("标签", "实例标签", "Tags", "Instance Tag"),
    "CostUnit": ("财务单元", "成本单元", "Cost Unit"),
    "InstanceConfig": ("实例配置", "Instance Config"),
    "InstanceSpec": ("实例规格", "Instance Spec"),
    "SubscriptionType": ("消费类型", "付费方式", "Subscription Type"),
    "Item": ("账单类型", "Bill Type"),
    "BillingType": ("计费类型", "Billing Type"),
    "ListPrice": ("目录单价", "官网单价", "单价", "定价", "List Price", "Unit Price"),
    "ListPriceUnit": ("目录单价单位", "官网单价单位", "单价单位", "定价单位", "List Price Unit", "Unit Price Unit"),
    "Usage": ("用量", "使用量", "Usage", "Usage Amount"),
    "UsageUnit": ("用量单位", "使用量单位", "Usage Unit"),
    "PretaxGrossAmount": ("目录总价", "官网价", "原价", "Pretax Gross Amount", "Gross Amount", "List Amount",
                          "Original Cost"),
    "InvoiceDiscount": ("优惠金额", "Invoice Discount", "Discount", "Discount Amount"),
    "DeductedByCoupons": ("优惠券抵扣", "优惠券抵扣金额", "Deducted By Coupons", "Coupon Deduction"),
    "DeductedByCashCoupons": ("代金券抵扣", "代金券抵扣金额", "Deducted By Cash Coupons", "Voucher Deduction"),
    "DeductedByPrepaidCard": ("储值卡抵扣", "储值卡支付金额", "Deducted By Prepaid Card", "Prepaid Card Deduction"),
    "DeductedByResourcePackage": ("资源包抵扣", "资源包抵扣量", "Deducted By Resource Package",
                                  "Resource Plan Deduction", "Resource Package Deduction"),
    "PretaxAmount": ("应付金额", "应付", "Pretax Amount", "Amount Payable", "Payable Amount"),
    "PaymentAmount": ("支付金额", "Payment Amount"),
    "CashAmount": ("现金支付", "Cash Amount", "Cash Payment"),
    "OutstandingAmount": ("未结清金额", "欠费金额", "Outstanding Amount"),
    "AdjustAmount": ("调整金额", "调账金额", "Adjust Amount"),
    "Currency": ("币种", "货币", "Currency"),
    "OwnerID": ("账号ID", "用户ID", "账号UID", "Owner ID", "Account ID"),
    "BillAccountID": ("账单账号ID", "Bill Account ID"),
    "BillAccountName": ("账号名称", "账单账号名称", "Bill Account Name", "Account Name"),
}


def _norm_header(text: str) -> str:
    t = unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "").casefold()
    return re.sub(r"[\s_\-/()（）·.:：]+", "", t)


# Detailed bill files (详单) carry the usage start instead of a billing day: the day is read from it.
_USAGE_START_ALIASES = ("UsageStartTime", "使用开始时间", "用量开始时间", "消费时间", "Usage Start Time")

_ALIAS_INDEX: dict[str, str] = {}
for _a in _USAGE_START_ALIASES:
    _ALIAS_INDEX[_norm_header(_a)] = "UsageStartTime"
for _f in CANONICAL_FIELDS:
    _ALIAS_INDEX.setdefault(_norm_header(_f), _f)
for _f, _aliases in HEADER_ALIASES.items():
    for _a in _aliases:
        _ALIAS_INDEX.setdefault(_norm_header(_a), _f)

_CJK = re.compile(r"[\u4e00-\u9fff]")

# --- numbers ---------------------------------------------------------------------------------------

_CURRENCY_WORDS = ("CNY", "RMB", "USD", "JPY", "EUR", "HKD", "US$", "元")
_CURRENCY_SIGNS = "¥￥$"
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_EMPTY = {"", "-", "--", "—", "N/A", "n/a", "null", "NULL", "None"}


def parse_amount(text) -> Decimal | None:
    """An exact Decimal from a bill cell; None for an empty cell ("", "-", "N/A").

    Accepts `1234.5`, `1,234.50`, `-0.01`, `¥12.30`, `12.30 CNY`, `(0.50)` (negative), and wire floats.
    Raises ValueError for anything else (exponent text such as `1.2E-5`, two decimal points, misplaced
    separators, letters, NaN, infinity).
    """
    if text is None:
        return None
    if isinstance(text, bool):
        raise ValueError(f"not an amount: {text!r}")
    if isinstance(text, float):
        # Wire floats: their repr is the shortest decimal text that round-trips, never arithmetic.
        if text != text or text in (float("inf"), float("-inf")):
            raise ValueError(f"not an amount: {text!r}")
        return _fit(Decimal(repr(text)), text)
    if isinstance(text, (int, Decimal)):
        return _fit(Decimal(text), text)
    t = unicodedata.normalize("NFKC", str(text)).strip()
    if t in _EMPTY:
        return None
    neg = False
    if t.startswith("(") and t.endswith(")"):
        neg, t = True, t[1:-1].strip()
    for w in _CURRENCY_WORDS:
        if t.upper().startswith(w.upper()):
            t = t[len(w):].strip()
        elif t.upper().endswith(w.upper()):
            t = t[:-len(w)].strip()
    sign = ""
    if t[:1] in "+-" and t[1:2] and t[1:2] in _CURRENCY_SIGNS:
        sign, t = t[0], t[1:]
    if t[:1] and t[:1] in _CURRENCY_SIGNS:
        t = t[1:].strip()
    t = sign + t
    if _GROUPED.match(t):
        t = t.replace(",", "")
    if not _PLAIN.match(t):
        raise ValueError(f"not an amount: {text!r}")
    if "e" in t.lower():  # a spreadsheet re-saves 123456.78 as 1.23E+05, losing digits
        raise ValueError(f"{text!r} is in exponent notation (re-saved by a spreadsheet?); the digits may be lost: "
                         f"export the bill again, or write {format(Decimal(t), 'f')}")
    d = Decimal(t)
    if neg:
        d = -d
    return _fit(d, text)


def _fit(d: Decimal, original) -> Decimal:
    if not d.is_finite():
        raise ValueError(f"not an amount: {original!r}")
    if d != 0 and d.adjusted() >= 38 - SCALE:
        raise ValueError(f"too large: {original!r}")
    if d.as_tuple().exponent < -SCALE:
        # e.g. a wire float 1.6666666666666667e-05: kept to 18 decimals (the store's scale), half-up
        d = d.quantize(Decimal(1).scaleb(-SCALE), rounding=ROUND_HALF_UP)
    return d


def decimal_text(d: Decimal | None) -> str | None:
    """Plain decimal text without exponent or trailing zeros (None stays None)."""
    if d is None:
        return None
    d = Decimal(d)
    if d == 0:
        return "0"
    t = format(d.normalize(), "f")
    return t


# --- dates -----------------------------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S",
                 "%Y年%m月%d日")


def parse_billing_date(text) -> date | None:
    """A billing day (Asia/Shanghai) from `2025-08-01`, `2025/8/1`, `20250801` or with a 00:00:00 time."""
    if text is None:
        return None
    if isinstance(text, datetime):
        return text.astimezone(SHANGHAI).date() if text.tzinfo else text.date()
    if isinstance(text, date):
        return text
    t = unicodedata.normalize("NFKC", str(text)).strip()
    if t in _EMPTY:
        return None
    if "T" in t and ("+" in t[10:] or t.endswith("Z")):
        try:
            return datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(SHANGHAI).date()
        except ValueError:
            pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(t, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r}")


def parse_cycle(text) -> str | None:
    if text is None:
        return None
    t = unicodedata.normalize("NFKC", str(text)).strip()
    if t in _EMPTY:
        return None
    m = re.match(r"^(\d{4})[-/.年]?(\d{1,2})月?$", t)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"not a billing cycle (YYYY-MM): {text!r}")
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"


def month_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def month_days(month: str) -> tuple[date, date]:
    """(first day, first day of the next month) of a billing month."""
    y, m = parse_month(month)
    first = date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return first, nxt


_CURRENCY_NAMES = {"CNY": "CNY", "RMB": "CNY", "人民币": "CNY", "元": "CNY", "USD": "USD", "美元": "USD",
                   "JPY": "JPY", "日元": "JPY", "EUR": "EUR", "HKD": "HKD"}


def norm_currency(text) -> str | None:
    """An ISO 4217 code (CNY, USD, JPY, ...) from a bill's currency cell; None when empty."""
    if text is None:
        return None
    t = unicodedata.normalize("NFKC", str(text)).strip()
    if t in _EMPTY:
        return None
    code = _CURRENCY_NAMES.get(t.upper()) or _CURRENCY_NAMES.get(t)
    if code:
        return code
    if re.fullmatch(r"[A-Za-z]{3}", t):
        return t.upper()
    raise ValueError(f"not a currency: {text!r}")


# --- parsed bills ----------------------------------------------------------------------------------

@dataclass
class BillLine:
    """One bill line: canonical field -> value (Decimal for numbers, date for BillingDate, str or None)."""

    line_no: int
    values: dict
    raw: dict


@dataclass
class ParsedBill:
    """A bill read from a file or the API, before it is stored."""

    kind: str                       # "csv" or "api"
    origin: str                     # file path or endpoint
    lines: list[BillLine]
    encoding: str | None = None
    header_language: str | None = None   # "zh", "en" or None (API)
    columns: dict = field(default_factory=dict)     # source header -> canonical field (None: kept in raw only)
    account_id: str | None = None
    account_name: str | None = None
    sha256: str | None = None
    skipped: int = 0                # total/blank rows skipped

    def months(self) -> list[str]:
        return sorted({l.values["BillingCycle"] for l in self.lines})


def _decode(data: bytes, path) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 or GB18030 text (byte {e.start})", path=path) from None


_REQUIRED_ONE_OF = (("BillingDate", "UsageStartTime"), ("BillingItem", "BillingItemCode"),
                    ("PretaxAmount", "PretaxGrossAmount"))
_TOTAL_WORDS = {"合计", "总计", "total", "sum", "小计", "subtotal"}


def _find_header(rows: list[list[str]]) -> int:
    for i, row in enumerate(rows[:30]):
        found = {_ALIAS_INDEX.get(_norm_header(c)) for c in row}
        if all(any(f in found for f in group) for group in _REQUIRED_ONE_OF):
            return i
    return -1


def read_bill_csv(path, *, month: str | None = None, currency: str | None = None) -> ParsedBill:
    """Parse a console bill-details CSV (UTF-8 with or without BOM, or GB18030; Chinese or English headers).

    Every line must fall in `month` (YYYY-MM) when it is given. Raises BadInput naming the file, the line and
    the column for a bad cell.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput("file not found", path=path) from None
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror or e}", path=path) from None
    text, encoding = _decode(data, path)
    sample = text[:4096]
    first = sample.splitlines()[0] if sample else ""
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as e:
        raise BadInput(f"malformed CSV: {e}", path=path, line=reader.line_num) from None
    hdr = _find_header([r for _, r in rows])
    if hdr < 0:
        raise BadInput("no bill-details header found: need the columns 账单日期/BillingDate, 计费项/BillingItem "
                       "(or its code) and 应付金额/PretaxAmount (or 目录总价/PretaxGrossAmount); export the daily "
                       "bill details (账单明细, 日粒度)", path=path)
    header = [c.replace("\ufeff", "").strip() for c in rows[hdr][1]]
    columns: dict[str, str | None] = {}
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        f = _ALIAS_INDEX.get(_norm_header(h))
        if f is not None and f not in index:
            index[f] = i
            columns[h] = f
        else:
            columns[h] = None
    zh = sum(1 for h in header if _CJK.search(h))
    language = "zh" if zh > len(header) / 2 else "en"
    if currency is not None:
        try:
            currency = norm_currency(currency)
        except ValueError as e:
            raise BadInput(str(e), field="--currency") from None
    want_month = month
    lines: list[BillLine] = []
    skipped = 0
    for line_no, row in rows[hdr + 1:]:
        if not any(c.strip() for c in row):
            skipped += 1
            continue
        first_cells = {_norm_header(c) for c in row[:3] if c.strip()}
        if first_cells & _TOTAL_WORDS:
            skipped += 1
            continue
        raw = {header[i] if i < len(header) else f"column{i + 1}": row[i] for i in range(len(row))}
        values: dict = {}
        for f in CANONICAL_FIELDS:
            i = index.get(f)
            if f == "BillingDate" and i is None:
                i = index.get("UsageStartTime")   # 2025-08-01 13:00:00 (UTC+8) -> billing day 2025-08-01
            cell = row[i] if i is not None and i < len(row) else None
            col = header[i] if i is not None else f
            try:
                if f == "BillingDate":
                    values[f] = parse_billing_date(cell)
                elif f == "BillingCycle":
                    values[f] = parse_cycle(cell)
                elif f in NUMERIC_FIELDS:
                    values[f] = parse_amount(cell)
                elif f == "Currency":
                    values[f] = norm_currency(cell)
                else:
                    v = None if cell is None else unicodedata.normalize("NFC", cell).strip()
                    values[f] = v if v not in _EMPTY else None
            except ValueError as e:
                raise BadInput(str(e), path=path, line=line_no, field=col) from None
        _complete(values, path=path, line=line_no, want_month=want_month, currency=currency,
                  language=language, header=header, index=index, row=row)
        lines.append(BillLine(line_no, values, raw))
    return ParsedBill("csv", str(path), lines, encoding=encoding, header_language=language, columns=columns,
                      sha256=hashlib.sha256(data).hexdigest(), skipped=skipped,
                      account_id=_single([l.values.get("BillAccountID") or l.values.get("OwnerID") for l in lines]),
                      account_name=_single([l.values.get("BillAccountName") for l in lines]))


def _single(values):
    found = {v for v in values if v}
    return found.pop() if len(found) == 1 else None


def _complete(values: dict, *, path, line, want_month, currency, language, header=None, index=None, row=None):
    """Fill derived fields (BillingCycle, Currency) and check the line's day and month."""
    def col(f):
        if index is not None and f in index:
            return header[index[f]]
        if index is not None and f == "BillingDate" and "UsageStartTime" in index:
            return header[index["UsageStartTime"]]
        return f
    d = values.get("BillingDate")
    if d is None:
        raise BadInput("missing billing day (a daily bill line needs one)", path=path, line=line,
                       field=col("BillingDate"))
    cyc = values.get("BillingCycle")
    if cyc is None:
        values["BillingCycle"] = cyc = month_of(d)
    elif cyc != month_of(d):
        raise BadInput(f"billing day {d.isoformat()} is not in billing cycle {cyc}", path=path, line=line,
                       field=col("BillingDate"))
    if want_month is not None and cyc != want_month:
        raise BadInput(f"billing day {d.isoformat()} is not in --month {want_month}", path=path, line=line,
                       field=col("BillingDate"))
    if not values.get("BillingItem") and not values.get("BillingItemCode"):
        raise BadInput("missing billing item", path=path, line=line, field=col("BillingItem"))
    if values.get("PretaxAmount") is None and values.get("PretaxGrossAmount") is None:
        raise BadInput("missing amount", path=path, line=line, field=col("PretaxAmount"))
    if values.get("Currency") is None:
        if currency is None and row is not None:
            currency = _currency_from_cells(row)
        if currency is None and language == "zh":
            currency = "CNY"
        if currency is None:
            raise BadInput("no currency: the file has no Currency/币种 column; pass --currency CNY or USD",
                           path=path, line=line)
        values["Currency"] = currency


def _currency_from_cells(row) -> str | None:
    text = " ".join(row)
    if "¥" in text or "￥" in text:
        return "CNY"
    if "US$" in text or "$" in text:
        return "USD"
    return None


# --- API lines -------------------------------------------------------------------------------------

def parse_api_items(items: list[dict], *, origin: str, month: str, account_id=None, account_name=None,
                    start_line: int = 1) -> list[BillLine]:
    """DescribeInstanceBill `Items[]` (wire names) as bill lines; float amounts via repr, exactly."""
    out = []
    for n, it in enumerate(items, start=start_line):
        values: dict = {}
        for f in CANONICAL_FIELDS:
            v = it.get(f)
            try:
                if f == "BillingDate":
                    values[f] = parse_billing_date(v)
                elif f == "BillingCycle":
                    values[f] = parse_cycle(v) if v else None
                elif f in NUMERIC_FIELDS:
                    values[f] = parse_amount(v)
                elif f == "Currency":
                    values[f] = norm_currency(v)
                else:
                    values[f] = None if v in (None, "") else str(v)
            except ValueError as e:
                raise RuntimeFailure(f"{origin}: DescribeInstanceBill item {n}: {f}: {e}") from None
        if values.get("BillingCycle") is None:
            values["BillingCycle"] = month
        if values.get("Currency") is None and values.get("ListPriceUnit"):
            from costkit.sources.bills.mapping import split_price_unit
            values["Currency"] = split_price_unit(values["ListPriceUnit"])[0]
        if values.get("BillAccountID") is None and account_id:
            values["BillAccountID"] = str(account_id)
        if values.get("BillAccountName") is None and account_name:
            values["BillAccountName"] = str(account_name)
        try:
            _complete(values, path=origin, line=None, want_month=month, currency=None, language=None)
        except BadInput as e:
            raise RuntimeFailure(f"DescribeInstanceBill item {n}: {e}") from None
        raw = {k: (repr(v) if isinstance(v, float) else v) for k, v in it.items()}
        out.append(BillLine(n, values, raw))
    return out


# --- store -----------------------------------------------------------------------------------------

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


def check_one_currency(bill) -> None:
    """A billing month is in one currency: a line in another one is bad input (BadInput naming it)."""
    first: dict = {}
    for ln in bill.lines:
        month, cur = ln.values.get("BillingCycle"), ln.values.get("Currency")
        seen = first.setdefault(month, (cur, ln.line_no))
        if cur != seen[0]:
            raise BadInput(f"{cur} line in the {month} bill, which is in {seen[0]} (line {seen[1]}); one currency "
                           "per month", path=bill.origin, line=ln.line_no, field="Currency")


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


# --- fetch (BSS OpenAPI) ---------------------------------------------------------------------------

BSS_ENDPOINT = "business.aliyuncs.com"
BSS_ENDPOINT_INTL = "business.ap-southeast-1.aliyuncs.com"


def default_bss_endpoint(region: str) -> str:
    """The China site's endpoint for cn-* regions, else the international site's (Singapore)."""
    return f"https://{BSS_ENDPOINT if str(region).startswith('cn-') else BSS_ENDPOINT_INTL}"
PAGE_SIZE = 300                   # DescribeInstanceBill's maximum MaxResults


@dataclass
class BillRetry:
    attempts: int = 5
    base: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int, retry_after_ms=None) -> float:
        if retry_after_ms:
            try:
                return min(self.cap, float(retry_after_ms) / 1000)
            except (TypeError, ValueError):
                pass
        return min(self.cap, self.base * 2 ** (attempt - 1))


def make_bss_client(endpoint: str | None, *, region: str = "cn-hangzhou", credentials=None):
    """A BSS OpenAPI 2017-12-14 client. `credentials`: None for the default Alibaba Cloud chain, or
    (access_key_id, access_key_secret[, security_token]) / a dict with those keys (tests)."""
    from alibabacloud_bssopenapi20171214.client import Client
    from alibabacloud_tea_openapi.models import Config

    from costkit.sources.imm.collect import parse_endpoint

    host, protocol = parse_endpoint(endpoint or default_bss_endpoint(region), region)
    kw = dict(endpoint=host, protocol=protocol, region_id=region, connect_timeout=5_000, read_timeout=60_000)
    kw.update(tea_config_kwargs(credentials))
    return Client(Config(**kw))


def _call(what: str, fn, retry: BillRetry, sleep):
    from alibabacloud_credentials.exceptions import CredentialException

    from costkit.sources.imm.collect import _classify, _describe

    for attempt in range(1, retry.attempts + 1):
        try:
            return fn()
        except CostkitError:
            raise
        except CredentialException as e:
            raise RuntimeFailure(f"{what}: no usable Alibaba Cloud credentials "
                                 f"({one_line(e, 200)})") from None
        except Exception as e:
            again, retry_after, _restart = _classify(e)
            if not again:
                msg = f"{what} failed: {_describe(e)}"
                code = str(getattr(e, "code", "") or "")
                if code.startswith(("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken")):
                    msg += " (check the AccessKey: ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or the credentials chain)"
                elif code.startswith(("Forbidden", "NoPermission")):
                    msg += " (the RAM user or role needs bss:DescribeInstanceBill)"
                raise RuntimeFailure(msg) from None
            if attempt == retry.attempts:
                raise RuntimeFailure(f"{what}: gave up after {retry.attempts} attempts; last error: "
                                     f"{_describe(e)}") from None
            sleep(retry.delay(attempt, retry_after))
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_bill_lines(month: str, *, endpoint: str | None = None, product_codes=(), credentials=None,
                     region: str = "cn-hangzhou", page_size: int = PAGE_SIZE, retry: BillRetry | None = None,
                     sleep=time.sleep) -> ParsedBill:
    """Every DescribeInstanceBill line of `month` (Granularity=DAILY, IsBillingItem=true), page by page
    (NextToken, MaxResults up to 300), for each product code given (default: all products).

    Retries throttling, 5xx and dropped connections; raises RuntimeFailure when a page cannot be read, so
    nothing partial is ever stored.
    """
    from alibabacloud_bssopenapi20171214 import models
    from darabonba.runtime import RuntimeOptions

    parse_month(month, field="--month")
    if not 1 <= page_size <= PAGE_SIZE:
        raise BadInput(f"must be 1..{PAGE_SIZE}, got {page_size}", field="page size")
    retry = retry or BillRetry()
    client = make_bss_client(endpoint, region=region, credentials=credentials)
    origin = endpoint or default_bss_endpoint(region)
    lines: list[BillLine] = []
    account_id = account_name = None
    for product in (list(product_codes) or [None]):
        token = None
        page = 0
        seen_tokens: set = set()
        while True:
            page += 1
            req = models.DescribeInstanceBillRequest(
                billing_cycle=month, granularity="DAILY", is_billing_item=True, max_results=page_size,
                next_token=token, product_code=product)
            what = f"DescribeInstanceBill {month}" + (f" {product}" if product else "") + f" page {page}"
            resp = _call(what, lambda: client.describe_instance_bill_with_options(req, RuntimeOptions()),
                         retry, sleep)
            body = resp.body
            # Success=false, or no Data at all but an error code: never read as an empty (complete) bill.
            if body is None or body.success is False or (body.data is None and (body.code or body.message)):
                code = getattr(body, "code", None)
                msg = getattr(body, "message", None)
                raise RuntimeFailure(f"{what} failed: {code}: {msg}")
            data = body.data
            items = [] if data is None or data.items is None else [i.to_map() for i in data.items]
            if data is not None:
                account_id = account_id or data.account_id
                account_name = account_name or data.account_name
            lines.extend(parse_api_items(items, origin=origin, month=month, account_id=data and data.account_id,
                                         account_name=data and data.account_name, start_line=len(lines) + 1))
            token = data.next_token if data is not None else None
            if not token or not items:
                break
            if token in seen_tokens:
                raise RuntimeFailure(f"{what}: the server returned the same NextToken twice; stopping "
                                     "(nothing stored)")
            seen_tokens.add(token)
    return ParsedBill("api", origin, lines, account_id=account_id, account_name=account_name)


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


def billing_day_bounds(d: date) -> tuple[datetime, datetime]:
    """The UTC+8 billing day `d` as aware instants [start, end)."""
    start = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


__all__ = [
    "BILL_LINE_COLUMNS", "CANONICAL_FIELDS", "FIELD_COLUMNS", "HEADER_ALIASES", "NUMERIC_FIELDS", "BillLine",
    "ImportSummary", "ParsedBill", "bill_lines_frame", "bill_sources", "fetch_bill", "fetch_bill_lines",
    "import_bill_csv", "migration_bills", "parse_amount", "read_bill_csv", "store_bill",
]
