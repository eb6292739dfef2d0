"""Map bill lines to costkit item keys (costkit/data/bill-mapping.yaml) and read units off bill lines.

`mapped_bill(store, month)` returns every stored line of the month, mapped or not, as a DataFrame:

| column | meaning |
|---|---|
| the `bill_lines` columns | see `costkit.bills.BILL_LINE_COLUMNS` (numbers as `Decimal`, `billing_date` a `date`, UTC+8) |
| `origin` | the file or endpoint the line came from |
| `item` | costkit item key (`imm.ImageSplicing`, `oss.GetRequest`, ...), None when unmapped |
| `mapped` | bool |
| `rule_line` | line of the matching rule in the mapping file (None when unmapped) |
| `storage_class`, `redundancy` | selectors derived for the item (None when not derivable or not needed) |
| `selectors` | dict of the selectors the price book needs for `item` (missing ones left out) |
| `quantity` | `Decimal`: Usage in the item's base unit (calls, requests, GB, GB-hour); None when the unit is unknown |
| `quantity_unit` | that base unit (`calls`, `requests`, `GB`, `GB-hour`) |
| `deductions` | `Decimal`: InvoiceDiscount + DeductedByCoupons + DeductedByResourcePackage (missing = 0) |
| `net_amount` | `Decimal`: PretaxGrossAmount − deductions (PretaxAmount when the gross amount is missing) |
| `day_start`, `day_end` | the billing day as aware instants (Asia/Shanghai) [start, end) |
| `note` | why a line is unmapped, or what was assumed about its units |
"""
from __future__ import annotations

import importlib.resources
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import pandas as pd

from costkit.core.errors import BadInput
from costkit.core.catalog import ITEMS, SELECTOR_VALUES
from costkit.core.yamlio import Mapping, load_yaml_file

# item dimension (pricebook ITEMS) -> the unit dimension a bill's usage unit must have
_DIMENSION = {"calls": "count", "requests": "count", "GB": "GB", "GB-hour": "GB-hour"}
BASE_UNIT = {"calls": "calls", "requests": "requests", "GB": "GB", "GB-hour": "GB-hour"}

# --- units -----------------------------------------------------------------------------------------

_COUNT = {"次", "次数", "个", "请求", "请求次数", "call", "calls", "request", "requests", "req", "time", "times",
          "count", "counts", "query", "queries", "次调用", "调用"}
_CJK_MULT = {"十": 10, "百": 100, "千": 1000, "万": 10000, "十万": 100000, "百万": 1000000, "千万": 10**7,
             "亿": 10**8}
_GiB = Fraction(1, 1024**3)
_DATA = {"b": _GiB, "byte": _GiB, "bytes": _GiB, "字节": _GiB, "kb": _GiB * 1024, "kib": _GiB * 1024,
         "mb": Fraction(1, 1024), "mib": Fraction(1, 1024), "gb": Fraction(1), "gib": Fraction(1),
         "g": Fraction(1), "tb": Fraction(1024), "tib": Fraction(1024), "pb": Fraction(1024**2)}
_TIME = {"小时": 1, "时": 1, "hour": 1, "hours": 1, "h": 1, "hr": 1, "hrs": 1, "天": 24, "日": 24, "day": 24,
         "days": 24, "月": 720, "month": 720, "months": 720}
_NUM = re.compile(r"^(\d[\d,]*(?:\.\d+)?)(k|m)?$")


def parse_unit(text) -> tuple[str, Fraction] | None:
    """A bill unit as (dimension, base units per unit): `次` -> ("count", 1), `万次` -> ("count", 10000),
    `1000 calls` -> ("count", 1000), `GB` -> ("GB", 1), `MB` -> ("GB", 1/1024), `GB*小时` / `GB-hour` /
    `GB/小时` -> ("GB-hour", 1), `GB/月` -> ("GB-hour", 720). None when the text is not understood."""
    if text is None:
        return None
    t = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    if not t:
        return None
    t = re.sub(r"(?<=[0-9a-z])(?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff])(?=[0-9a-z])", " ", t)
    tokens = [x for x in re.split(r"[\s*×·/\-]+", t) if x]
    mult = Fraction(1)
    count = False
    data = None
    hours = None
    for tok in tokens:
        m = _NUM.match(tok)
        if m:
            mult *= Fraction(Decimal(m.group(1).replace(",", ""))) * {None: 1, "k": 1000, "m": 10**6}[m.group(2)]
            continue
        if tok in _COUNT:
            count = True
            continue
        prefix = next((p for p in sorted(_CJK_MULT, key=len, reverse=True) if tok.startswith(p)), None)
        if prefix is not None and (tok[len(prefix):] in _COUNT or tok[len(prefix):] == ""):
            mult *= _CJK_MULT[prefix]
            count = count or tok[len(prefix):] in _COUNT
            continue
        if tok in _DATA and data is None:
            data = _DATA[tok]
            continue
        if tok in _TIME and hours is None:
            hours = _TIME[tok]
            continue
        if tok in ("per", "每"):
            continue
        return None
    if data is not None:
        if count:
            return None
        return ("GB-hour", mult * data * hours) if hours is not None else ("GB", mult * data)
    if hours is not None:
        return None
    if count or mult != 1:
        return ("count", mult)
    return None


