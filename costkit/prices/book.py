"""Price books: bundled per site (pricing/cn.yaml, pricing/intl.yaml), user overlays, scenario prices.

A price book entry prices one costkit item key (with optional selectors) in one unit over an effective
range [effective_from, effective_to). Unknown prices are null and stay null: the engine asks for them by
name. Layers, lowest precedence first: bundled book, scenario `prices:`, user file (`--prices FILE`),
`--price` options. User layers are read leniently (see `parse_entries`); bundled books strictly.
"""
from __future__ import annotations

import bisect
import importlib.resources
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from costkit.core.errors import BadInput
from costkit.core.money import number_hint, parse_decimal
from costkit.core.timeutil import parse_instant
from costkit.core.yamlio import Mapping, Sequence, load_yaml_file

from costkit.core.catalog import (  # noqa: F401  (re-exported: the book's vocabulary)
    CONFIDENCE_LEVELS, CURRENCIES, ITEM_KEYS, ITEMS, PRICE_ALIAS, REDUNDANCIES, SELECTOR_VALUES, STORAGE_CLASSES, UNITS)

ENTRY_KEYS = {"item", "code", "selectors", "unit", "price", "currency", "effective_from", "effective_to",
              "confidence", "source", "note"}
REQUIRED_KEYS = ("item", "unit", "price", "currency", "confidence", "source")


@dataclass(frozen=True)
class PriceEntry:
    """One price: `price` is per `unit` in `currency`, or None when unknown."""

    item: str
    unit: str
    price: Decimal | None
    currency: str
    confidence: str
    source: str
    selectors: tuple[tuple[str, str], ...] = ()
    code: str | None = None
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    note: str | None = None
    layer: str = "bundled"
    path: str = ""
    line: int = 0

    def covers(self, instant: datetime) -> bool:
        return ((self.effective_from is None or self.effective_from <= instant)
                and (self.effective_to is None or instant < self.effective_to))

    def matches(self, selectors: dict) -> bool:
        return all(selectors.get(k) == v for k, v in self.selectors)

    def per_base_unit(self) -> Fraction:
        """The exact price per base unit of the dimension (call, request, GB, GB-hour)."""
        return Fraction(self.price) / UNITS[self.unit][1]

    def to_dict(self) -> dict:
        return {
            "item": self.item, "code": self.code, "selectors": dict(self.selectors), "unit": self.unit,
            "price": None if self.price is None else str(self.price), "currency": self.currency,
            "effective_from": None if self.effective_from is None else self.effective_from.isoformat(),
            "effective_to": None if self.effective_to is None else self.effective_to.isoformat(),
            "confidence": self.confidence, "source": self.source, "note": self.note, "layer": self.layer,
        }


# A price is at most this much per unit, with at most this many decimals (README, "Bad input").
MAX_PRICE = Decimal(10**6)
MAX_PRICE_DECIMALS = 20


def _kind(v) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{'true/false' if isinstance(v, bool) else 'a number'} {v!r}"


def _shown(v) -> str:
    return v if isinstance(v, str) else "?"


