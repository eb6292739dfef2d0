"""DescribeInstanceBill items in wire form: what the local BSS server serves and the synthetic bill writes."""
from __future__ import annotations

from decimal import Decimal


def bill_item(billing_date: str, product_code: str, billing_item_code: str, *, billing_item: str = "",
              pretax_gross: str = "0", pretax: str | None = None, invoice_discount: str = "0",
              coupons: str = "0", resource_package: str = "0", list_price: str = "", list_price_unit: str = "",
              usage: str = "", usage_unit: str = "", instance_id: str = "", currency: str = "CNY",
              product_name: str = "", region: str = "", subscription_type: str = "PayAsYouGo",
              item: str = "PayAsYouGoBill", tag: str = "", **more) -> dict:
    """One DescribeInstanceBill item (wire names; amounts as decimal strings, sent as JSON numbers)."""
    if pretax is None:
        pretax = str(Decimal(pretax_gross) - Decimal(invoice_discount) - Decimal(coupons))
    d = {"BillingDate": billing_date, "ProductCode": product_code, "ProductName": product_name or product_code,
         "BillingItemCode": billing_item_code, "BillingItem": billing_item or billing_item_code,
         "PretaxGrossAmount": pretax_gross, "InvoiceDiscount": invoice_discount, "DeductedByCoupons": coupons,
         "PretaxAmount": pretax, "DeductedByResourcePackage": resource_package, "ListPrice": list_price,
         "ListPriceUnit": list_price_unit, "Usage": usage, "UsageUnit": usage_unit, "InstanceID": instance_id,
         "Currency": currency, "Region": region, "SubscriptionType": subscription_type, "Item": item, "Tag": tag,
         "DeductedByCashCoupons": "0", "DeductedByPrepaidCard": "0", "CashAmount": pretax, "PaymentAmount": pretax,
         "OutstandingAmount": "0", "AdjustAmount": "0"}
    d.update(more)
    return d
