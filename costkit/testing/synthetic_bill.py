"""A SYNTHETIC bill for a synthetic task month, with planted discrepancies, for the demo and the audit tests.

`synthetic_bill_items(tasks, month, ...)` bills the tasks the local IMM server holds (costkit.testing.imm_server
wire dicts) the way the usage model says they are billed, one daily line per billing day (UTC+8) and item:

- `imm.ImageSplicing`: Succeeded ImageSplicing tasks completing at or after `billing_start`
  (default 2025-07-28T11:00:00+08:00), on their completion day; ListPrice `list_price` per 1,000 calls
  (`CNY/千次`), PretaxGrossAmount = calls × price / 1000 rounded half-up to 2 decimals;
- `oss.GetRequest` (Standard): every ImageSplicing task, `gets_per_source` per source; `oss.PutRequest`
  (Standard): one per Succeeded task; both at `request_price` per 10,000 (`CNY/万次`), exact amounts;
- one `外网流出流量` (NetworkOut) line per day that costkit does not model (an unmapped line).

Planted discrepancies (each optional): `price_overrides` {"YYYY-MM-DD": price per 1,000} bills those days at
another ImageSplicing price; `resource_plan` {"YYYY-MM-DD": calls} has a resource plan cover that many of the
day's splices: DeductedByResourcePackage states the calls (a quantity, in the usage unit), Usage stays all
calls and PretaxGrossAmount = PretaxAmount charges the rest;
`extra_calls` {"YYYY-MM-DD": n} bills n more splices than the tasks hold (a coverage gap or an unknown
source). A day that the demo's collection misses is simply a day whose tasks are not in the store: the bill
still bills them.

`write_console_csv(items, path, language="zh"|"en", encoding="utf-8-sig"|"gb18030"|"utf-8", layout=...)` writes
the same lines as a console bill-details CSV (`layout="console39"`: the console's real 39-column header). Everything here is labelled synthetic.
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from costkit.testing.bill_items import bill_item

UTC = timezone.utc
BILLING_START = "2025-07-28T11:00:00+08:00"


def _day(ts: str) -> str:
    from zoneinfo import ZoneInfo
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return t.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


def _text(d: Decimal) -> str:
    t = format(d.normalize(), "f")
    return "0" if t in ("-0", "0") else t


def synthetic_bill_items(tasks: list[dict], month: str, *, list_price: str = "0.5", request_price: str = "0.01",
                         gets_per_source: int = 2, billing_start: str = BILLING_START,
                         price_overrides: dict | None = None, resource_plan: dict | None = None,
                         extra_calls: dict | None = None, region: str = "cn-hangzhou",
                         project_instance: str = "demo-synthetic") -> list[dict]:
    """DescribeInstanceBill items (wire form, see `bss_server.bill_item`) for the tasks' month (see the module doc)."""
    start = datetime.fromisoformat(billing_start)
    calls, gets, puts = Counter(), Counter(), Counter()
    for t in tasks:
        if t.get("TaskType") != "ImageSplicing" or not t.get("EndTime"):
            continue
        end = datetime.fromisoformat(t["EndTime"].replace("Z", "+00:00"))
        day = _day(t["EndTime"])
        if not day.startswith(month):
            continue
        try:
            sources = len(json.loads(t.get("TaskRequestDefinition") or "{}").get("Sources") or [])
        except ValueError:
            sources = 0
        gets[day] += sources * gets_per_source
        if t.get("Status") == "Succeeded":
            puts[day] += 1
            if end >= start:
                calls[day] += 1
    for day, n in (extra_calls or {}).items():
        calls[day] += int(n)
    items = []
    cent = Decimal("0.01")
    for day in sorted(set(calls) | set(gets) | set(puts)):
        price = Decimal(str((price_overrides or {}).get(day, list_price)))
        if calls[day]:
            covered = int((resource_plan or {}).get(day, 0))
            gross = ((calls[day] - covered) * price / 1000).quantize(cent, rounding=ROUND_HALF_UP)
            items.append(bill_item(
                day, "imm", "ImageSplicing", billing_item="ImageSplicing", product_name="智能媒体管理",
                pretax_gross=_text(gross), pretax=_text(gross), resource_package=str(covered) if covered else "0",
                list_price=_text(price), list_price_unit="CNY/千次", usage=str(calls[day]), usage_unit="次",
                instance_id=project_instance, region=region, tag="synthetic:true"))
        rp = Decimal(request_price)
        for code, name, n in (("GetRequest", "GET类请求次数", gets[day]), ("PutRequest", "PUT类和其他请求次数", puts[day])):
            if n:
                amount = n * rp / 10000
                items.append(bill_item(
                    day, "oss", code, billing_item=name, product_name="对象存储", pretax_gross=_text(amount),
                    list_price=_text(rp), list_price_unit="CNY/万次", usage=str(n), usage_unit="次",
                    instance_id=f"{region};standard", region=region))
        items.append(bill_item(
            day, "oss", "NetworkOut", billing_item="外网流出流量", product_name="对象存储", pretax_gross="0.05",
            list_price="0.5", list_price_unit="CNY/GB", usage="0.1", usage_unit="GB",
            instance_id=f"{region};standard", region=region))
    return items


