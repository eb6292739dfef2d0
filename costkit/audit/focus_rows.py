"""The rows of the month's charges export (`costkit export`), gathered from the store: the billed side from the
stored bill lines (`costkit.billmap`), the expected side from the cost engine's charge lines summed in DuckDB
(at the bill's price when the book has none). Rows are dicts keyed by the export's column names
(costkit/data/focus-columns.yaml); costkit.outputs.focus builds the frames and writes them.

Decimal values are `decimal.Decimal`, instants aware UTC datetimes.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pandas as pd

from costkit.core.timeutil import SHANGHAI
from costkit.sources.bills.records import month_days

UTC = timezone.utc
PROVIDER = "Alibaba Cloud"
SERVICE = {"oss": ("Object Storage Service", "Storage"), "imm": ("Intelligent Media Management", "Media")}
# costkit item family -> FOCUS 1.2 ServiceSubcategory
SUBCATEGORY = {"imm": "Other (Media)", "oss": "Object Storage"}
CHARGE_CATEGORY = {"payasyougobill": "Usage", "subscriptionorder": "Purchase", "refund": "Credit",
                   "adjustment": "Adjustment"}


def _tags(text) -> str | None:
    """A bill line's tag text (`k:v; k2:v2`) as FOCUS Tags JSON (keys sorted), or None."""
    if not text:
        return None
    out = {}
    for part in str(text).split(";"):
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition(":")
        out[k.strip()] = v.strip() if sep else ""
    return json.dumps(out, ensure_ascii=False, sort_keys=True) if out else None


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def _nz(v) -> Decimal:
    return v if v is not None else Decimal(0)


# costkit base unit -> (FOCUS pricing unit, base units per pricing unit, FOCUS consumed unit)
PRICING_UNITS = {"calls": ("1000 Calls", 1000, "Calls"), "requests": ("10000 Requests", 10000, "Requests"),
                 "GB": ("GB", 1, "GB"), "GB-hour": ("GB-Hours", 1, "GB-Hours")}


def _pricing(r: dict) -> tuple:
    """(PricingQuantity, PricingUnit, ListUnitPrice, ConsumedQuantity, ConsumedUnit) of a mapped line whose
    quantity is known, in costkit's units; for other lines the bill's Usage/UsageUnit, with ListPrice only
    when its ListPriceUnit is per that usage unit."""
    from costkit.sources.bills.units import split_price_unit, to_decimal
    from costkit.prices.learn import line_price

    if r.get("mapped") and r.get("quantity") is not None and r.get("quantity_unit") in PRICING_UNITS:
        unit, per, consumed = PRICING_UNITS[r["quantity_unit"]]
        q = r["quantity"]
        price = None
        per_base, _how = line_price(r)
        if per_base is not None and r.get("list_price") is not None and _how.startswith("ListPrice"):
            price = to_decimal(per_base * per)
        return to_decimal(Fraction(q) / per), unit, price, q, consumed
    cur, qunit = split_price_unit(r.get("list_price_unit"))
    same = qunit is None or (r.get("usage_unit") and qunit.strip() == str(r.get("usage_unit")).strip())
    price = r.get("list_price") if same and (cur is None or cur == r.get("currency")) else None
    return r.get("usage"), r.get("usage_unit"), price, r.get("usage"), r.get("usage_unit")