_PRICE_CURRENCY = re.compile(r"^\s*(CNY|RMB|USD|JPY|US\$|\$|¥|￥|元|美元|人民币)\s*(/|per\b)?\s*", re.I)


def split_price_unit(text) -> tuple[str | None, str | None]:
    """(currency, quantity unit) from a ListPriceUnit: `CNY/万次` -> ("CNY", "万次"), `元/GB/小时` ->
    ("CNY", "GB/小时"), `CNY` -> ("CNY", None: per usage unit)."""
    if text is None:
        return None, None
    t = unicodedata.normalize("NFKC", str(text)).strip()
    m = _PRICE_CURRENCY.match(t)
    if not m:
        return None, t or None
    cur = m.group(1).upper()
    cur = {"RMB": "CNY", "¥": "CNY", "元": "CNY", "人民币": "CNY", "US$": "USD", "$": "USD", "美元": "USD"}.get(
        cur, cur)
    rest = t[m.end():].strip()
    return cur, rest or None


def to_decimal(f: Fraction, places: int = 18) -> Decimal:
    """A Fraction as a Decimal: exact when it terminates within `places` decimals, else rounded half-up."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(f.numerator) / Decimal(f.denominator)
        q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    n = q.normalize()
    return n.quantize(Decimal(1)) if n == n.to_integral() else n


def item_quantity_factor(item: str, usage_unit) -> tuple[Fraction | None, str | None]:
    """(base units of `item` per usage unit, note). For storage items a pure data unit (GB) counts as
    GB-hours: the bill's Usage sums the hourly bills (1 GB stored all day = 24 GB)."""
    dim = ITEMS[item][0]
    want = _DIMENSION[dim]
    parsed = parse_unit(usage_unit)
    if parsed is None:
        if usage_unit in (None, "") and want == "count":
            return Fraction(1), "no usage unit: read as a count"
        return None, f"usage unit {usage_unit!r} not understood"
    udim, mult = parsed
    if udim == want:
        return mult, None
    if want == "GB-hour" and udim == "GB":
        return mult, "storage usage in GB read as GB-hours (the sum of the hourly bills)"
    return None, f"usage unit {usage_unit!r} does not measure {item} ({dim})"


# --- mapping rules ---------------------------------------------------------------------------------

def _norm(text) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text)).casefold())


_RULE_KEYS = {"item", "products", "codes", "names", "selectors", "storage_class_from_instance",
              "only_storage_classes", "note"}


@dataclass
class Rule:
    item: str
    line: int
    products: set = field(default_factory=set)
    codes: set = field(default_factory=set)
    names: set = field(default_factory=set)
    selectors: dict = field(default_factory=dict)
    class_from_instance: bool = False
    only_classes: set | None = None


@dataclass
class BillMapping:
    path: str
    rules: list[Rule]
    version: str | None = None


def default_mapping_path() -> Path:
    return Path(str(importlib.resources.files("costkit") / "data" / "bill-mapping.yaml"))