CSV_COLUMNS = [  # (wire field, Chinese header, English header)
    ("BillingDate", "账单日期", "BillingDate"), ("ProductName", "产品", "ProductName"),
    ("ProductCode", "产品Code", "ProductCode"), ("BillingItem", "计费项", "BillingItem"),
    ("BillingItemCode", "计费项Code", "BillingItemCode"), ("InstanceID", "资产/资源实例ID", "InstanceID"),
    ("Region", "地域", "Region"), ("ListPrice", "目录单价", "ListPrice"),
    ("ListPriceUnit", "目录单价单位", "ListPriceUnit"), ("Usage", "用量", "Usage"), ("UsageUnit", "用量单位", "UsageUnit"),
    ("PretaxGrossAmount", "目录总价", "PretaxGrossAmount"), ("InvoiceDiscount", "优惠金额", "InvoiceDiscount"),
    ("DeductedByCoupons", "优惠券抵扣", "DeductedByCoupons"),
    ("DeductedByResourcePackage", "资源包抵扣", "DeductedByResourcePackage"),
    ("PretaxAmount", "应付金额", "PretaxAmount"), ("Currency", "币种", "Currency"), ("Tag", "标签", "Tag"),
]


# The console's real 39-column bill-details header (operations-facts.md section 3), in its order, with the
# wire field each column holds ("" where the console column has no DescribeInstanceBill twin: left empty).
CONSOLE_39 = [
    ("资源购买账号ID", "BillAccountID"), ("资源购买账号", "BillAccountName"), ("资源归属账号ID", "OwnerID"),
    ("资源归属账号", "OwnerAccountName"), ("账单月份", "BillingCycle"), ("账单日期", "BillingDate"),
    ("费用类型", "SubscriptionType"), ("产品Code", "ProductCode"), ("产品名称", "ProductName"),
    ("商品Code", "CommodityCode"), ("商品名称", "ProductDetail"), ("资产/资源实例ID", "InstanceID"),
    ("资产/资源实例名称", "NickName"), ("资源组", "ResourceGroup"), ("实例标签", "Tag"), ("资源实例配置", "InstanceConfig"),
    ("资源实例规格", "InstanceSpec"), ("公网IP", "InternetIP"), ("私网IP", "IntranetIP"), ("地域", "Region"),
    ("可用区", "Zone"), ("计费项Code", "BillingItemCode"), ("计费规则说明", ""), ("计费项", "BillingItem"),
    ("资源包抵扣量", "DeductedByResourcePackage"), ("用量", "Usage"), ("用量单位", "UsageUnit"), ("目录价", "ListPrice"),
    ("目录价定价类型", "BillingType"), ("价格单位", "ListPriceUnit"), ("目录总价", "PretaxGrossAmount"),
    ("优惠券抵扣金额", "DeductedByCoupons"), ("优惠金额", "InvoiceDiscount"), ("节省计划抵扣目录总价", "DeductedBySavingsPlan"),
    ("应付金额", "PretaxAmount"), ("代金券抵扣金额", "DeductedByCashCoupons"), ("定价币种", "Currency"), ("主键", "RecordID"),
    ("优惠后金额", "AfterDiscountAmount"),
]


def write_console_csv(items: list[dict], path, *, language: str = "zh", encoding: str = "utf-8-sig",
                      layout: str = "short") -> Path:
    """The items as a console bill-details CSV (amounts as text): `layout="short"` the 18 columns of
    CSV_COLUMNS (Chinese or English headers), `"console39"` the console's 39-column header (Chinese)."""
    if layout == "console39":
        header, fields = [c[0] for c in CONSOLE_39], [c[1] for c in CONSOLE_39]
    else:
        col = 1 if language == "zh" else 2
        header, fields = [c[col] for c in CSV_COLUMNS], [c[0] for c in CSV_COLUMNS]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for it in items:
        w.writerow(["" if not f or it.get(f) is None else str(it.get(f)) for f in fields])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path
