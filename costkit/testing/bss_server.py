"""A local BSS OpenAPI 2017-12-14 server on 127.0.0.1: DescribeInstanceBill as alibabacloud_bssopenapi20171214
sends it and reads the answer.

Wire format (from the SDK: `describe_instance_bill_with_options`, tea-openapi RPC style):
- `POST /`, action in `x-acs-action` (or `Action` for v2-signed clients), version 2017-12-14, every parameter
  in the query string (booleans as `true`/`false`), no body;
- the ACS3-HMAC-SHA256 (or v2 HMAC-SHA1) signature is verified with costkit.testing.imm_server's verifier;
- the answer is JSON: `{RequestId, Success, Code, Message, Data: {BillingCycle, AccountID, AccountName,
  TotalCount, NextToken, MaxResults, Items: [...]}}`; amount fields (PretaxGrossAmount, PretaxAmount,
  InvoiceDiscount, DeductedByCoupons, ...) are JSON numbers (floats on the wire), while ListPrice, Usage and
  DeductedByResourcePackage are strings, as the official model declares them (billing-facts.md section 10).

Behaviour:
- `BillingCycle` (YYYY-MM) is required; `Granularity` MONTHLY (default: lines summed per product, billing item
  and instance, no BillingDate) or DAILY (optionally one `BillingDate`); `IsBillingItem=false` strips the
  billing-item fields (BillingItem, ListPrice, Usage, ...); `ProductCode`, `SubscriptionType` and
  `IsHideZeroCharge` filter; `MaxResults` 1..300 (default 20) with an opaque `NextToken` (absent on the last
  page);
- faults (`add_fault`, same kinds as the IMM server: "server_503", "throttle", "drop", "html_502", "error")
  hit DescribeInstanceBill requests, e.g. `srv.add_fault("server_503", times=1)` = a 503 then OK.

Library use::

    with BSSServer(items=[bill_item("2025-08-01", "oss", "GetRequest", ...)]) as srv:
        fetch_bill(store, "2025-08", endpoint=srv.endpoint, credentials=(srv.access_key_id, srv.access_key_secret))
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import uuid
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

from costkit.testing.bill_items import bill_item
from costkit.testing.imm_handler import SignedHandler
from costkit.testing.imm_server import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from costkit.testing.imm_wire import FAULT_KINDS, ApiError, Fault, decode_token, encode_token
from costkit.testing.loopback import LoopbackServer

ACTION = "DescribeInstanceBill"
FLOAT_FIELDS = ("PretaxGrossAmount", "InvoiceDiscount", "DeductedByCoupons", "PretaxAmount",
                "DeductedByCashCoupons", "DeductedByPrepaidCard", "PaymentAmount", "CashAmount",
                "OutstandingAmount", "AdjustAmount", "AfterDiscountAmount")
STRING_NUMBER_FIELDS = ("ListPrice", "Usage", "DeductedByResourcePackage")
BILLING_ITEM_FIELDS = ("BillingItem", "BillingItemCode", "ListPrice", "ListPriceUnit", "Usage", "UsageUnit",
                       "DeductedByResourcePackage")
_CYCLE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BSSServer(LoopbackServer):
    """BSS OpenAPI on 127.0.0.1:port. `items` are wire-form dicts (see `bill_item`); mutate freely."""

    def __init__(self, items: list[dict] | None = None, *, account_id: str = "1234567890123456",
                 account_name: str = "costkit-test@example.com", access_key_id: str = TEST_ACCESS_KEY_ID,
                 access_key_secret: str = TEST_ACCESS_KEY_SECRET, verify_signature: bool = True,
                 host: str = "127.0.0.1", port: int = 0):
        self.items: list[dict] = items if items is not None else []
        self.account_id, self.account_name = account_id, account_name
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.verify_signature = verify_signature
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict]] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._init_server(host, port)

    def add_fault(self, kind: str, **kw) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        kw.setdefault("action", ACTION)
        f = Fault(kind, **kw)
        with self._lock:
            self.faults.append(f)
        return f

    def request_count(self, action: str = ACTION) -> int:
        with self._lock:
            return self.counts.get(action, 0)

    def _next_fault(self, action: str, params: dict) -> Fault | None:
        with self._lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            for f in self.faults:
                if f.take(action, params):
                    return f
        return None

    # -- the action
    def describe_instance_bill(self, p: dict) -> dict:
        cycle = p.get("BillingCycle") or ""
        if not cycle:
            raise ApiError(400, "MissingBillingCycle", "BillingCycle is mandatory for this action.")
        if not _CYCLE.match(cycle):
            raise ApiError(400, "InvalidParameter", f"The specified parameter BillingCycle {cycle} is not valid.")
        gran = p.get("Granularity") or "MONTHLY"
        if gran not in ("MONTHLY", "DAILY"):
            raise ApiError(400, "InvalidParameter", "Granularity must be MONTHLY or DAILY.")
        day = p.get("BillingDate")
        if day:
            if gran != "DAILY":
                raise ApiError(400, "InvalidParameter", "BillingDate is only used when Granularity is DAILY.")
            if not _DAY.match(day) or not day.startswith(cycle):
                raise ApiError(400, "InvalidParameter", f"BillingDate {day} is not in BillingCycle {cycle}.")
        billing_item = _bool(p, "IsBillingItem")
        hide_zero = _bool(p, "IsHideZeroCharge")
        try:
            max_results = int(p.get("MaxResults") or 20)
        except ValueError:
            raise ApiError(400, "InvalidParameter", "MaxResults must be an integer.")
        if not 1 <= max_results <= 300:
            raise ApiError(400, "InvalidParameter", "MaxResults must be between 1 and 300.")
        offset = decode_token(p.get("NextToken") or "", "bss")
        rows = [it for it in self.items if str(it.get("BillingDate", "")).startswith(cycle)]
        if day:
            rows = [it for it in rows if it.get("BillingDate") == day]
        if p.get("ProductCode"):
            rows = [it for it in rows if it.get("ProductCode") == p["ProductCode"]]
        if p.get("SubscriptionType"):
            rows = [it for it in rows if it.get("SubscriptionType") == p["SubscriptionType"]]
        rows = [dict(it) for it in rows]
        if not billing_item:
            rows = _by_instance(rows)
        if gran == "MONTHLY":
            rows = _monthly(rows)
        if hide_zero:
            rows = [r for r in rows if Decimal(str(r.get("PretaxGrossAmount") or 0)) != 0
                    or Decimal(str(r.get("PretaxAmount") or 0)) != 0]
        for r in rows:
            r.setdefault("BillingCycle", cycle)
            r.setdefault("BillAccountID", self.account_id)
            r.setdefault("BillAccountName", self.account_name)
            r.setdefault("OwnerID", self.account_id)
        page = rows[offset:offset + max_results]
        nxt = offset + len(page)
        data = {"BillingCycle": cycle, "AccountID": self.account_id, "AccountName": self.account_name,
                "TotalCount": len(rows), "MaxResults": max_results, "Items": [_wire(r) for r in page]}
        if nxt < len(rows) and page:
            data["NextToken"] = encode_token(nxt, "bss")
        return {"RequestId": str(uuid.uuid4()).upper(), "Success": True, "Code": "Success",
                "Message": "Successful!", "Data": data}


def _bool(p, name) -> bool:
    v = p.get(name)
    if v in (None, ""):
        return False
    if str(v).lower() not in ("true", "false"):
        raise ApiError(400, "InvalidParameter", f"{name} must be true or false.")
    return str(v).lower() == "true"


def _by_instance(rows):
    """Instance-level lines: the billing-item fields are not returned."""
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in BILLING_ITEM_FIELDS}
        out.append(r)
    return out


def _monthly(rows):
    keys = ("ProductCode", "BillingItemCode", "InstanceID", "Currency")
    groups: dict = {}
    for r in rows:
        k = tuple(r.get(x) for x in keys)
        g = groups.get(k)
        if g is None:
            g = groups[k] = {kk: v for kk, v in r.items() if kk != "BillingDate"}
            continue
        for f in (*FLOAT_FIELDS, "Usage", "DeductedByResourcePackage"):
            if f in g or f in r:
                g[f] = str(Decimal(str(g.get(f) or 0)) + Decimal(str(r.get(f) or 0)))
    return list(groups.values())


_NUM_MARK = "\u0000num:"


def _wire(r: dict) -> dict:
    out = {}
    for k, v in r.items():
        if k in FLOAT_FIELDS:
            out[k] = None if v in (None, "") else _NUM_MARK + str(Decimal(str(v)))
        elif k in STRING_NUMBER_FIELDS:
            out[k] = "" if v is None else str(v)
        else:
            out[k] = v
    return out


def _dumps(obj) -> bytes:
    """JSON with the float fields as bare numbers, written from their exact decimal text."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return re.sub(r'"\\u0000num:([-+0-9.Ee]+)"', r"\1", text).encode("utf-8")