def load_mapping(path=None) -> BillMapping:
    """Read and check a bill mapping file (default: the bundled costkit/data/bill-mapping.yaml)."""
    path = Path(path) if path is not None else default_mapping_path()
    data = load_yaml_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise BadInput("rules: expected a mapping with a `rules:` list", path=path,
                       line=getattr(data, "line", None))
    rules = []
    lines = getattr(data["rules"], "item_lines", [])
    for i, r in enumerate(data["rules"]):
        line = lines[i] if i < len(lines) else None
        if not isinstance(r, dict):
            raise BadInput("expected a mapping", path=path, line=line, field=f"rule {i + 1}")
        at = r.line_of if isinstance(r, Mapping) else (lambda k: line)
        for k in r:
            if k not in _RULE_KEYS:
                raise BadInput(f"unknown key (known: {', '.join(sorted(_RULE_KEYS))})", path=path, line=at(k),
                               field=k)
        item = r.get("item")
        if item not in ITEMS:
            raise BadInput(f"unknown item key {item!r} (known: {', '.join(ITEMS)})", path=path, line=at("item"),
                           field="item")
        if not r.get("codes") and not r.get("names"):
            raise BadInput("a rule needs codes or names", path=path, line=line, field="codes")
        lists = {}
        for k in ("products", "codes", "names", "only_storage_classes"):
            v = r.get(k)
            if v is not None and not (isinstance(v, list) and all(isinstance(x, (str, int)) for x in v)):
                raise BadInput("expected a list of strings", path=path, line=at(k), field=k)
            lists[k] = v or []
        sel = r.get("selectors") or {}
        if not isinstance(sel, dict):
            raise BadInput("expected a mapping", path=path, line=at("selectors"), field="selectors")
        for k, v in sel.items():
            if k not in SELECTOR_VALUES or v not in SELECTOR_VALUES[k]:
                raise BadInput(f"{k}={v!r} is not a selector value", path=path, line=at("selectors"),
                               field="selectors")
        for c in lists["only_storage_classes"]:
            if c not in SELECTOR_VALUES["storage_class"]:
                raise BadInput(f"unknown storage class {c!r}", path=path, line=at("only_storage_classes"),
                               field="only_storage_classes")
        rules.append(Rule(item=item, line=line or 0, products={_norm(x) for x in lists["products"]},
                          codes={_norm(x) for x in lists["codes"]}, names={_norm(x) for x in lists["names"]},
                          selectors=dict(sel), class_from_instance=bool(r.get("storage_class_from_instance")),
                          only_classes=set(lists["only_storage_classes"]) or None))
    return BillMapping(str(path), rules, None if data.get("version") is None else str(data.get("version")))


_INSTANCE_CLASS = {"standard": "Standard", "std": "Standard", "ia": "IA", "infrequentaccess": "IA",
                   "lowfrequency": "IA", "低频": "IA", "低频访问": "IA", "archive": "Archive", "归档": "Archive",
                   "coldarchive": "ColdArchive", "冷归档": "ColdArchive", "deepcoldarchive": "DeepColdArchive",
                   "深度冷归档": "DeepColdArchive"}
_REGION = re.compile(r"^[a-z]{2,3}-[a-z0-9-]+$")


def instance_facts(instance_id) -> tuple[str | None, str | None, str | None]:
    """(region, storage class, redundancy) read off an OSS instance ID like `cn-shanghai;archive`."""
    if not instance_id:
        return None, None, None
    region = cls = red = None
    for tok in re.split(r"[;,|]", str(instance_id)):
        s = tok.strip()
        t = s.casefold().replace("-", "").replace("_", "").replace(" ", "")
        if t in _INSTANCE_CLASS:
            cls = _INSTANCE_CLASS[t]
        elif t in ("zrs", "lrs"):
            red = t.upper()
        elif region is None and _REGION.match(s):
            region = s
    return region, cls, red


_CLASS_WORDS = (("深度冷归档", "DeepColdArchive"), ("deepcoldarchive", "DeepColdArchive"),
                ("冷归档", "ColdArchive"), ("coldarchive", "ColdArchive"), ("归档", "Archive"),
                ("archive", "Archive"), ("低频", "IA"), ("infrequentaccess", "IA"), ("标准", "Standard"),
                ("standard", "Standard"))


def class_from_text(text) -> str | None:
    """The one storage class a billing item name mentions (低频 -> IA, 归档 -> Archive, 冷归档 -> ColdArchive,
    ...); None when it names none or several (低频访问(本地冗余)/归档存储容量 names two)."""
    if not text:
        return None
    t = re.sub(r"[\s_-]+", "", unicodedata.normalize("NFKC", str(text)).casefold())
    found = set()
    for word, cls in _CLASS_WORDS:
        if word in t:
            found.add(cls)
            t = t.replace(word, " ")
    return found.pop() if len(found) == 1 else None


