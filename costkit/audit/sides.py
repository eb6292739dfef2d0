"""The audit's two sides, per UTC+8 day x item: expected (the cost engine's priced history) and billed (the
month's bill lines mapped to items), held exactly in one `Line` each."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.audit.days import day_bounds
from costkit.audit.figures import qty_text
from costkit.core.catalog import ITEM_KEYS
from costkit.core.money import ZERO

SPLICE = "imm.ImageSplicing"


class Line:
    """One day x item: exact figures and the causes (exact Fractions)."""

    def __init__(self, day: str, item: str):
        self.day, self.item = day, item
        self.qb = Fraction(0)
        self.qe = Fraction(0)
        self.has_bill = False
        self.gross = Fraction(0)
        self.disc = Fraction(0)
        self.coup = Fraction(0)
        self.vouch = Fraction(0)         # vouchers (代金券)
        self.saving = Fraction(0)        # savings plan (节省计划)
        self.other = Fraction(0)         # gross - stated deductions - payable
        self.plan = Fraction(0)          # DeductedByResourcePackage as stated (a quantity, shown only)
        self.qp = Fraction(0)            # usage covered by a resource plan, base unit
        self.qp_free = Fraction(0)       # ... of it left out of the gross amount (not charged at all)
        self.plan_money = Fraction(0)    # ... else the money the plan took off (part of gross - deductions - payable)
        self.payable = Fraction(0)       # the lines' net (payable amount, or the fallback formula)
        self.expected = ZERO
        self.price_term = Fraction(0)
        self.pr_weighted = Fraction(0)   # sum of Qb_i x Pr_i
        self.pr = None                   # reference (book) price per base unit
        self.list_prices = set()
        self.line_nos = []
        self.counts: dict = {}           # count causes (ImageSplicing): name -> count
        self.causes: dict = {}           # name -> Decimal (rounded)

    @property
    def net(self):
        """The billed net: the sum of the lines' payable amounts (never minus the plan quantity)."""
        return self.payable


def expected_lines(report: dict) -> dict:
    """{(day, item): Line} with the expected side of a `price_history(by="day")` report: quantity in the
    item's base unit and the amount (rounded to cents by the engine)."""
    lines: dict = {}
    for g in report["groups"]:
        for item in ITEM_KEYS:
            amount = Decimal(g["items"][item])
            qty = Fraction(Decimal(g["quantities"][item]))
            if amount or qty:
                ln = lines.setdefault((g["group"], item), Line(g["group"], item))
                ln.expected = amount
                ln.qe = qty
    return lines


def drop_not_audited(lines: dict, frame, month: str, currency: str, warnings: list) -> list[dict]:
    """Remove (and return, summed per item) the expected lines of products the bill does not contain at all
    (fetched with --product-code, say): they cannot be audited. Appends a warning for each."""
    present = {str(x).strip().lower() for x in frame["product_code"] if x} | \
        {i.split(".")[0] for i in frame.loc[frame["mapped"], "item"] if i}
    not_audited: dict = {}
    for key in [k for k in lines if k[1].split(".")[0] not in present]:
        ln = lines.pop(key)
        na = not_audited.setdefault(ln.item, {"item": ln.item, "expected": ZERO, "expected_quantity": Fraction(0)})
        na["expected"] += ln.expected
        na["expected_quantity"] += ln.qe
    for na in not_audited.values():
        na["expected"], na["expected_quantity"] = str(na["expected"]), qty_text(na["expected_quantity"])
        na["reason"] = f"the {month} bill has no {na['item'].split('.')[0]} lines at all"
        warnings.append(f"Not audited: {na['item']} (expected {na['expected']} {currency}): {na['reason']} "
                        "(was it fetched or exported for one product only?).")
    return list(not_audited.values())


def _reference_price(book, item, selectors, day, imm_start):
    """The book price per base unit in force on `day` (for ImageSplicing: from the cutover on), or None."""
    s, e = day_bounds(day)
    at = s
    if item == SPLICE:
        at = max(s, imm_start) if e > imm_start else imm_start
    entry, _ = book.resolve(item, selectors, at)
    return None if entry is None or entry.price is None else entry.per_base_unit()


def plan_split(q, qp, gross, pb, other) -> tuple:
    """(plan-covered usage left out of the gross amount, money the plan took off) of one bill line.

    A bill may leave the usage a resource plan covered out of its gross amount (gross = (usage - covered) x
    price), or charge it in gross and take it off again (then it is part of gross - stated deductions -
    payable, up to covered x price). Whichever the gross amount is closer to is taken."""
    if not qp or pb is None:
        return Fraction(0), Fraction(0)
    if abs(gross - (q - qp) * pb) <= abs(gross - q * pb):
        return qp, Fraction(0)
    return Fraction(0), max(Fraction(0), min(other, qp * pb))


def add_billed(frame, lines: dict, book, imm_start) -> None:
    """Add the mapped bill lines of `frame` to `lines` (creating day x item lines the engine did not price):
    quantity, gross and the three deductions, the bill's list prices and the price term Qb x (Pb - Pr)."""
    from costkit.prices.learn import line_price
    from costkit.sources.bills.records import decimal_text

    mapped = frame[frame["mapped"]] if len(frame) else frame
    for rec in mapped.to_dict("records"):
        day = rec["billing_date"]
        key = (day.isoformat(), rec["item"])
        ln = lines.get(key) or lines.setdefault(key, Line(*key))
        ln.has_bill = True
        q = Fraction(rec["quantity"]) if rec.get("quantity") is not None else Fraction(0)
        gross = rec.get("pretax_gross_amount")
        if gross is None:
            gross = rec.get("pretax_amount") or Decimal(0)
        ln.qb += q
        ln.gross += Fraction(gross)
        ln.disc += Fraction(rec.get("invoice_discount") or 0)
        ln.coup += Fraction(rec.get("deducted_by_coupons") or 0)
        ln.vouch += Fraction(rec.get("deducted_by_cash_coupons") or 0)
        ln.saving += Fraction(rec.get("deducted_by_savings_plan") or 0)
        ln.payable += Fraction(rec.get("net_amount") or 0)
        ln.plan += Fraction(rec.get("deducted_by_resource_package") or 0)
        qp = Fraction(rec["plan_quantity"]) if rec.get("plan_quantity") is not None else Fraction(0)
        ln.qp += qp
        ln.line_nos.append(int(rec["line_no"]))
        if rec.get("list_price") is not None:
            ln.list_prices.add(f"{decimal_text(rec['list_price'])} {rec.get('list_price_unit') or ''}".strip())
        pb, _how = line_price(rec)
        qp_free, plan_money = plan_split(q, qp, Fraction(gross), pb, Fraction(rec.get("other_deduction") or 0))
        ln.qp_free += qp_free
        ln.plan_money += plan_money
        ln.other += Fraction(rec.get("other_deduction") or 0) - plan_money
        pr = _reference_price(book, rec["item"], rec.get("selectors") or {}, day, imm_start)
        if pr is None:
            pr = pb
        if pb is not None and pr is not None:
            ln.price_term += (q - qp_free) * (pb - pr)     # usage left out of gross is not priced
        if pr is not None:
            ln.pr_weighted += q * pr
            if ln.pr is None:
                ln.pr = pr
