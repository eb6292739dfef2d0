"""Bill records: the canonical bill-line fields and the parsing of one bill cell (amount, day, cycle, currency).

Canonical fields are the DescribeInstanceBill names (billing-facts.md section 10); in the store each field is
a snake_case column of `bill_lines` (`FIELD_COLUMNS`). Amounts, prices and usage are exact Decimals, never
binary floats (`parse_amount`); a value with more than 18 decimals is rounded half-up at 1e-18 (`SCALE`).
Billing days are Asia/Shanghai (UTC+8): `BillingDate` is a date in that zone, the month is `YYYY-MM`.
Both readers (`csvfile` and `bss`) turn their input into `ParsedBill`s of `BillLine`s and check each line
with `complete_line`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI, parse_month

SCALE = 18                      # decimal places kept for amounts, prices and usage (DECIMAL(38, 18))

# --- canonical fields ------------------------------------------------------------------------------

NUMERIC_FIELDS = (
    "ListPrice", "Usage", "PretaxGrossAmount", "InvoiceDiscount", "DeductedByCoupons", "DeductedByCashCoupons",
    "DeductedByPrepaidCard", "DeductedByResourcePackage", "PretaxAmount", "PaymentAmount", "CashAmount",
    "OutstandingAmount", "AdjustAmount", "DeductedBySavingsPlan", "AfterDiscountAmount",
)
# Amounts (money). ListPrice and Usage are numbers but not money; DeductedByResourcePackage (资源包抵扣量) is
# the usage a resource plan covered, in the line's usage unit (a quantity, never subtracted from money).
QUANTITY_FIELDS = ("ListPrice", "Usage", "DeductedByResourcePackage")
AMOUNT_FIELDS = tuple(f for f in NUMERIC_FIELDS if f not in QUANTITY_FIELDS)
TEXT_FIELDS = (
    "BillingCycle", "ProductCode", "ProductName", "ProductType", "ProductDetail", "PipCode", "CommodityCode",
    "BillingItem", "BillingItemCode", "InstanceID", "NickName", "Region", "Zone", "ResourceGroup", "Tag",
    "CostUnit", "InstanceConfig", "InstanceSpec", "SubscriptionType", "Item", "BillingType", "ListPriceUnit",
    "UsageUnit", "Currency", "OwnerID", "BillAccountID", "BillAccountName", "OwnerAccountName", "RecordID",
    "InvoiceId",
)
CANONICAL_FIELDS = ("BillingDate", *TEXT_FIELDS, *NUMERIC_FIELDS)


def _snake(name: str) -> str:
    special = {"InstanceID": "instance_id", "OwnerID": "owner_id", "BillAccountID": "bill_account_id",
               "Item": "item_type", "RecordID": "record_id", "InvoiceId": "invoice_id"}
    if name in special:
        return special[name]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


FIELD_COLUMNS = {f: _snake(f) for f in CANONICAL_FIELDS}

# --- numbers ---------------------------------------------------------------------------------------

_CURRENCY_WORDS = ("CNY", "RMB", "USD", "JPY", "EUR", "HKD", "US$", "元")
_CURRENCY_SIGNS = "¥￥$"
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
EMPTY_CELLS = {"", "-", "--", "—", "N/A", "n/a", "null", "NULL", "None"}


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
    if t in EMPTY_CELLS:
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
    if t in EMPTY_CELLS:
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
    if t in EMPTY_CELLS:
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
    if t in EMPTY_CELLS:
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
    scope_products: tuple | None = None   # a fetch's product codes (empty: all); None: the lines' products
    scope_months: tuple = ()              # months the import covers even without lines (a fetch)
    unknown_columns: list = field(default_factory=list)   # header cells no alias names (kept in raw)

    def months(self) -> list[str]:
        return sorted({l.values["BillingCycle"] for l in self.lines})


# --- checks ----------------------------------------------------------------------------------------

def complete_line(values: dict, *, path, line, want_month, currency, language, header=None, index=None,
                  row=None):
    """Fill derived fields (BillingCycle, Currency) and check the line's day and month (BadInput if not)."""
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


def billing_day_bounds(d: date) -> tuple[datetime, datetime]:
    """The UTC+8 billing day `d` as aware instants [start, end)."""
    start = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def check_one_currency(bill) -> None:
    """A billing month is in one currency: a line in another one is bad input (BadInput naming it)."""
    first: dict = {}
    for ln in bill.lines:
        month, cur = ln.values.get("BillingCycle"), ln.values.get("Currency")
        seen = first.setdefault(month, (cur, ln.line_no))
        if cur != seen[0]:
            raise BadInput(f"{cur} line in the {month} bill, which is in {seen[0]} (line {seen[1]}); one currency "
                           "per month", path=bill.origin, line=ln.line_no, field="Currency")