def _redundancy_from_text(*texts) -> str | None:
    for t in texts:
        if not t:
            continue
        n = unicodedata.normalize("NFKC", str(t))
        if "同城冗余" in n or re.search(r"zrs", n, re.I):
            return "ZRS"
        if "本地冗余" in n or re.search(r"lrs", n, re.I):
            return "LRS"
    return None


def _product_match(line_products: set, rule_products: set) -> bool:
    """Exact, or a rule name of 3+ characters inside the line's product name (对象存储OSS, IMM智能媒体管理)."""
    if line_products & rule_products:
        return True
    return any(len(r) >= 3 and r in p for r in rule_products for p in line_products)


def match_line(mapping: BillMapping, line: dict) -> tuple[Rule | None, dict, str | None]:
    """(rule, selectors, note) for one bill line (a dict of `bill_lines` columns)."""
    code = _norm(line.get("billing_item_code") or "")
    name = _norm(line.get("billing_item") or "")
    products = {_norm(p) for p in (line.get("product_code"), line.get("product_name")) if p}
    _, inst_class, inst_red = instance_facts(line.get("instance_id"))
    near = None
    for rule in mapping.rules:
        if not ((code and code in rule.codes) or (name and name in rule.names)):
            continue
        if rule.products and products and not _product_match(products, rule.products):
            near = near or f"billing item matches a rule for {rule.item} (line {rule.line}) but not its products"
            continue
        sel = {}
        needed = ITEMS[rule.item][1]
        cls = rule.selectors.get("storage_class") or (
            (inst_class or class_from_text(line.get("billing_item"))) if rule.class_from_instance else None)
        if rule.only_classes is not None and cls not in rule.only_classes:
            near = near or (f"rule for {rule.item} (line {rule.line}) applies to storage class "
                            f"{'/'.join(sorted(rule.only_classes))} only; this line's class is {cls or 'unknown'}")
            continue
        red = rule.selectors.get("redundancy") or _redundancy_from_text(
            line.get("billing_item"), line.get("billing_item_code")) or inst_red
        if "storage_class" in needed and cls:
            sel["storage_class"] = cls
        if "redundancy" in needed and red:
            sel["redundancy"] = red
        note = None
        missing = [k for k in needed if k not in sel]
        if missing:
            note = f"{', '.join(missing)} not derivable from the line"
        return rule, sel, note
    return None, {}, near or "no mapping rule for this product and billing item"


def map_lines(lines: pd.DataFrame, mapping: BillMapping | None = None) -> pd.DataFrame:
    """Add the mapping columns (see the module doc) to a `bill_lines_frame`."""
    from costkit.sources.bills.bills import billing_day_bounds

    mapping = mapping or load_mapping()
    df = lines.copy()
    items, mapped, rule_lines, classes, reds, sels, qty, qunit, deds, nets, starts, ends, notes = \
        ([] for _ in range(13))
    zero = Decimal(0)
    for rec in df.to_dict("records"):
        rule, sel, note = match_line(mapping, rec)
        item = rule.item if rule else None
        items.append(item)
        mapped.append(rule is not None)
        rule_lines.append(rule.line if rule else None)
        classes.append(sel.get("storage_class"))
        reds.append(sel.get("redundancy"))
        sels.append(sel)
        q = unit = None
        if item is not None:
            unit = BASE_UNIT[ITEMS[item][0]]
            if rec.get("usage") is not None:
                factor, unote = item_quantity_factor(item, rec.get("usage_unit"))
                if factor is not None:
                    q = to_decimal(Fraction(rec["usage"]) * factor)
                note = "; ".join(x for x in (note, unote) if x) or None
        qty.append(q)
        qunit.append(unit)
        d = sum(((rec.get(c) or zero) for c in ("invoice_discount", "deducted_by_coupons",
                                                 "deducted_by_resource_package")), zero)
        deds.append(d)
        gross = rec.get("pretax_gross_amount")
        nets.append(gross - d if gross is not None else rec.get("pretax_amount"))
        s, e = billing_day_bounds(rec["billing_date"])
        starts.append(s)
        ends.append(e)
        notes.append(note)
    def obj(values):
        # dtype=object keeps None and Decimal (pandas 3 would make text columns str with NaN)
        return pd.Series(values, index=df.index, dtype=object)

    df["item"] = obj(items)
    df["mapped"] = pd.Series(mapped, index=df.index, dtype=bool)
    df["rule_line"] = obj(rule_lines)
    df["storage_class"] = obj(classes)
    df["redundancy"] = obj(reds)
    df["selectors"] = obj(sels)
    df["quantity"] = obj(qty)
    df["quantity_unit"] = obj(qunit)
    df["deductions"] = obj(deds)
    df["net_amount"] = obj(nets)
    df["day_start"] = obj(starts)
    df["day_end"] = obj(ends)
    df["note"] = obj(notes)
    return df


