"""Two saved reports compared item by item (`costkit diff A.json B.json`): two forecasts, or two months of
`cost` or of `audit`. Differences are B - A, exact (decimal strings), with the percentage of A."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.core.errors import BadInput
from costkit.core.money import round_half_up_int
from costkit.outputs.saved import _a, report_kind
from costkit.outputs.text import text_table

FORMAT_VERSION = 1


def _label(model: dict, kind: str) -> str:
    if kind == "estimate":
        s = model["scenario"]
        return f"{s['name']} ({s['start']} + {s['months']} months)"
    if kind == "cost":
        return model["period"]["label"]
    return model["month"]


def _figures(model: dict, kind: str) -> dict:
    """(row label -> amount string or None) for the item rows and the total of one report."""
    if kind == "audit":
        out = {}
        for r in model["items"]:
            out[f"{r['item']} billed"] = r["billed_net"]
            out[f"{r['item']} expected"] = r["expected"]
        out["total billed"], out["total expected"] = model["kpis"]["billed_net"], model["kpis"]["expected"]
        return out
    return {**model["items"], "total": model["total"]}


def _pct(a: Decimal, d: Decimal) -> str | None:
    """d as a percentage of a, rounded half-up to 1 decimal (None when a is 0)."""
    if not a:
        return None
    tenths = round_half_up_int(abs(Fraction(d) * 1000 / Fraction(a)))
    sign = "-" if (d < 0) != (a < 0) and tenths else ""
    return f"{sign}{tenths // 10}.{tenths % 10}"


def diff_reports(a: dict, b: dict, *, paths=("A", "B")) -> dict:
    """The diff model: kind, currency, the two labels, and one row per item (a, b, difference, pct)."""
    ka, kb = report_kind(a, paths[0]), report_kind(b, paths[1])
    if ka != kb:
        raise BadInput(f"cannot compare {_a(ka)} report ({paths[0]}) with {_a(kb)} report ({paths[1]})")
    if a["currency"] != b["currency"]:
        raise BadInput(f"currencies differ: {a['currency']} ({paths[0]}) and {b['currency']} ({paths[1]})")
    fa, fb = _figures(a, ka), _figures(b, kb)
    rows = []
    for key in list(fa) + [k for k in fb if k not in fa]:
        va, vb = fa.get(key), fb.get(key)
        row = {"item": key, "a": va, "b": vb, "difference": None, "pct": None}
        if va is not None and vb is not None:
            d = Decimal(vb) - Decimal(va)
            row["difference"], row["pct"] = str(d), _pct(Decimal(va), d)
        rows.append(row)
    notes = []
    for tag, m in (("A", a), ("B", b)):
        if m.get("total_label"):
            notes.append(f"{tag} totals are {m['total_label']}")
    return {"format_version": FORMAT_VERSION, "kind": "costkit diff", "report_kind": ka,
            "currency": a["currency"], "a": {"path": str(paths[0]), "label": _label(a, ka)},
            "b": {"path": str(paths[1]), "label": _label(b, kb)}, "rows": rows, "notes": notes}


def diff_table(model: dict) -> str:
    """The diff as a text table; a missing or price-needed figure shows as "n/a"."""
    def cell(v):
        return "n/a" if v is None else v
    head = (f"{model['report_kind']} diff ({model['currency']}): A = {model['a']['label']}, "
            f"B = {model['b']['label']}\n")
    rows = [[r["item"], cell(r["a"]), cell(r["b"]), cell(r["difference"]),
             "" if r["pct"] is None else r["pct"] + "%"] for r in model["rows"]]
    out = head + text_table(["item", "A", "B", "B - A", "%"], rows)
    return out + "".join(f"note: {n}\n" for n in model["notes"])


__all__ = ["diff_reports", "diff_table"]
