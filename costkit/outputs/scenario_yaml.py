"""A calibrated scenario as commented YAML: every value with a comment saying what it was measured from."""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction


def _scalar(v) -> str:
    """`v` as YAML flow text; numbers are written exactly (Decimal text), text double-quoted (JSON)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, Fraction):
        return str(Decimal(v.numerator) / Decimal(v.denominator))
    if isinstance(v, datetime):
        return json.dumps(v.isoformat())
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def _line(indent: str, key: str, value: str, comment: str | None) -> str:
    text = f"{indent}{key}: {value}"
    return f"{text}  # {comment}" if comment else text


def render_scenario_yaml(cal) -> str:
    """The YAML text of a `costkit.engine.calibrate.Calibration` (header notes, values, mix, calibration)."""
    out = [f"# {n}" for n in cal.notes]
    out.append("# Values marked NOT MEASURED take the documented defaults; the estimate lists them under "
               "assumptions.")
    for key, value in cal.data.items():
        comment = cal.comments.get(key)
        if key == "mix":
            out.append("mix:  # kinds of task clustered from the history (target class, minimum size, lifetime)")
            for i, kind in enumerate(value):
                for j, (k, v) in enumerate(kind.items()):
                    lead = "  - " if j == 0 else "    "
                    if k == "source_classes":
                        out.append(f"{lead}source_classes:  # sources of this kind by class and read mode")
                        out += [f"      - {_scalar(g)}" for g in v]
                    else:
                        out.append(_line(lead, k, _scalar(v), cal.comments.get(f"mix[{i}].{k}")))
            continue
        if key == "calibration":
            out.append("calibration:  # what this scenario was measured from (estimate shows it)")
            out += [f"  {k}: {_scalar(v)}" for k, v in value.items()]
            continue
        out.append(_line("", key, _scalar(value), comment))
    return "\n".join(out) + "\n"


__all__ = ["render_scenario_yaml"]
