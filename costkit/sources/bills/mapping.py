"""Map bill lines to costkit item keys (costkit/data/bill-mapping.yaml); pure, nothing is read from the store.

`map_lines(lines)` maps every line of a `bill_lines_frame`, mapped or not (`costkit.store.bills.mapped_bill`
reads a stored month and maps it), and returns a DataFrame:

| column | meaning |
|---|---|
| the `bill_lines` columns | see `costkit.store.bills.BILL_LINE_COLUMNS` (numbers as `Decimal`, `billing_date` a `date`, UTC+8) |
| `origin` | the file or endpoint the line came from |
| `item` | costkit item key (`imm.ImageSplicing`, `oss.GetRequest`, ...), None when unmapped |
| `mapped` | bool |
| `rule_line` | line of the matching rule in the mapping file (None when unmapped) |
| `storage_class`, `redundancy` | selectors derived for the item (None when not derivable or not needed) |
| `selectors` | dict of the selectors the price book needs for `item` (missing ones left out) |
| `quantity` | `Decimal`: Usage in the item's base unit (calls, requests, GB, GB-hour); None when the unit is unknown |
| `quantity_unit` | that base unit (`calls`, `requests`, `GB`, `GB-hour`) |
| `deductions` | `Decimal`: the money deductions the bill states: InvoiceDiscount + DeductedByCoupons + DeductedByCashCoupons (vouchers) + DeductedBySavingsPlan (missing = 0) |
| `other_deduction` | `Decimal`: gross − deductions − payable, what the stated deductions leave over (0 without a payable amount or gross) |
| `net_amount` | `Decimal`: the payable amount (PretaxAmount, 应付金额); without one, PretaxGrossAmount − InvoiceDiscount − DeductedByCoupons |
| `amount_rule` | `payable` or `gross - discount - coupons` (the formula used for `net_amount`) |
| `plan_quantity` | `Decimal`: DeductedByResourcePackage (资源包抵扣量), the usage a resource plan covered, in the item's base unit like `quantity` (None when not stated or the unit is unknown); never money |
| `day_start`, `day_end` | the billing day as aware instants (Asia/Shanghai) [start, end) |
| `note` | why a line is unmapped, or what was assumed about its units |
"""
from __future__ import annotations

import importlib.resources
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pandas as pd

from costkit.core.errors import BadInput
from costkit.core.catalog import ITEMS, SELECTOR_VALUES
from costkit.core.yamlio import Mapping, load_yaml_file
from costkit.sources.bills.records import billing_day_bounds, decimal_text
from costkit.sources.bills.units import BASE_UNIT, item_quantity_factor, to_decimal


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
    mapping = mapping or load_mapping()
    df = lines.copy()
    items, mapped, rule_lines, classes, reds, sels, qty, qunit, deds, nets, starts, ends, notes = \
        ([] for _ in range(13))
    plans, others, rules = [], [], []
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
        plan = rec.get("deducted_by_resource_package")
        pq = None
        if item is not None and plan is not None:
            factor, _ = item_quantity_factor(item, rec.get("usage_unit"))
            pq = to_decimal(Fraction(plan) * factor) if factor is not None else None
        plans.append(pq)
        d, other, net, rule = line_money(rec)
        deds.append(d)
        others.append(other)
        nets.append(net)
        rules.append(rule)
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
    df["other_deduction"] = obj(others)
    df["net_amount"] = obj(nets)
    df["amount_rule"] = obj(rules)
    df["plan_quantity"] = obj(plans)
    df["day_start"] = obj(starts)
    df["day_end"] = obj(ends)
    df["note"] = obj(notes)
    return df


MONEY_DEDUCTIONS = ("invoice_discount", "deducted_by_coupons", "deducted_by_cash_coupons", "deducted_by_savings_plan")


def line_money(rec: dict) -> tuple:
    """(stated deductions, other deduction, net, rule) of one bill line, exact Decimals in its currency.

    Net is the payable amount (应付金额 / PretaxAmount) where the line has one; the stated deductions are
    discount + coupons + vouchers + savings plan, and whatever gross − those − payable leaves is the `other`
    deduction (shown, never hidden). Without a payable amount: gross − discount − coupons, other = 0.
    DeductedByResourcePackage is a quantity (usage covered by a plan), never subtracted here.
    """
    zero = Decimal(0)
    d = sum(((rec.get(c) or zero) for c in MONEY_DEDUCTIONS), zero)
    gross, payable = rec.get("pretax_gross_amount"), rec.get("pretax_amount")
    if payable is not None:
        other = gross - d - payable if gross is not None else zero
        return d, other, payable, "payable"
    net = (gross or zero) - (rec.get("invoice_discount") or zero) - (rec.get("deducted_by_coupons") or zero)
    return d, zero, net, "gross - discount - coupons"


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
    return decimal_text(d) if d is not None else ""