def billed_rows(frame: pd.DataFrame, month: str, *, account_id=None, account_name=None) -> list[dict]:
    """FOCUS rows (dicts) for a `costkit.billmap.map_lines` frame."""
    from costkit.sources.bills.mapping import instance_facts

    first, nxt = month_days(month)
    p_start = _utc(datetime(first.year, first.month, 1, tzinfo=SHANGHAI))
    p_end = _utc(datetime(nxt.year, nxt.month, 1, tzinfo=SHANGHAI))
    rows = []
    for r in frame.to_dict("records"):
        gross, pretax = r.get("pretax_gross_amount"), r.get("pretax_amount")
        disc, coup, pkg = r.get("invoice_discount"), r.get("deducted_by_coupons"), r.get("deducted_by_resource_package")
        list_cost = gross if gross is not None else pretax
        billed = r["net_amount"]        # payable (PretaxAmount), else gross - discount - coupons
        contracted = list_cost - _nz(disc)
        net = billed
        code = (r.get("product_code") or "").strip().lower()
        svc_name, svc_cat = SERVICE.get(code, (None, "Other"))
        product = r.get("product_name") or r.get("product_code")
        acct = r.get("bill_account_id") or r.get("owner_id") or account_id or "unknown"
        acct_name = r.get("bill_account_name") or account_name or acct
        sub = r.get("owner_id") if r.get("bill_account_id") else None
        category = CHARGE_CATEGORY.get(str(r.get("item_type") or "").replace(" ", "").lower(), "Usage")
        region = r.get("region") or instance_facts(r.get("instance_id"))[0]
        sku = (f"{r.get('product_code')}:{r.get('billing_item_code')}" if r.get("billing_item_code") and
               r.get("product_code") else r.get("billing_item_code") or r.get("commodity_code"))
        p_qty, p_unit, unit_price, c_qty, c_unit = _pricing(r)
        rows.append({
            "BilledCost": billed, "BillingAccountId": str(acct), "BillingAccountName": str(acct_name),
            "BillingCurrency": r["currency"], "BillingPeriodStart": p_start, "BillingPeriodEnd": p_end,
            "ChargeCategory": category, "ChargeClass": None,
            "ChargeDescription": " ".join(x for x in (product, r.get("billing_item") or r.get("billing_item_code"))
                                          if x) or None,
            "ChargePeriodStart": _utc(r["day_start"]), "ChargePeriodEnd": _utc(r["day_end"]),
            "ContractedCost": contracted, "EffectiveCost": net, "InvoiceIssuerName": PROVIDER,
            "ListCost": list_cost, "PricingQuantity": p_qty, "PricingUnit": p_unit,
            "ProviderName": PROVIDER, "PublisherName": PROVIDER, "ServiceCategory": svc_cat,
            "ServiceName": svc_name or product or "unknown",
            "ConsumedQuantity": c_qty, "ConsumedUnit": c_unit,
            "ListUnitPrice": unit_price, "RegionId": region, "ResourceId": r.get("instance_id"),
            "SkuId": sku, "Tags": _tags(r.get("tag")),
            "ChargeFrequency": "Usage-Based" if category == "Usage" else "One-Time",
            "InvoiceId": r.get("invoice_id"), "ServiceSubcategory": SUBCATEGORY.get(code),
            "SubAccountId": sub, "SubAccountName": (r.get("owner_account_name") or sub) if sub else None,
            "x_costkit_source": "billed", "x_costkit_item": r.get("item"),
            "x_costkit_storage_class": r.get("storage_class"), "x_costkit_redundancy": r.get("redundancy"),
            "x_costkit_billing_date": r["billing_date"].isoformat(), "x_costkit_billing_item": r.get("billing_item"),
            "x_costkit_billing_item_code": r.get("billing_item_code"),
            "x_costkit_usage": r.get("usage"), "x_costkit_usage_unit": r.get("usage_unit"),
            "x_costkit_list_price": r.get("list_price"), "x_costkit_list_price_unit": r.get("list_price_unit"),
            "x_costkit_invoice_discount": disc,
            "x_costkit_deducted_by_coupons": coup, "x_costkit_deducted_by_resource_package": pkg,
            "x_costkit_deducted_by_cash_coupons": r.get("deducted_by_cash_coupons"),
            "x_costkit_deducted_by_savings_plan": r.get("deducted_by_savings_plan"),
            "x_costkit_other_deduction": r.get("other_deduction"),
            "x_costkit_net_cost": net, "x_costkit_amount_rule": r.get("amount_rule"), "x_costkit_exact_cost": billed,
            "x_costkit_bill_source": f"{r['source']} {r.get('origin') or ''}".strip(),
            "x_costkit_bill_line": int(r["line_no"]),
        })
    return rows


def billed_focus_rows(store, month: str, *, source: str | None = None, mapping=None, account=None) -> list[dict]:
    """FOCUS rows of the billed side for `month`: one per stored bill line (mapped or not), the account of
    the import used."""
    from costkit.store.bills import bill_sources
    from costkit.store.bills import mapped_bill_lines

    frame = mapped_bill_lines(store, month, source=source, mapping=mapping, account=account)
    acct = name = None
    if not frame.empty:
        srcs = bill_sources(store, month)
        hit = srcs[srcs["id"] == frame["import_id"].iloc[0]]
        if len(hit):
            acct, name = hit.iloc[0]["account_id"], hit.iloc[0]["account_name"]
    return billed_rows(frame, month, account_id=acct, account_name=name)


