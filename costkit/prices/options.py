"""`--price ITEM=VALUE[/UNIT]`: a quick what-if price on the command line, the highest price layer ("cli").

`imm.ImageSplicing=2.5/1000calls`, `oss.GetRequest=0.1` (unit defaults to the item's usual billing unit),
`oss.Storage[storage_class=IA,redundancy=LRS]=0.08/GB-month`. The price applies over every instant; the
entry goes through the one validator of `costkit.prices.book` (user-layer mode).
"""
from __future__ import annotations

import re

from costkit.core.errors import BadInput
from costkit.prices.book import ITEMS, PRICE_ALIAS, UNITS, PriceEntry, parse_entries

# The unit a price is usually quoted in, by usage dimension (the default unit of --price and of templates).
USUAL_UNIT = {"calls": "1000 calls", "requests": "10000 requests", "GB": "GB", "GB-hour": "GB-month"}

_OPTION = re.compile(r"^\s*(?P<item>[A-Za-z.]+)\s*(?:\[(?P<sel>[^\]]*)\])?\s*=\s*(?P<value>[^/\s]+)\s*"
                     r"(?:/\s*(?P<unit>.+?))?\s*$")


def usual_unit(item: str) -> str:
    """The unit a price of `item` is usually quoted in ("1000 calls", "10000 requests", "GB", "GB-month")."""
    return USUAL_UNIT[ITEMS[PRICE_ALIAS.get(item, item)][0]]


def _unit(text: str) -> str:
    """A unit as written on a command line ("1000calls", "gb-month") -> the book's name, or the text."""
    squeeze = re.sub(r"\s+", "", text).lower()
    for name in UNITS:
        if name.replace(" ", "").lower() == squeeze:
            return name
    return text


def parse_price_option(text: str, currency: str) -> PriceEntry:
    """One `--price` value as a PriceEntry of layer "cli" in `currency`; BadInput (exit 2) when it is not
    ITEM[SELECTORS]=VALUE[/UNIT] or fails the price-entry validation."""
    m = _OPTION.match(text or "")
    if not m:
        raise BadInput(f"expected ITEM=VALUE[/UNIT] (e.g. imm.ImageSplicing=2.5/1000calls), got {text!r}",
                       field="--price")
    item = m["item"]
    if item not in ITEMS:
        raise BadInput(f"unknown item key {item!r} (known: {', '.join(ITEMS)})", field="--price")
    selectors = {}
    for part in filter(None, (p.strip() for p in (m["sel"] or "").split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise BadInput(f"selector {part!r}: expected KEY=VALUE (e.g. storage_class=IA)", field="--price")
        selectors[key.strip()] = value.strip()
    raw = {"item": item, "unit": _unit(m["unit"]) if m["unit"] else usual_unit(item), "price": m["value"],
           "source": f"--price {text.strip()}"}
    if selectors:
        raw["selectors"] = selectors
    entries, problems = parse_entries([raw], path="--price", layer="cli", currency=currency, lenient=True)
    if problems:
        raise BadInput(problems[0])
    return entries[0]


def parse_price_options(texts, currency: str) -> list[PriceEntry]:
    """Every `--price` value (see `parse_price_option`); a later one for the same item and selectors wins."""
    out: dict = {}
    for t in texts or ():
        e = parse_price_option(t, currency)
        out[(e.item, e.selectors)] = e
    return list(out.values())


__all__ = ["USUAL_UNIT", "parse_price_option", "parse_price_options", "usual_unit"]