def _price(raw) -> tuple[Decimal | None, str | None]:
    """(the price, None) or (None, why it is not a price): a plain decimal 0..MAX_PRICE."""
    d = parse_decimal(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if d is None:
        if isinstance(raw, str):
            return None, f"not a non-negative decimal: {raw!r} ({number_hint(raw)})"
        return None, f"not a non-negative decimal: got {_kind(raw) if not isinstance(raw, int) else raw}"
    if d < 0 or d > MAX_PRICE:
        return None, f"{raw} is out of range (0..{MAX_PRICE} per unit)"
    if -d.as_tuple().exponent > MAX_PRICE_DECIMALS:
        return None, f"{raw} has more than {MAX_PRICE_DECIMALS} decimals"
    return d, None


def _problem(path, line, msg) -> str:
    return f"{path}:{line}: {msg}" if line else f"{path}: {msg}"


# Keys a user layer (--prices FILE, a scenario's prices:, --price) may leave out, and what they default to;
# bundled books must give them all.
USER_DEFAULTS = ("currency: the site's", "source: file and line", "confidence: user")
TOP_SELECTORS = tuple(SELECTOR_VALUES)  # selector keys a user entry may give at its top level


def parse_entries(raw, *, path, layer: str, currency: str | None = None,
                  lenient: bool = False) -> tuple[list[PriceEntry], list[str]]:
    """Validate raw entry mappings; return (entries, problems), each problem as 'file:line: message'.

    `lenient` is the user-layer mode: `currency` defaults to the given (site's) currency, `source` to
    "FILE:LINE" and `confidence` to "user", and selector keys (storage_class, redundancy) may stand at the
    top level of an entry. Bundled books are read strictly.
    """
    entries: list[PriceEntry] = []
    problems: list[str] = []
    if not isinstance(raw, list):
        return [], [_problem(path, getattr(raw, "line", 0), "entries: expected a list of price entries")]
    lines = getattr(raw, "item_lines", [0] * len(raw))
    for idx, e in enumerate(raw):
        line = lines[idx] if idx < len(lines) else 0
        if not isinstance(e, dict):
            problems.append(_problem(path, line, f"entry {idx + 1}: expected a mapping"))
            continue
        if lenient:
            e, bad = _with_user_defaults(e, path, line, currency)
        else:
            bad = []
        entry = _entry(e, path, line, layer, currency, bad)
        if bad:
            problems.extend(bad)
        else:
            entries.append(entry)
    problems.extend(_overlaps(entries))
    return entries, problems


def _with_user_defaults(e: dict, path, line: int, currency: str | None) -> tuple[dict, list[str]]:
    """A user entry with its defaults filled in and top-level selectors moved under `selectors:` (a copy that
    keeps the line numbers of the keys given); plus the problems of moving them."""
    at = e.line_of if isinstance(e, Mapping) else (lambda k: line)
    out = Mapping()
    out.line = getattr(e, "line", line)
    out.key_lines = dict(getattr(e, "key_lines", {}))
    bad = []
    top = {k: e[k] for k in TOP_SELECTORS if k in e}
    for k, v in e.items():
        if k not in top:
            out[k] = v
    if top:
        sel = e.get("selectors")
        sel = dict(sel) if isinstance(sel, dict) else ({} if sel is None else sel)
        if isinstance(sel, dict):
            for k, v in top.items():
                if k in sel and sel[k] != v:
                    bad.append(_problem(path, at(k), f"{k}: {v!r} here but {sel[k]!r} under selectors:"))
                sel[k] = v
            out["selectors"] = sel
            out.key_lines.setdefault("selectors", at(next(iter(top))))
    if currency is not None and out.get("currency") is None and "currency" not in e:
        out["currency"] = currency
    if "source" not in e:
        out["source"] = f"{path}:{line}" if line else str(path)
    if "confidence" not in e:
        out["confidence"] = "user"
    return out, bad


def _entry(e: dict, path, line: int, layer: str, currency: str | None, bad: list[str]) -> PriceEntry | None:
    """One validated entry, or None with its problems appended to `bad`."""
    at = e.line_of if isinstance(e, Mapping) else (lambda k: line)
    for k in e:
        if k not in ENTRY_KEYS:
            hint = " (selector keys stand under selectors: in a bundled book)" if k in TOP_SELECTORS else ""
            bad.append(_problem(path, at(k), f"{k}: unknown key in a price entry{hint}"))
    for k in REQUIRED_KEYS:
        if k not in e:
            bad.append(_problem(path, at(k), f"{k}: missing (entry for {_shown(e.get('item'))})"))
        elif e[k] is None and k != "price":  # only the price may be null (= unknown)
            bad.append(_problem(path, at(k), f"{k}: null; every entry needs its {k}"))
    for k in ("item", "unit", "currency", "confidence", "source", "code", "note"):
        if e.get(k) is not None and not isinstance(e[k], str):
            bad.append(_problem(path, at(k), f"{k}: expected text, got {_kind(e[k])}"))
    item = e.get("item") if isinstance(e.get("item"), str) else None
    if item is not None and item not in ITEMS:
        bad.append(_problem(path, at("item"), f"item: unknown item key {item!r} (known: {', '.join(ITEMS)})"))
    unit = e.get("unit") if isinstance(e.get("unit"), str) else None
    if unit is not None:
        if unit not in UNITS:
            bad.append(_problem(path, at("unit"), f"unit: unknown unit {unit!r} (known: {', '.join(UNITS)})"))
        elif item in ITEMS and UNITS[unit][0] != ITEMS[item][0]:
            bad.append(_problem(path, at("unit"),
                                f"unit: {unit!r} does not measure {item} (needs a {ITEMS[item][0]} unit)"))
    price = None
    if "price" in e and e["price"] is not None:
        price, why = _price(e["price"])
        if why:
            bad.append(_problem(path, at("price"), f"price: {why}"))
    src = e.get("source")
    if isinstance(src, str) and not src.strip():
        bad.append(_problem(path, at("source"), "source: empty (every price needs its source)"))
    conf = e.get("confidence") if isinstance(e.get("confidence"), str) else None
    if conf is not None and conf not in CONFIDENCE_LEVELS:
        bad.append(_problem(path, at("confidence"),
                            f"confidence: unknown level {conf!r} (known: {', '.join(CONFIDENCE_LEVELS)})"))
    cur = e.get("currency") if isinstance(e.get("currency"), str) else None
    if cur is not None and cur not in CURRENCIES.values():
        bad.append(_problem(path, at("currency"),
                            f"currency: unknown currency {cur!r} (one of {', '.join(CURRENCIES.values())})"))
    elif cur is not None and currency is not None and cur != currency:
        bad.append(_problem(path, at("currency"), f"currency: {cur} does not match the book's {currency}"))
    sel = _selectors(e, at, path, bad)
    times = _times(e, at, path, bad)
    if bad:
        return None
    return PriceEntry(
        item=item, unit=unit, price=price, currency=cur, confidence=conf, source=src.strip(),
        selectors=tuple(sorted(sel.items())), code=e.get("code"),
        effective_from=times["effective_from"], effective_to=times["effective_to"],
        note=e.get("note"), layer=layer, path=str(path), line=line)


def _selectors(e: dict, at, path, bad: list[str]) -> dict:
    sel = {} if e.get("selectors") is None else e["selectors"]
    if not isinstance(sel, dict):
        bad.append(_problem(path, at("selectors"), "selectors: expected a mapping"))
        return {}
    for k, v in sel.items():
        if k not in SELECTOR_VALUES:
            bad.append(_problem(path, at("selectors"), f"selectors: unknown selector {k!r}"))
        elif not isinstance(v, str) or v not in SELECTOR_VALUES[k]:
            bad.append(_problem(path, at("selectors"),
                                f"selectors: {k}={v!r} is not one of {', '.join(SELECTOR_VALUES[k])}"))
    return sel


def _times(e: dict, at, path, bad: list[str]) -> dict:
    times = {}
    for k in ("effective_from", "effective_to"):
        v = e.get(k)
        if v is None:
            times[k] = None
            continue
        try:
            times[k] = parse_instant(v, field=k)
        except BadInput as err:
            bad.append(_problem(path, at(k), str(err)))
    if times.get("effective_from") and times.get("effective_to") and \
            times["effective_from"] >= times["effective_to"]:
        bad.append(_problem(path, at("effective_to"), "effective_to: not after effective_from"))
    return times


def _overlaps(entries: list[PriceEntry]) -> list[str]:
    """Overlapping effective ranges for the same item and selectors, one problem per pair."""
    out = []
    groups: dict = {}
    for e in entries:
        groups.setdefault((e.item, e.selectors), []).append(e)
    for (item, sel), group in groups.items():
        def start(x):
            return x.effective_from.timestamp() if x.effective_from else float("-inf")
        group.sort(key=start)
        for a, b in zip(group, group[1:]):
            a_end = a.effective_to.timestamp() if a.effective_to else float("inf")
            if start(b) < a_end:
                what = item + (" " + ",".join(f"{k}={v}" for k, v in sel) if sel else "")
                out.append(_problem(b.path, b.line, f"effective range overlaps the entry at line {a.line} ({what})"))
    return out


@dataclass
class BookFile:
    """A parsed price book or overlay file."""

    path: str
    name: str | None
    version: str | None
    site: str | None
    currency: str | None
    entries: list[PriceEntry]
    problems: list[str]


def read_book_file(path, *, layer: str, lenient: bool = False, site_currency: str | None = None) -> BookFile:
    """Parse a book or overlay (a mapping with `entries:`, or a bare list of entries); never raises on
    content problems: they come back in `.problems`. `lenient` reads it as a user layer (see
    `parse_entries`), its currency defaulting to the file's `currency:`, else `site_currency`."""
    data = load_yaml_file(path)
    if isinstance(data, list):
        meta: dict = {}
        raw = data
    elif isinstance(data, dict):
        meta = data
        unknown = set(data) - {"book", "version", "site", "currency", "entries", "description"}
        raw = data.get("entries", Sequence())
        if unknown:
            k = sorted(unknown)[0]
            return BookFile(str(path), None, None, None, None, [],
                            [_problem(path, data.line_of(k), f"{k}: unknown top-level key")])
    else:
        return BookFile(str(path), None, None, None, None, [], [_problem(path, 1, "expected a price book mapping")])
    site = meta.get("site")
    currency = meta.get("currency")
    problems = []
    if site is not None and site not in CURRENCIES:
        problems.append(_problem(path, meta.line_of("site"), f"site: unknown site {site!r} (cn or intl)"))
    elif site is not None and currency is not None and CURRENCIES[site] != currency:
        problems.append(_problem(path, meta.line_of("currency"), f"currency: site {site} bills in {CURRENCIES[site]}"))
    entries, more = parse_entries(raw, path=path, layer=layer, currency=currency or (site_currency if lenient else None),
                                  lenient=lenient)
    return BookFile(str(path), meta.get("book"), None if meta.get("version") is None else str(meta.get("version")),
                    site, currency, entries, problems + more)


def check_book(path) -> list[str]:
    """All problems in a price book file, as 'file:line: message' strings (empty when it is valid)."""
    try:
        return read_book_file(path, layer="check").problems
    except BadInput as e:
        return [str(e)]


def bundled_book_path(site: str) -> Path:
    if site not in CURRENCIES:
        raise BadInput(f"unknown site {site!r} (cn or intl)", field="site")
    return Path(str(importlib.resources.files("costkit.pricing_books") / f"{site}.yaml"))


def _raise_problems(problems: list[str]):
    more = f" (and {len(problems) - 1} more; run `costkit prices check FILE`)" if len(problems) > 1 else ""
    raise BadInput(problems[0] + more)


@dataclass
class PriceBook:
    """The effective prices for one site: layers in increasing precedence."""

    site: str
    currency: str
    name: str
    version: str
    layers: list[tuple[str, list[PriceEntry]]] = field(default_factory=list)

    def add_layer(self, layer: str, entries: list[PriceEntry]) -> None:
        for e in entries:
            if e.currency != self.currency:
                raise BadInput(f"currency: {e.currency} price for {e.item}, but site {self.site} bills in "
                               f"{self.currency}", path=e.path, line=e.line)
        self.layers.append((layer, entries))

    def resolve(self, item: str, selectors: dict, instant: datetime) -> tuple[PriceEntry | None, PriceEntry | None]:
        """(the entry in force, or None; the null entry that says the price is unknown, or None).

        The highest layer with a known price covering `instant` wins; within a layer the most specific
        selectors win. An hour is priced at the price in force at its start.
        """
        key = PRICE_ALIAS.get(item, item)
        unknown = None
        for _, entries in reversed(self.layers):
            cands = [e for e in entries if e.item == key and e.matches(selectors) and e.covers(instant)]
            if not cands:
                continue
            cands.sort(key=lambda e: len(e.selectors), reverse=True)
            known = [e for e in cands if e.price is not None]
            if known:
                return known[0], None
            unknown = unknown or cands[0]
        return None, unknown

    def boundaries(self, item: str) -> list[datetime]:
        """Sorted instants at which some price of `item` starts or ends."""
        key = PRICE_ALIAS.get(item, item)
        seen = set()
        for _, entries in self.layers:
            for e in entries:
                if e.item == key:
                    for t in (e.effective_from, e.effective_to):
                        if t is not None:
                            seen.add(t)
        return sorted(seen)

    def effective(self, instant: datetime) -> list[PriceEntry]:
        """Every entry in force at `instant` after precedence, one per (item, selectors) seen in any layer."""
        keys = []
        for _, entries in self.layers:
            for e in entries:
                if (e.item, e.selectors) not in keys:
                    keys.append((e.item, e.selectors))
        out = []
        for item, sel in keys:
            found, unknown = self.resolve(item, dict(sel), instant)
            if found is not None and found.selectors == sel:
                out.append(found)
            elif found is None and unknown is not None and unknown.selectors == sel:
                out.append(unknown)
        return out


def load_price_book(site: str, *, prices_file=None, scenario_prices=None, scenario_path=None,
                    price_options=None) -> PriceBook:
    """The bundled book for `site` with the user layers on top, lowest precedence first: the scenario's (or
    settings') `prices:` (layer "scenario"), the `--prices FILE` (layer "user"), then the `--price` options
    (layer "cli": PriceEntry objects, see `costkit.prices.options`). User layers are read leniently."""
    bundled = read_book_file(bundled_book_path(site), layer="bundled")
    if bundled.problems:
        _raise_problems(bundled.problems)
    book = PriceBook(site=site, currency=CURRENCIES[site], name=bundled.name or site, version=bundled.version or "")
    book.add_layer("bundled", bundled.entries)
    if scenario_prices is not None:
        entries, problems = parse_entries(scenario_prices, path=scenario_path or "scenario", layer="scenario",
                                          currency=CURRENCIES[site], lenient=True)
        if problems:
            _raise_problems(problems)
        book.add_layer("scenario", entries)
    if prices_file is not None:
        user = read_book_file(prices_file, layer="user", lenient=True, site_currency=CURRENCIES[site])
        if user.problems:
            _raise_problems(user.problems)
        if user.site is not None and user.site != site:
            raise BadInput(f"site: price file is for site {user.site}, the run is for {site}", path=prices_file)
        book.add_layer("user", user.entries)
    if price_options:
        book.add_layer("cli", list(price_options))
    return book


def split_at(boundaries: list[datetime], start: datetime, end: datetime) -> list[datetime]:
    """The boundaries strictly inside (start, end)."""
    i = bisect.bisect_right(boundaries, start)
    j = bisect.bisect_left(boundaries, end)
    return boundaries[i:j]