def expected_rows(store, month: str, *, settings=None, prices_file=None, account_id=None,
                  account_name=None) -> tuple[list[dict], list[str]]:
    """FOCUS rows for the charges the cost engine prices for `month`: the charge lines
    (costkit.history_cost) summed in DuckDB per UTC+8 day x item x storage class x redundancy x project x
    tags x price, so the export has one row per group, not per task. Returns (rows, warnings)."""
    from costkit.audit.bill_price import with_bill_price
    from costkit.core.catalog import ITEMS, UNITS
    from costkit.engine.context import _context
    from costkit.engine.lines import _lines_query
    from costkit.engine.period import parse_period
    from costkit.model.settings import load_settings
    from costkit.store.bills import mapped_bill_lines
    from costkit.sources.bills.units import to_decimal

    period = parse_period(month)
    settings = settings or load_settings(None)
    warnings: list[str] = []
    with store._lock:
        finished = store._con.execute("SELECT count(*) FROM tasks WHERE status IN ('Succeeded', 'Failed') AND "
                                      "end_time < ?", [period.end]).fetchone()[0]
    if not finished:
        return [], warnings
    settings, book, model, _ = _context(store, period, settings, prices_file)
    settings = with_bill_price(settings, mapped_bill_lines(store, month), period, model, book, month, warnings)
    with store._lock:
        sql, params = _lines_query(store, period, settings, prices_file, hour_as_text=False, selectors=True)
        grouped = f"""
            WITH l AS ({sql}), tk AS (
                SELECT project, task_id, any_value(region) AS region, any_value(tags) AS tags
                FROM tasks GROUP BY project, task_id
            )
            SELECT strftime(DATE '1970-01-01' + CAST((epoch(l.hour)::BIGINT // 3600 + 8) // 24 AS INTEGER), '%Y-%m-%d') AS day, l.item, l.storage_class,
                   l.redundancy, l.project, tk.region, tk.tags, l.unit, l.unit_price, l.currency, l.price_source,
                   sum(l.quantity) AS quantity, sum(l.amount) AS amount
            FROM l LEFT JOIN tk ON tk.project = l.project AND tk.task_id = l.task_id
            GROUP BY ALL ORDER BY day, l.item, l.storage_class, l.redundancy, l.project, tk.tags, l.unit_price"""
        rows = store._con.execute(grouped, params).fetchall()
    first, nxt = month_days(month)
    p_start = _utc(datetime(first.year, first.month, 1, tzinfo=SHANGHAI))
    p_end = _utc(datetime(nxt.year, nxt.month, 1, tzinfo=SHANGHAI))
    if account_id is None:
        account_id, account_name = _month_account(store, month)
    acct = account_id or "unknown"
    cents = _row_cents(store, period, settings, prices_file, rows)
    out = []
    for n, (day, item, cls, red, project, region, tags, unit, price, currency, src, qty, amount) in enumerate(rows):
        base_unit = ITEMS[item][0]
        p_unit, per, c_unit = PRICING_UNITS[base_unit]
        base_qty = Fraction(qty) * UNITS[unit][1]
        per_base = Fraction(price) / UNITS[unit][1]
        d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
        sel = {k: v for k, v in (("storage_class", cls), ("redundancy", red)) if v is not None}
        code = _book_code(book, item, sel, d)
        product = item.split(".")[0]
        svc_name, svc_cat = SERVICE.get(product, (None, "Other"))
        amount = _strip(amount)
        out.append({
            "BilledCost": cents[n], "BillingAccountId": str(acct),
            "BillingAccountName": str(account_name or acct), "BillingCurrency": currency,
            "BillingPeriodStart": p_start, "BillingPeriodEnd": p_end, "ChargeCategory": "Usage", "ChargeClass": None,
            "ChargeDescription": ITEMS[item][2], "ChargePeriodStart": _utc(d),
            "ChargePeriodEnd": _utc(d + timedelta(days=1)), "ContractedCost": amount, "EffectiveCost": amount,
            "InvoiceIssuerName": PROVIDER, "ListCost": amount, "PricingQuantity": to_decimal(base_qty / per),
            "PricingUnit": p_unit, "ProviderName": PROVIDER, "PublisherName": PROVIDER, "ServiceCategory": svc_cat,
            "ServiceName": svc_name or product, "ConsumedQuantity": to_decimal(base_qty), "ConsumedUnit": c_unit,
            "ListUnitPrice": to_decimal(per_base * per), "RegionId": region, "ResourceId": project,
            "SkuId": f"{product}:{code}" if code else None, "Tags": _task_tags(tags),
            "ChargeFrequency": "Usage-Based", "InvoiceId": None, "ServiceSubcategory": SUBCATEGORY.get(product),
            "SubAccountId": None, "SubAccountName": None,
            "x_costkit_source": "expected", "x_costkit_item": item, "x_costkit_storage_class": cls,
            "x_costkit_redundancy": red, "x_costkit_billing_date": day, "x_costkit_billing_item": None,
            "x_costkit_billing_item_code": code, "x_costkit_usage": None, "x_costkit_usage_unit": None,
            "x_costkit_list_price": _strip(price), "x_costkit_list_price_unit": unit,
            "x_costkit_invoice_discount": None, "x_costkit_deducted_by_coupons": None,
            "x_costkit_deducted_by_resource_package": None, "x_costkit_net_cost": amount,
            "x_costkit_exact_cost": amount,
            "x_costkit_bill_source": None, "x_costkit_bill_line": None,
            "_price_source": src,
        })
    return out, warnings


