"""Bill lines from the BSS OpenAPI (DescribeInstanceBill, 2017-12-14): the client, retries, paging.

The API's float fields (PretaxGrossAmount, InvoiceDiscount, ...) are converted through `repr`, i.e. the
shortest decimal text that round-trips the wire value, never through float arithmetic (`records.parse_amount`).
A page that cannot be read raises RuntimeFailure, so a partial month is never returned.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from costkit.core.errors import BadInput, CostkitError, RuntimeFailure, one_line
from costkit.core.timeutil import parse_month
from costkit.sources.bills.records import (
    CANONICAL_FIELDS, NUMERIC_FIELDS, BillLine, ParsedBill, complete_line, norm_currency, parse_amount,
    parse_billing_date, parse_cycle,
)
from costkit.sources.bills.units import split_price_unit
from costkit.sources.credentials import tea_config_kwargs

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

    from costkit.sources.endpoint import parse_endpoint

    host, protocol = parse_endpoint(endpoint or default_bss_endpoint(region), region)
    kw = dict(endpoint=host, protocol=protocol, region_id=region, connect_timeout=5_000, read_timeout=60_000)
    kw.update(tea_config_kwargs(credentials))
    return Client(Config(**kw))


def _call(what: str, fn, retry: BillRetry, sleep):
    from alibabacloud_credentials.exceptions import CredentialException

    from costkit.sources.retry import classify as _classify, describe as _describe

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
    return ParsedBill("api", origin, lines, account_id=account_id, account_name=account_name,
                      scope_products=tuple(product_codes), scope_months=(month,))


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
            values["Currency"] = split_price_unit(values["ListPriceUnit"])[0]
        if values.get("BillAccountID") is None and account_id:
            values["BillAccountID"] = str(account_id)
        if values.get("BillAccountName") is None and account_name:
            values["BillAccountName"] = str(account_name)
        try:
            complete_line(values, path=origin, line=None, want_month=month, currency=None, language=None)
        except BadInput as e:
            raise RuntimeFailure(f"DescribeInstanceBill item {n}: {e}") from None
        raw = {k: (repr(v) if isinstance(v, float) else v) for k, v in it.items()}
        out.append(BillLine(n, values, raw))
    return out
