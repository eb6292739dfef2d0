"""`costkit prices learn`: unit prices from stored bill lines, as a user price overlay (price-book schema).

For each mapped line (see costkit.billmap) the price per base unit (call, request, GB, GB-hour) is:

1. ListPrice per ListPriceUnit (`CNY/万次`, `CNY/GB`, `元/GB/小时`, or a bare currency = per UsageUnit);
2. otherwise PretaxGrossAmount ÷ Usage (in the item's base unit).

A storage line's data unit (GB) counts as GB-hours: Usage sums the hourly bills (1 GB all day = 24 GB). The
price is written in the item's book unit (`1000 calls`, `10000 requests`, `GB`, `GB-month` = 720 GB-hours),
exact where the decimal terminates, else rounded half-up to `PLACES` decimals (the entry's note says so).

Entries start at the first billing day of the month, 00:00+08:00, or later at a price boundary of the
bundled book inside the month (so a learnt ImageSplicing price never reaches back over the free period that
ended 2025-07-28 11:00+08:00). Days with a different price start a new entry; the last one is open-ended.
`oss.EarlyDeletion` lines are not learnt (the book prices them at the storage price).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

from costkit.sources.bills.records import month_days
from costkit.sources.bills.units import item_quantity_factor, parse_unit, split_price_unit, to_decimal
from costkit.store.bills import bill_sources, mapped_bill_lines
from costkit.core.errors import BadInput
from costkit.prices.book import ITEMS, PRICE_ALIAS, UNITS, load_price_book
from costkit.core.timeutil import SHANGHAI

PLACES = 12
BOOK_UNIT = {"calls": "1000 calls", "requests": "10000 requests", "GB": "GB", "GB-hour": "GB-month"}
SITE_OF = {"CNY": "cn", "USD": "intl"}


@dataclass
class Learnt:
    item: str
    selectors: dict
    code: str | None
    day: object
    per_base: Fraction
    method: str
    ref: str
    quantity: Decimal | None


@dataclass
class LearnResult:
    month: str
    site: str
    currency: str
    source: str
    origin: str
    entries: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def yaml_text(self) -> str:
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        out = [
            "# Prices learnt from bill lines by `costkit prices learn`. Review before use.",
            f"# Bill: {self.origin} [{self.source}], month {self.month} (billing days UTC+8); written {now}.",
            "# Use it with --prices FILE; check it with `costkit prices check FILE`.",
            f"book: learned-{self.month}",
            f"version: {json.dumps(self.month)}",
            f"site: {self.site}",
            f"currency: {self.currency}",
            f"description: {json.dumps(f'unit prices learnt from the {self.month} bill ({self.source})', ensure_ascii=False)}",
        ]
        if not self.entries:
            out.append("entries: []")
        else:
            out.append("entries:")
        for e in self.entries:
            out.append(f"  - item: {e['item']}")
            if e.get("code"):
                out.append(f"    code: {json.dumps(e['code'], ensure_ascii=False)}")
            if e.get("selectors"):
                sel = ", ".join(f"{k}: {v}" for k, v in sorted(e["selectors"].items()))
                out.append(f"    selectors: {{{sel}}}")
            out.append(f"    unit: {e['unit']}")
            out.append(f"    price: {json.dumps(e['price'])}")
            out.append(f"    currency: {e['currency']}")
            out.append(f"    effective_from: {json.dumps(e['effective_from'])}")
            out.append(f"    effective_to: {json.dumps(e['effective_to']) if e['effective_to'] else 'null'}")
            out.append("    confidence: bill")
            out.append(f"    source: {json.dumps(e['source'], ensure_ascii=False)}")
            if e.get("note"):
                out.append(f"    note: {json.dumps(e['note'], ensure_ascii=False)}")
        return "\n".join(out) + "\n"


def _fmt_price(f: Fraction) -> tuple[str, bool]:
    d = to_decimal(f, PLACES)
    exact = Fraction(d) == f
    text = format(d, "f")
    return text, exact


def line_price(rec: dict) -> tuple[Fraction | None, str]:
    """(price per base unit of the line's item, how it was derived or why not)."""
    item = rec["item"]
    lp, lpu = rec.get("list_price"), rec.get("list_price_unit")
    if lp is not None:
        cur, qunit = split_price_unit(lpu)
        if cur is not None and cur != rec.get("currency"):
            return None, f"ListPriceUnit {lpu!r} is not in the bill's currency {rec.get('currency')}"
        if qunit is None:
            factor, note = item_quantity_factor(item, rec.get("usage_unit"))
            unit_text = rec.get("usage_unit") or "unit"
        else:
            factor, note = item_quantity_factor(item, qunit)
            unit_text = qunit
        if factor:
            return Fraction(lp) / factor, f"ListPrice {lp} {cur or rec.get('currency')}/{unit_text}"
        list_note = f"ListPriceUnit {lpu!r}: {note}"
    else:
        list_note = "no ListPrice"
    gross, qty = rec.get("pretax_gross_amount"), rec.get("quantity")
    if gross is not None and qty is not None and qty > 0:
        if gross == 0:
            return None, f"{list_note}; PretaxGrossAmount is 0 with usage {rec.get('usage')} (free quota or plan?)"
        return (Fraction(gross) / Fraction(qty),
                f"PretaxGrossAmount {gross} / Usage {rec.get('usage')} {rec.get('usage_unit') or ''}".rstrip())
    return None, f"{list_note}; no usage to divide the gross amount by"


def learn_prices(store, month: str, *, source: str | None = None, mapping=None,
                 account: str | None = None) -> LearnResult:
    """Derive a price overlay from the stored bill lines of `month` (see the module doc)."""
    frame = mapped_bill_lines(store, month, source=source, mapping=mapping, account=account)
    if frame.empty:
        raise BadInput(f"no bill lines stored for {month}; run `costkit import-bill` or `costkit fetch-bill` "
                       "first", field="--month")
    srcs = bill_sources(store, month)
    src_row = srcs[srcs["id"] == frame["import_id"].iloc[0]].iloc[0]
    currencies = sorted({c for c in frame["currency"] if c})
    if len(currencies) != 1 or currencies[0] not in SITE_OF:
        raise BadInput(f"bill lines of {month} are in {', '.join(currencies) or 'no currency'}; a price overlay "
                       "needs one of CNY (site cn) or USD (site intl)", field="--month")
    currency = currencies[0]
    site = SITE_OF[currency]
    result = LearnResult(month, site, currency, src_row["source"], src_row["origin"])
    book = load_price_book(site)
    first, nxt = month_days(month)
    m_start = datetime(first.year, first.month, 1, tzinfo=SHANGHAI)
    m_end = datetime(nxt.year, nxt.month, 1, tzinfo=SHANGHAI)
    learnt: dict[tuple, list[Learnt]] = {}
    where = f"{src_row['origin']} ({src_row['kind']})"
    for rec in frame.to_dict("records"):
        ref = f"line {rec['line_no']}"
        label = rec.get("billing_item_code") or rec.get("billing_item")
        if not rec["mapped"]:
            continue
        item = rec["item"]
        if item in PRICE_ALIAS:
            result.skipped.append(f"{ref} {label}: {item} is priced at the {PRICE_ALIAS[item]} price; not learnt")
            continue
        needed = ITEMS[item][1]
        if any(k not in rec["selectors"] for k in needed):
            result.skipped.append(f"{ref} {label}: {rec['note']}; not learnt (fix the mapping rule)")
            continue
        per_base, how = line_price(rec)
        if per_base is None:
            result.skipped.append(f"{ref} {label} {rec['billing_date']}: {how}")
            continue
        key = (item, tuple(sorted(rec["selectors"].items())))
        learnt.setdefault(key, []).append(Learnt(item, rec["selectors"], rec.get("billing_item_code"),
                                                 rec["billing_date"], per_base, how,
                                                 f"{ref} ({label}, {rec['billing_date']})", rec.get("quantity")))
    for (item, sel), rows in sorted(learnt.items()):
        unit = BOOK_UNIT[ITEMS[item][0]]
        per_unit = UNITS[unit][1]
        # the bundled book's last price boundary inside the month: the learnt price starts there
        bounds = [b for b in book.boundaries(item) if m_start < b < m_end]
        start = max(bounds) if bounds else m_start
        by_day: dict = {}
        for r in rows:
            if datetime(r.day.year, r.day.month, r.day.day, tzinfo=SHANGHAI).timestamp() + 86400 <= \
                    start.timestamp():
                continue
            by_day.setdefault(r.day, []).append(r)
        ranges: list[list] = []   # [start, price, rows]
        for day in sorted(by_day):
            day_rows = by_day[day]
            prices = {r.per_base for r in day_rows}
            pick = max(day_rows, key=lambda r: (r.quantity or 0))
            price = pick.per_base
            conflict = None
            if len(prices) > 1:
                conflict = (f"{day}: lines with different prices; kept the largest usage's "
                            f"({len(day_rows)} lines)")
            if ranges and ranges[-1][1] == price:
                ranges[-1][2].append(pick)
                if conflict:
                    ranges[-1][3].append(conflict)
                continue
            day_start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
            ranges.append([max(start, day_start) if not ranges else day_start, price, [pick],
                           [conflict] if conflict else []])
        if ranges:
            ranges[0][0] = start
        for i, (r_start, price, picks, conflicts) in enumerate(ranges):
            r_end = ranges[i + 1][0] if i + 1 < len(ranges) else None
            text, exact = _fmt_price(price * per_unit)
            first_pick = picks[0]
            days = sorted({p.day for p in picks})
            src = (f"bill {where}, month {month}, {first_pick.ref}: {first_pick.method}"
                   + (f"; same price on {len(days)} billing days to {days[-1]}" if len(days) > 1 else ""))
            notes = []
            if not exact:
                notes.append(f"rounded half-up to {PLACES} decimals")
            notes += conflicts
            result.entries.append({
                "item": item, "code": first_pick.code, "selectors": dict(sel), "unit": unit, "price": text,
                "currency": currency, "effective_from": r_start.isoformat(),
                "effective_to": None if r_end is None else r_end.isoformat(), "source": src,
                "note": "; ".join(notes) or None})
    return result


__all__ = ["LearnResult", "learn_prices", "line_price", "parse_unit"]
