"""Saved JSON reports (`estimate`, `cost`, `audit` with `--format json`) read back: their kind, a check of
their `format_version`, and their re-rendering (`costkit render`)."""
from __future__ import annotations

import json
import sys

from costkit.core.errors import BadInput
from costkit.outputs.text import text_table

# kind -> the format_version values this costkit reads (each is the FORMAT_VERSION of its model's module).
KNOWN_VERSIONS = {"estimate": (1,), "cost": (1,), "audit": (1,)}
FORMATS = {"estimate": ("html", "table", "csv", "json"), "cost": ("table", "csv", "json"),
           "audit": ("html", "table", "csv", "json")}


def read_report(path: str) -> dict:
    """The JSON report at `path` (`-` = stdin) as a dict; BadInput naming the file and line when it is not
    a JSON object."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise BadInput("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read: {e}", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"not JSON: {e.msg}", path=path, line=e.lineno) from None
    if not isinstance(data, dict):
        raise BadInput("expected a JSON object (a costkit report)", path=path, line=1)
    return data


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def report_kind(model: dict, path: str) -> str:
    """"estimate", "cost" or "audit", after checking the model's format_version (BadInput when it is
    missing or a version this costkit does not know)."""
    if model.get("kind") == "costkit audit":
        kind = "audit"
    elif {"item_keys", "months", "scenario"} <= set(model):
        kind = "estimate"
    elif {"period", "groups", "items"} <= set(model):
        kind = "cost"
    else:
        raise BadInput("not a costkit estimate, cost or audit report", path=path)
    version = model.get("format_version")
    if version is None:
        raise BadInput(f"format_version: missing (a {kind} report needs it)", path=path)
    if isinstance(version, bool) or version not in KNOWN_VERSIONS[kind]:
        known = ", ".join(str(v) for v in KNOWN_VERSIONS[kind])
        raise BadInput(f"format_version: {version!r} is not {_a(kind)} format this costkit reads ({known}); "
                       "re-create the report with this version", path=path)
    return kind


def audit_table(model: dict) -> str:
    """The audit's item table as text: billed, expected, variance and status per item."""
    cur = model["currency"]
    rows = [[r["item"], r["billed_net"], r["expected"], r["variance"], r.get("variance_pct") or "", r["status"]]
            for r in model["items"]]
    k = model["kpis"]
    rows.append(["total", k["billed_net"], k["expected"], k["variance"], k.get("variance_pct") or "", model["status"]])
    head = f"Audit of {model['month']} ({model['site']}, {cur}): {model['status']}\n"
    return head + text_table(["item", "billed", "expected", "variance", "variance %", "status"], rows,
                             right={1, 2, 3, 4})


def render_saved(model: dict, fmt: str, *, path: str = "report") -> str:
    """A saved report re-rendered as `fmt`; BadInput when the kind has no such rendering."""
    kind = report_kind(model, path)
    if fmt not in FORMATS[kind]:
        raise BadInput(f"{_a(kind)} report renders as {', '.join(FORMATS[kind])}, not {fmt}", field="--format")
    if kind == "estimate":
        from costkit.outputs.forecast import render_forecast
        return render_forecast(model, fmt)
    if kind == "cost":
        from costkit.outputs.cost import render_report
        return render_report(model, fmt)
    if fmt == "table":
        return audit_table(model)
    from costkit.outputs.audit import render_audit
    return render_audit(model, fmt)


__all__ = ["KNOWN_VERSIONS", "audit_table", "read_report", "render_saved", "report_kind"]