def _row_cents(store, period, settings, prices_file, rows) -> list:
    """Each expected row's BilledCost: its share, by largest remainder of the rows' exact amounts, of the
    engine's day x item line (costkit.engine.rounding), so the rows add up to the cost report exactly."""
    from costkit.engine.history import price_history
    from costkit.engine.rounding import allocate_cents

    report = price_history(store, period, by="day", settings=settings, prices_file=prices_file)
    lines = {(g["group"], item): Decimal(v) for g in report["groups"] for item, v in g["items"].items()}
    parts: dict = {}
    for n, r in enumerate(rows):
        parts.setdefault((r[0], r[1]), {})[n] = Fraction(r[-1])
    out = [None] * len(rows)
    for key, p in parts.items():
        for n, c in allocate_cents(lines.get(key, Decimal(0)), p).items():
            out[n] = c
    return out


def _book_code(book, item: str, selectors: dict, instant) -> str | None:
    """The billing-item code of the price entry in force, else of any layer's entry for the same item and
    selectors (a user overlay may leave `code` out)."""
    entry, _ = book.resolve(item, selectors, instant)
    if entry is not None and entry.code:
        return entry.code
    for _, entries in reversed(book.layers):
        for e in entries:
            if e.item == item and e.code and e.matches(selectors):
                return e.code
    return None


def _strip(d: Decimal) -> Decimal:
    n = d.normalize()
    return n.quantize(Decimal(1)) if n == n.to_integral() else n


def _task_tags(text) -> str | None:
    if not text:
        return None
    tags = json.loads(text) if isinstance(text, str) else dict(text)
    return json.dumps(tags, ensure_ascii=False, sort_keys=True) if tags else None


def _month_account(store, month: str) -> tuple:
    """(account id, account name) of the month's latest bill import, else (None, None)."""
    from costkit.store.bills import bill_sources
    srcs = bill_sources(store, month)
    if len(srcs):
        return srcs.iloc[0]["account_id"], srcs.iloc[0]["account_name"]
    return None, None


def costkit_billed_lines(store, month: str, *, source=None, mapping=None, account=None) -> pd.DataFrame:
    """The month's mapped bill lines (`costkit.store.bills.mapped_bill_lines`) in costkit's own export schema: billing
    date as text, day bounds in UTC, `x_costkit_source = "billed"`, no project or tags (a bill line has none)."""
    from costkit.store.bills import mapped_bill_lines

    frame = mapped_bill_lines(store, month, source=source, mapping=mapping, account=account)
    frame = frame.copy()
    frame["x_costkit_source"] = "billed"
    frame["billing_date"] = [d.isoformat() for d in frame["billing_date"]]
    for c in ("day_start", "day_end"):
        frame[c] = pd.to_datetime(pd.Series([_utc(v) for v in frame[c]], dtype=object), utc=True)
    for c in ("project", "tags"):
        frame[c] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def costkit_expected_rows(rows: list[dict], month: str) -> list[dict]:
    """costkit-schema rows (dicts) from `expected_rows`: one per day x item x class x redundancy x project x
    tags."""
    from costkit.core.catalog import ITEMS
    out = []
    for r in rows:
        item = r["x_costkit_item"]
        out.append({
            "source": None, "month": month, "billing_date": r["x_costkit_billing_date"], "line_no": None,
            "product_code": item.split(".")[0], "product_name": r["ServiceName"],
            "billing_item_code": r["x_costkit_billing_item_code"], "billing_item": None, "instance_id": None,
            "region": r["RegionId"], "item": item, "storage_class": r["x_costkit_storage_class"],
            "redundancy": r["x_costkit_redundancy"], "usage": None, "usage_unit": None,
            "quantity": r["ConsumedQuantity"], "quantity_unit": ITEMS[item][0],
            "list_price": r["x_costkit_list_price"], "list_price_unit": r["x_costkit_list_price_unit"],
            "pretax_gross_amount": r["ListCost"], "invoice_discount": None, "deducted_by_coupons": None,
            "deducted_by_resource_package": None, "pretax_amount": r["ListCost"], "net_amount": r["ListCost"],
            "currency": r["BillingCurrency"], "day_start": r["ChargePeriodStart"], "day_end": r["ChargePeriodEnd"],
            "x_costkit_source": "expected", "note": f"priced by costkit: {r['_price_source']}",
            "project": r["ResourceId"], "tags": r["Tags"]})
    return out