def mapped_bill(store, month: str, *, source: str | None = None, mapping=None) -> pd.DataFrame:
    """Every stored bill line of `month` with its costkit item (None when unmapped): see the module doc.

    `mapping`: a BillMapping, a path, or None for the bundled file.
    """
    from costkit.sources.bills.bills import bill_lines_frame

    if mapping is None or isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    return map_lines(bill_lines_frame(store, month, source=source), mapping)


def unmapped_summary(frame: pd.DataFrame) -> list[str]:
    """One line per unmapped (product, billing item, note): how many lines and their gross amount."""
    out = []
    um = frame[~frame["mapped"]] if len(frame) else frame
    groups: dict = {}
    for rec in um.to_dict("records"):
        key = (rec.get("product_code") or rec.get("product_name") or "?",
               rec.get("billing_item_code") or "", rec.get("billing_item") or "", rec.get("note") or "")
        n, amt = groups.get(key, (0, Decimal(0)))
        groups[key] = (n + 1, amt + (rec.get("pretax_gross_amount") or rec.get("pretax_amount") or Decimal(0)))
    for (prod, code, name, note), (n, amt) in sorted(groups.items()):
        label = " ".join(x for x in (code, name) if x)
        out.append(f"{prod} {label}: {n} line(s), gross {amt} ({note})")
    return out


DAILY_COLUMNS = ["billing_date", "item", "storage_class", "redundancy", "currency", "lines", "quantity",
                 "quantity_unit", "pretax_gross_amount", "invoice_discount", "deducted_by_coupons",
                 "deducted_by_resource_package", "pretax_amount", "net_amount", "list_prices", "line_nos"]


def billed_daily(frame: pd.DataFrame) -> pd.DataFrame:
    """Mapped lines summed per billing day (UTC+8) x item x storage class x redundancy x currency.

    Amounts and `quantity` are exact Decimal sums (a missing amount counts as 0; `quantity` is None when a
    line's usage unit was not understood). `list_prices` lists the distinct "ListPrice ListPriceUnit" texts,
    `line_nos` the bill lines summed. Unmapped lines are left out: report them from `frame` itself.
    """
    zero = Decimal(0)
    money = ("pretax_gross_amount", "invoice_discount", "deducted_by_coupons", "deducted_by_resource_package",
             "pretax_amount", "net_amount")
    groups: dict = {}
    mapped = frame[frame["mapped"]] if len(frame) else frame
    for r in mapped.to_dict("records"):
        key = (r["billing_date"], r["item"], r.get("storage_class"), r.get("redundancy"), r.get("currency"))
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"lines": 0, "quantity": zero, "quantity_unit": r.get("quantity_unit"),
                               "list_prices": set(), "line_nos": [], **{m: zero for m in money}}
        g["lines"] += 1
        g["line_nos"].append(int(r["line_no"]))
        q = r.get("quantity")
        g["quantity"] = None if (q is None or g["quantity"] is None) else g["quantity"] + q
        for m in money:
            g[m] += r.get(m) or zero
        if r.get("list_price") is not None:
            g["list_prices"].add(f"{decimal_text_or(r['list_price'])} {r.get('list_price_unit') or ''}".strip())
    rows = []
    for (day, item, cls, red, cur), g in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        rows.append({"billing_date": day, "item": item, "storage_class": cls, "redundancy": red, "currency": cur,
                     **{k: v for k, v in g.items() if k != "list_prices"}, "list_prices": sorted(g["list_prices"])})
    df = pd.DataFrame(rows, columns=DAILY_COLUMNS, dtype=object)
    df["lines"] = df["lines"].astype("int64")
    return df


def decimal_text_or(d) -> str:
    from costkit.sources.bills.bills import decimal_text
    return decimal_text(d) if d is not None else ""
