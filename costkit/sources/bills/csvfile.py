"""The console's bill-details CSV (账单明细, daily): decoding, header aliases, and one `ParsedBill` per file.

A console CSV's Chinese or English headers map onto the canonical DescribeInstanceBill fields
(`HEADER_ALIASES`, compared after `_norm_header`). Cells are parsed from their text by `records`
(`parse_amount`: thousands separators and currency symbols are stripped only where unambiguous); anything
else is bad input naming the file, line and column.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from pathlib import Path

from costkit.core.errors import BadInput
from costkit.sources.bills.records import (
    CANONICAL_FIELDS, EMPTY_CELLS, NUMERIC_FIELDS, BillLine, ParsedBill, complete_line, norm_currency,
    parse_amount, parse_billing_date, parse_cycle,
)

# Header aliases, compared after `_norm_header` (NFKC, case-folded, without spaces, _ - / ( ) and the like).
# The console's official column list is not published (billing-facts.md section 10): the Chinese names
# seen in exports come first; extend this table when a real export uses another name.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "BillingDate": ("账单日期", "消费日期", "日期", "Billing Date", "Date", "Consume Date"),
    "BillingCycle": ("账单月份", "账期", "账单周期", "Billing Cycle", "Billing Month"),
    "ProductCode": ("产品Code", "产品代码", "产品编码", "Product Code"),
    "ProductName": ("产品", "产品名称", "Product", "Product Name"),
    "ProductType": ("产品类型", "Product Type"),
    "ProductDetail": ("产品明细", "商品名称", "Product Detail", "Commodity Name"),
    "PipCode": ("Pip Code",),
    "CommodityCode": ("商品Code", "商品代码", "商品编码", "Commodity Code"),
    "BillingItem": ("计费项", "计费项名称", "Billing Item", "Billable Item"),
    "BillingItemCode": ("计费项Code", "计费项代码", "计费项编码", "Billing Item Code", "Billable Item Code"),
    "InstanceID": ("资产/资源实例ID", "资源实例ID", "实例ID", "资源ID", "Instance ID", "Resource ID",
                   "Instance/Resource ID", "Asset/Resource Instance ID"),
    "NickName": ("实例昵称", "资源昵称", "资产/资源实例名称", "Nick Name", "Instance Nickname", "Instance Name",
                 "Asset/Resource Instance Name"),
    "Region": ("地域", "区域", "Region"),
    "Zone": ("可用区", "Zone"),
    "ResourceGroup": ("资源组", "Resource Group"),
    "Tag": ("标签", "实例标签", "Tags", "Instance Tag"),
    "CostUnit": ("财务单元", "成本单元", "Cost Unit"),
    "InstanceConfig": ("实例配置", "资源实例配置", "Instance Config", "Instance Configuration"),
    "InstanceSpec": ("实例规格", "资源实例规格", "Instance Spec", "Instance Specification"),
    "SubscriptionType": ("消费类型", "付费方式", "费用类型", "Subscription Type", "Cost Type", "Fee Type"),
    "Item": ("账单类型", "Bill Type"),
    "BillingType": ("计费类型", "目录价定价类型", "Billing Type", "List Price Pricing Type", "Pricing Type"),
    "ListPrice": ("目录价", "目录单价", "官网单价", "单价", "定价", "List Price", "Unit Price"),
    "ListPriceUnit": ("价格单位", "目录单价单位", "官网单价单位", "单价单位", "定价单位", "List Price Unit", "Price Unit",
                      "Unit Price Unit"),
    "Usage": ("用量", "使用量", "Usage", "Usage Amount"),
    "UsageUnit": ("用量单位", "使用量单位", "Usage Unit"),
    "PretaxGrossAmount": ("目录总价", "官网价", "原价", "Pretax Gross Amount", "Gross Amount", "List Amount",
                          "Original Cost"),
    "InvoiceDiscount": ("优惠金额", "Invoice Discount", "Discount", "Discount Amount"),
    "DeductedByCoupons": ("优惠券抵扣", "优惠券抵扣金额", "Deducted By Coupons", "Coupon Deduction"),
    "DeductedByCashCoupons": ("代金券抵扣", "代金券抵扣金额", "Deducted By Cash Coupons", "Voucher Deduction"),
    "DeductedByPrepaidCard": ("储值卡抵扣", "储值卡支付金额", "Deducted By Prepaid Card", "Prepaid Card Deduction"),
    "DeductedByResourcePackage": ("资源包抵扣量", "资源包抵扣", "Deducted By Resource Package",
                                  "Resource Plan Deduction", "Resource Package Deduction",
                                  "Resource Plan Deduction Quantity"),
    "DeductedBySavingsPlan": ("节省计划抵扣目录总价", "节省计划抵扣", "Deducted By Savings Plan",
                              "Savings Plan Deduction"),
    "AfterDiscountAmount": ("优惠后金额", "After Discount Amount", "Amount After Discount"),
    "PretaxAmount": ("应付金额", "应付", "Pretax Amount", "Amount Payable", "Payable Amount"),
    "PaymentAmount": ("支付金额", "Payment Amount"),
    "CashAmount": ("现金支付", "Cash Amount", "Cash Payment"),
    "OutstandingAmount": ("未结清金额", "欠费金额", "Outstanding Amount"),
    "AdjustAmount": ("调整金额", "调账金额", "Adjust Amount"),
    "Currency": ("币种", "定价币种", "货币", "Currency", "Pricing Currency"),
    # The purchase account (资源购买账号) is the bill's account; the owner account (资源归属账号) owns the resource.
    "OwnerID": ("资源归属账号ID", "账号ID", "用户ID", "账号UID", "Owner ID", "Account ID", "Resource Owner Account ID",
                "Owner Account ID"),
    "OwnerAccountName": ("资源归属账号", "Owner Account Name", "Resource Owner Account", "Owner Account"),
    "BillAccountID": ("资源购买账号ID", "账单账号ID", "Bill Account ID", "Resource Purchaser Account ID",
                      "Purchaser Account ID"),
    "BillAccountName": ("资源购买账号", "账号名称", "账单账号名称", "Bill Account Name", "Account Name",
                        "Resource Purchaser Account", "Purchaser Account"),
    "RecordID": ("主键", "记录ID", "Record ID", "Primary Key"),
    "InvoiceId": ("发票号", "发票ID", "Invoice ID", "Invoice Id", "Invoice Number"),
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

# Console columns costkit knows but does not read (kept in each line's raw cells, not reported as unknown).
_KNOWN_UNREAD = {_norm_header(h) for h in ("公网IP", "私网IP", "计费规则说明", "Public IP", "Private IP",
                                           "Internet IP", "Intranet IP", "Billing Rule Description")}

_CJK = re.compile(r"[\u4e00-\u9fff]")


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
    data, encoding, rows = _read_rows(path)
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
        values = _row_values(row, header, index, path=path, line_no=line_no)
        complete_line(values, path=path, line=line_no, want_month=want_month, currency=currency,
                      language=language, header=header, index=index, row=row)
        lines.append(BillLine(line_no, values, raw))
    unknown = [h for h, f in columns.items() if f is None and h and _norm_header(h) not in _KNOWN_UNREAD]
    return ParsedBill("csv", str(path), lines, encoding=encoding, header_language=language, columns=columns,
                      unknown_columns=unknown,
                      sha256=hashlib.sha256(data).hexdigest(), skipped=skipped,
                      account_id=_single([l.values.get("BillAccountID") or l.values.get("OwnerID") for l in lines]),
                      account_name=_single([l.values.get("BillAccountName") for l in lines]))


def _read_rows(path: Path) -> tuple[bytes, str, list[tuple[int, list[str]]]]:
    """(the file's bytes, its encoding, (line number, cells) per CSV row); tab- or comma-separated."""
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
    return data, encoding, rows


def _row_values(row: list[str], header: list[str], index: dict[str, int], *, path, line_no: int) -> dict:
    """Canonical field -> parsed cell of one CSV row; BadInput naming the line and column of a bad cell."""
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
                values[f] = v if v not in EMPTY_CELLS else None
        except ValueError as e:
            raise BadInput(str(e), path=path, line=line_no, field=col) from None
    return values


def _single(values):
    found = {v for v in values if v}
    return found.pop() if len(found) == 1 else None