class _BSSHandler(SignedHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if body and "form" in (self.headers.get("Content-Type") or ""):
            form = parse_qsl(body.decode(), keep_blank_values=True)
        else:
            form = []
        raw = dict(pairs + form)
        action = self.headers.get("x-acs-action") or raw.get("Action") or ""
        srv = self.imm
        try:
            fault = srv._next_fault(action, raw)
            if fault is not None and self._fault(fault):
                return
            self._verify(url.path or "/", pairs, body)
            version = self.headers.get("x-acs-version") or raw.get("Version")
            if version != "2017-12-14":
                raise ApiError(400, "InvalidVersion", f"Specified parameter Version {version} is not valid.")
            with srv._lock:
                srv.requests.append((action, raw))
            if action != ACTION:
                raise ApiError(404, "InvalidAction.NotFound", f"Specified api {action} is not found.")
            data = _dumps(srv.describe_instance_bill(raw))
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ApiError as e:
            self._error(e.status, e.code, e.message, e.headers)


def sample_items(month: str = "2025-08", days: int = 3) -> list[dict]:
    """A few clearly synthetic daily lines (IMM ImageSplicing, OSS GET/PUT/storage, outbound traffic)."""
    out = []
    for d in range(1, days + 1):
        day = f"{month}-{d:02d}"
        out += [
            bill_item(day, "imm", "ImageSplicing", product_name="智能媒体管理", pretax_gross="0.6",
                      list_price="0.5", list_price_unit="CNY/千次", usage="1200", usage_unit="次",
                      instance_id="synthetic-project", region="cn-shanghai"),
            bill_item(day, "oss", "GetRequest", billing_item="GET类请求次数", product_name="对象存储",
                      pretax_gross="0.02", list_price="0.01", list_price_unit="CNY/万次", usage="20000",
                      usage_unit="次", instance_id="cn-shanghai;standard"),
            bill_item(day, "oss", "Storage", billing_item="标准存储（本地冗余）容量", product_name="对象存储",
                      pretax_gross="0.4", usage="2400", usage_unit="GB", instance_id="cn-shanghai;standard"),
            bill_item(day, "oss", "NetworkOut", billing_item="外网流出流量", product_name="对象存储",
                      pretax_gross="0.75", list_price="0.5", list_price_unit="CNY/GB", usage="1.5",
                      usage_unit="GB", instance_id="cn-shanghai;standard"),
        ]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A local BSS OpenAPI test server on 127.0.0.1 (synthetic bill).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--synthetic-month", metavar="YYYY-MM", default="2025-08",
                    help="bill the IMM server's synthetic month of tasks (costkit.testing.synthetic_bill)")
    ap.add_argument("--per-day", type=int, default=120, help="synthetic tasks per day (as the IMM server)")
    args = ap.parse_args(argv)
    from costkit.testing.imm_synthetic import synthetic_month_tasks
    from costkit.testing.synthetic_bill import synthetic_bill_items
    items = synthetic_bill_items(synthetic_month_tasks(args.synthetic_month, per_day=args.per_day),
                                 args.synthetic_month)
    srv = BSSServer(items, port=args.port).start()
    print(f"BSS test server on {srv.endpoint} (access key {srv.access_key_id!r}, {len(srv.items)} lines)",
          flush=True)
    srv.serve_until_interrupted()
    return 0


BSSServer.handler_class = _BSSHandler
BSSServer.thread_name = "bss-server"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
