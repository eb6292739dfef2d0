"""The audit anchored to the invoice: the bill's payable total for the month split into the splicing share and
the rest, and ImageSplicing billed against expected per project where the bill's lines name one.

Money is exact until a figure is rounded half-up to cents (costkit.core.money); every split adds up exactly.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.audit.figures import money_text, qty_text
from costkit.audit.sides import SPLICE
from costkit.core.money import ZERO, round_money


def _exact_sum(values) -> Fraction:
    return sum((Fraction(v) for v in values if v is not None and v == v), Fraction(0))


def invoice(frame, figures: dict) -> dict:
    """The month's payable total (net of every line of the audited bill import, mapped or not, summed exactly
    and rounded once), its splicing share (billed attributable to splicing, the KPI) and the rest: other use
    of the same buckets (not splicing), lines costkit does not map to an item, and the rounding between the
    whole bill and its rounded day x item lines. Money as 2-place text in the bill's currency."""
    payable = round_money(_exact_sum(frame["net_amount"]))
    unmapped = round_money(_exact_sum(frame[~frame["mapped"]]["net_amount"]))
    share = Decimal(figures["billed_attributable"])
    not_splicing = Decimal(figures["not_splicing"])
    rest = payable - share
    return {"payable": str(payable), "splicing_share": str(share), "rest": str(rest),
            "rest_parts": {"not_splicing": str(not_splicing), "unmapped": str(unmapped),
                           "rounding": str(rest - not_splicing - unmapped)},
            "lines": len(frame), "rule": "payable = the sum of the audited bill's line nets (all lines, mapped "
                                         "or not), rounded once"}


def projects(frame, report_by_project: dict, items: list[dict]) -> dict:
    """ImageSplicing billed against expected per project: the bill's ImageSplicing lines grouped by their
    InstanceID (which names the IMM project), against the engine's expected cost per project. `named` is
    False when no line names a project of the store (then the rows show the bill's instances only).
    Amounts are rounded once per project, so their sum may differ by cents from the item's sum of day lines
    (`difference` says by how much)."""
    splice = frame[frame["mapped"] & (frame["item"] == SPLICE)]
    billed: dict = {}
    for r in splice.to_dict("records"):
        key = str(r.get("instance_id") or "").strip() or "(no instance)"
        b = billed.setdefault(key, {"net": Fraction(0), "calls": Fraction(0)})
        b["net"] += Fraction(r["net_amount"]) if r["net_amount"] is not None else 0
        b["calls"] += Fraction(r["quantity"]) if r["quantity"] is not None else 0
    expected = {g["group"]: g for g in report_by_project.get("groups", [])
                if Decimal(g["items"].get(SPLICE, "0")) or Decimal(g["quantities"].get(SPLICE, "0"))}
    rows = []
    for name in sorted(set(billed) | set(expected)):
        b, e = billed.get(name), expected.get(name)
        bn = round_money(b["net"]) if b else None
        en = Decimal(e["items"][SPLICE]) if e else None
        rows.append({"project": name, "billed_quantity": qty_text(b["calls"]) if b else None,
                     "expected_quantity": e["quantities"][SPLICE] if e else None,
                     "billed_net": None if bn is None else str(bn), "expected": None if en is None else str(en),
                     "variance": str((bn or ZERO) - (en or ZERO)),
                     "note": None if b and e else ("no bill line names it" if e else "no project of that name "
                                                   "in the store")})
    item = next((r for r in items if r["item"] == SPLICE), None)
    total_b = sum((Decimal(r["billed_net"]) for r in rows if r["billed_net"] is not None), ZERO)
    total_e = sum((Decimal(r["expected"]) for r in rows if r["expected"] is not None), ZERO)
    return {"named": bool(set(billed) & set(expected)), "rows": rows, "billed_net": str(total_b),
            "expected": str(total_e), "variance": str(total_b - total_e),
            "difference": None if item is None else {
                "billed_net": money_text(total_b - Decimal(item["billed_net"])),
                "expected": money_text(total_e - Decimal(item["expected"]))}}


def reader_parts(store, period, frame, figures: dict, items: list[dict], settings, prices_file) -> dict:
    """The invoice anchor and the per-project rows of the audit model (see invoice and projects)."""
    from costkit.engine.history import price_history

    rep = price_history(store, period, by="project", settings=settings, prices_file=prices_file)
    return {"invoice": invoice(frame, figures), "projects": projects(frame, rep, items)}


def oss_daily(day_rows: list[dict], days: list) -> list[dict]:
    """Whole-bucket OSS cost per billing day (all `oss.*` items): the billed net of the whole lines, the part
    attributable to splicing (expected + claimed variance) and the rest (not claimed); 2-place text."""
    out = []
    for d in days:
        key = d.isoformat()
        rows = [r for r in day_rows if r["day"] == key and r["item"].startswith("oss.")]
        net = sum((Decimal(r["billed_net"]) for r in rows), ZERO)
        share = sum((Decimal(r["expected"]) + Decimal(r["variance"]) for r in rows), ZERO)
        out.append({"day": key, "billed_net": str(net), "splicing_share": str(share), "not_splicing": str(net - share)})
    return out
