"""Workload scenarios (YAML) for forecasts: parsing and validation with file:line messages."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from costkit.core.errors import BadInput
from costkit.core.money import number_hint, parse_decimal
from costkit.core.catalog import CURRENCIES, REDUNDANCIES, STORAGE_CLASSES
from costkit.core.timeutil import YEAR_MAX, add_months, parse_instant, parse_month
from costkit.core.yamlio import Mapping, load_yaml_file, load_yaml_text

CUTOVER = "2025-07-28T11:00:00+08:00"

# Request profile of one splice (calibrate from OSS access logs).
REQUEST_DEFAULTS = {"get_per_source": 1, "head_per_source": 1, "put_per_task": 1}
# Minimum storage duration in days by class; minimum billable size in KB for IA and colder.
MIN_STORAGE_DAYS = {"Standard": 0, "IA": 30, "Archive": 60, "ColdArchive": 180, "DeepColdArchive": 180}
USAGE_DEFAULTS = {
    "charge_failed_splices": False,
    "imm_billing_start": CUTOVER,
    "min_billable_kb": 64,
    "min_storage_days": MIN_STORAGE_DAYS,
}

# key: (kind, required, default, description)
FIELDS: dict[str, tuple[str, bool, object, str]] = {
    "name": ("str", True, None, "scenario name"),
    "site": ("site", True, None, "cn (CNY) or intl (USD)"),
    "region": ("str", False, None, "region of the IMM project and buckets (informational)"),
    "start": ("month", True, None, "first month, YYYY-MM (Asia/Shanghai)"),
    "months": ("int", True, None, "horizon in months, 1..120"),
    "tasks_per_month": ("int", True, None, "splice tasks in the first month"),
    "monthly_growth": ("decimal", False, Decimal("0"), "compounded monthly growth of the task count"),
    "failure_rate": ("decimal", False, Decimal("0"), "share of tasks that fail, 0..1"),
    "sources_per_task": ("int", True, None, "source images per task, 1..10"),
    "source_size_mb": ("decimal", True, None, "size of one source image, MB (1024^2 bytes)"),
    "source_storage_class": ("class", False, "Standard", "storage class of the sources"),
    "archive_direct_read": ("bool", False, False, "Archive direct read switched on for the source bucket"),
    "target_size_mb": ("decimal", True, None, "size of one target image, MB"),
    "target_storage_class": ("class", False, "Standard", "storage class of the targets"),
    "target_redundancy": ("redundancy", False, "LRS", "redundancy of the target bucket (LRS or ZRS)"),
    "target_retention_days": ("decimal?", False, None, "days a target is kept before deletion; null = kept"),
    "accelerated_gb_per_task": ("decimal", False, Decimal("0"), "GB through transfer acceleration per task"),
    "requests": ("requests", False, None, "OSS requests per splice"),
    "daily_profile": ("profile", False, None, "24 weights: share of a day's tasks completing in each hour"),
    "usage": ("usage", False, None, "usage-model settings"),
    "prices": ("prices", False, None, "price entries with the highest precedence"),
    "mix": ("mix", False, None, "task kinds, each a share of the volume with its own sizes and classes"),
    "calibration": ("calibration", False, None, "what a calibrated scenario was measured from"),
}

# Bounds of every number a scenario or settings file takes (README, "Bad input"): (low, high), inclusive.
# Generous for any real workload; outside them the value is a typo, and exact arithmetic stays small.
RANGES = {
    "months": (1, 120), "tasks_per_month": (0, 10**9), "sources_per_task": (1, 10),
    "failure_rate": (0, 1), "monthly_growth": (-1, 10), "source_size_mb": (0, 1024**2),
    "target_size_mb": (0, 1024**2), "target_retention_days": (0, 36500), "accelerated_gb_per_task": (0, 1024),
    "get_per_source": (0, 1000), "head_per_source": (0, 1000), "put_per_task": (0, 1000),
    "daily_profile": (0, 10**6), "min_billable_kb": (0, 1024**2), "min_storage_days": (0, 36500),
    "share": (0, 1), "size_mb": (0, 1024**2),
}
# At most this many digits after the decimal point in any scenario number.
MAX_DECIMALS = 12


@dataclass
class Scenario:
    """A validated scenario. Numbers are exact (Decimal/int); `given` lists the keys the file set."""

    name: str
    site: str
    region: str | None
    start: tuple[int, int]
    months: int
    tasks_per_month: Decimal
    monthly_growth: Decimal
    failure_rate: Decimal
    sources_per_task: Decimal
    source_size_mb: Decimal
    source_storage_class: str
    archive_direct_read: bool
    target_size_mb: Decimal
    target_storage_class: str
    target_redundancy: str
    target_retention_days: Decimal | None
    accelerated_gb_per_task: Decimal
    requests: dict
    daily_profile: list[Decimal] | None
    usage: dict
    prices: list | None
    mix: list | None = None
    calibration: dict | None = None
    path: str = "scenario"
    given: set = field(default_factory=set)

    @property
    def currency(self) -> str:
        return CURRENCIES[self.site]

    @property
    def imm_billing_start(self) -> datetime:
        return parse_instant(self.usage["imm_billing_start"], field="usage.imm_billing_start", path=self.path)


def _bad(msg, path, data, key):
    line = None
    if isinstance(data, Mapping):
        line = data.key_lines.get(key, data.key_lines.get(str(key).split(".")[-1], data.line))
    raise BadInput(msg, path=path, line=line, field=key)


def _number(value, key, path, data, *, integer=False):
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        _bad(f"expected a {'whole number' if integer else 'number'}, got {type(value).__name__} {value!r}",
             path, data, key)
    d = parse_decimal(value)
    if d is None:
        _bad(f"expected a {'whole number' if integer else 'number'}, got {value!r}: {number_hint(value)}",
             path, data, key)
    if integer and d != d.to_integral_value():
        _bad(f"expected a whole number, got {value!r}", path, data, key)
    if -d.as_tuple().exponent > MAX_DECIMALS:
        _bad(f"{value} has more than {MAX_DECIMALS} decimals", path, data, key)
    parts = key.split(".")
    lo, hi = RANGES.get(parts[-1], RANGES.get(parts[-2] if len(parts) > 1 else "", (None, None)))
    if (lo is not None and d < lo) or (hi is not None and d > hi):
        _bad(f"{value} is out of range ({lo}..{hi})", path, data, key)
    return d


def _unknown(key, known, path, data):
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    _bad(f"unknown key{hint}", path, data, key)


def _submapping(value, key, defaults, path, data, check):
    if value is None:
        return dict(defaults)
    if not isinstance(value, dict):
        _bad(f"expected a mapping, got {type(value).__name__}", path, data, key)
    out = dict(defaults)
    for k, v in value.items():
        if k not in defaults:
            _unknown(f"{key}.{k}", [f"{key}.{d}" for d in defaults], path, value if isinstance(value, Mapping) else data)
        out[k] = check(k, v, value)
    return out


def parse_scenario(data, path="scenario") -> Scenario:
    """Validate a parsed scenario mapping; return a Scenario or raise BadInput (one line, with the line)."""
    if not isinstance(data, dict):
        raise BadInput("expected a mapping of scenario keys", path=path, line=1)
    for k in data:
        if k not in FIELDS:
            _unknown(k, FIELDS, path, data)
    for k, (_, required, _, _) in FIELDS.items():
        if required and k not in data:
            raise BadInput("missing required key", path=path, field=k)
    vals = {}
    for k, (kind, _, default, _) in FIELDS.items():
        if k not in data:
            vals[k] = default
            continue
        v = data[k]
        if kind == "str":
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                _bad(f"expected text, got {type(v).__name__}", path, data, k)
            vals[k] = str(v)
        elif kind == "site":
            if v not in CURRENCIES:
                _bad(f"unknown site {v!r} (cn or intl)", path, data, k)
            vals[k] = v
        elif kind == "month":
            vals[k] = parse_month(v, field=k, path=path, line=data.line_of(k) if isinstance(data, Mapping) else None)
        elif kind == "int":
            vals[k] = int(_number(v, k, path, data, integer=True))
        elif kind == "decimal":
            vals[k] = _number(v, k, path, data)
        elif kind == "decimal?":
            vals[k] = None if v is None else _number(v, k, path, data)
        elif kind == "bool":
            if not isinstance(v, bool):
                _bad(f"expected true or false, got {v!r}", path, data, k)
            vals[k] = v
        elif kind == "class":
            if v not in STORAGE_CLASSES:
                _bad(f"unknown storage class {v!r} (one of {', '.join(STORAGE_CLASSES)})", path, data, k)
            vals[k] = v
        elif kind == "redundancy":
            if v not in REDUNDANCIES:
                _bad(f"unknown redundancy {v!r} (LRS or ZRS)", path, data, k)
            vals[k] = v
        elif kind == "requests":
            vals[k] = _submapping(v, k, REQUEST_DEFAULTS, path, data,
                                  lambda kk, vv, m: int(_number(vv, f"{k}.{kk}", path, m, integer=True)))
            for kk, vv in vals[k].items():
                if vv < 0:
                    _bad("must not be negative", path, v, kk)
        elif kind == "profile":
            if not isinstance(v, list) or len(v) != 24:
                _bad("expected a list of 24 hourly weights (hours 00..23, Asia/Shanghai)", path, data, k)
            weights = [_number(w, k, path, data) for w in v]
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                _bad("weights must be >= 0 with a positive sum", path, data, k)
            vals[k] = weights
        elif kind == "usage":
            def check_usage(kk, vv, m):
                if kk == "charge_failed_splices":
                    if not isinstance(vv, bool):
                        _bad(f"expected true or false, got {vv!r}", path, m, kk)
                    return vv
                if kk == "imm_billing_start":
                    return parse_instant(vv, field=f"usage.{kk}", path=path,
                                         line=m.line_of(kk) if isinstance(m, Mapping) else None).isoformat()
                if kk == "min_billable_kb":
                    return _number(vv, f"usage.{kk}", path, m)
                if not isinstance(vv, dict):
                    _bad("expected a mapping of storage class to days", path, m, kk)
                out = dict(MIN_STORAGE_DAYS)
                for c, days in vv.items():
                    if c not in STORAGE_CLASSES:
                        _bad(f"unknown storage class {c!r}", path, vv, c)
                    out[c] = _number(days, f"usage.min_storage_days.{c}", path, vv)
                return out
            vals[k] = _submapping(v, k, USAGE_DEFAULTS, path, data, check_usage)
        elif kind == "calibration":
            vals[k] = _parse_calibration(v, path, data)
        elif kind == "mix":
            vals[k] = _parse_mix(v, path, data)
        elif kind == "prices":
            if not isinstance(v, list):
                _bad("expected a list of price entries (same schema as the price books)", path, data, k)
            vals[k] = v
    if vals["requests"] is None:
        vals["requests"] = dict(REQUEST_DEFAULTS)
    if vals["usage"] is None:
        vals["usage"] = dict(USAGE_DEFAULTS)
    last = add_months(*vals["start"], vals["months"] - 1)
    if last[0] > YEAR_MAX:
        _bad(f"the horizon ends in {last[0]:04d}-{last[1]:02d}, after {YEAR_MAX}-12", path, data, "months")
    for k in ("tasks_per_month", "sources_per_task"):
        vals[k] = Decimal(vals[k])
    given = set(data)
    return Scenario(path=str(path), given=given, **vals)


# A kind of task in `mix:`: these keys, each defaulting to the scenario's own value (sources_per_task may be
# fractional: an average over the kind). `source_classes` splits a kind's sources by class.
MIX_KEYS = {"name": "str", "share": "decimal", "sources_per_task": "decimal", "source_size_mb": "decimal",
            "source_storage_class": "class", "archive_direct_read": "bool", "source_classes": "sources",
            "target_size_mb": "decimal", "target_storage_class": "class", "target_redundancy": "redundancy",
            "target_retention_days": "decimal?", "failure_rate": "decimal", "accelerated_gb_per_task": "decimal"}
SOURCE_CLASS_KEYS = {"storage_class": "class", "share": "decimal", "size_mb": "decimal",
                     "archive_direct_read": "bool", "restored": "bool"}
# Shares must add up to 1 within this (calibrated shares are written with 6 decimals).
SHARE_SLACK = Decimal("0.000001")


@dataclass
class SourceClass:
    """One class of a kind's sources: its share of the kind's sources, size (MB), direct read, restored."""

    storage_class: str
    share: Decimal
    size_mb: Decimal | None = None
    archive_direct_read: bool | None = None
    restored: bool = False


@dataclass
class Kind:
    """One kind of task in `mix:`; None = the scenario's own value."""

    share: Decimal
    name: str | None = None
    values: dict = field(default_factory=dict)
    source_classes: list | None = None


def _mix_value(kind, v, key, path, m):
    if kind == "decimal":
        return _number(v, key, path, m)
    if kind == "decimal?":
        return None if v is None else _number(v, key, path, m)
    if kind == "bool":
        if not isinstance(v, bool):
            _bad(f"expected true or false, got {v!r}", path, m, key)
        return v
    if kind == "str":
        return str(v)
    table = STORAGE_CLASSES if kind == "class" else REDUNDANCIES
    if v not in table:
        _bad(f"unknown {'storage class' if kind == 'class' else 'redundancy'} {v!r} (one of "
             f"{', '.join(table)})", path, m, key)
    return v


def _item(m, key, keys, path, seq, i):
    """Check one mapping of a list (`key`[i]); returns its values by key."""
    if not isinstance(m, dict):
        line = seq.item_lines[i] if hasattr(seq, "item_lines") else None
        raise BadInput(f"expected a mapping, got {type(m).__name__}", path=path, line=line, field=f"{key}[{i}]")
    out = {}
    for k, v in m.items():
        if k not in keys:
            _unknown(f"{key}[{i}].{k}", [f"{key}[{i}].{d}" for d in keys], path, m)
        out[k] = (_sources(v, f"{key}[{i}].{k}", path, m) if keys[k] == "sources"
                  else _mix_value(keys[k], v, f"{key}[{i}].{k}", path, m))
    if "share" not in out:
        raise BadInput("missing required key share", path=path, line=getattr(m, "line", None), field=f"{key}[{i}]")
    return out


def _shares_sum(items, key, path, seq):
    total = sum((x.share for x in items), Decimal(0))
    if abs(total - 1) > SHARE_SLACK:
        raise BadInput(f"the shares add up to {total}, not 1", path=path, line=getattr(seq, "line", None), field=key)


def _sources(v, key, path, data):
    if not isinstance(v, list) or not v:
        _bad("expected a list of source classes ({storage_class, share, size_mb})", path, data, key)
    out = []
    for i, m in enumerate(v):
        vals = _item(m, key, SOURCE_CLASS_KEYS, path, v, i)
        if "storage_class" not in vals:
            raise BadInput("missing required key storage_class", path=path, line=getattr(m, "line", None),
                           field=f"{key}[{i}]")
        out.append(SourceClass(**vals))
    _shares_sum(out, key, path, v)
    return out


def _parse_mix(v, path, data) -> list[Kind]:
    """`mix:`: a non-empty list of kinds whose shares add up to 1 (BadInput with the line otherwise)."""
    if not isinstance(v, list) or not v:
        _bad("expected a list of task kinds (share, sizes, classes)", path, data, "mix")
    kinds = []
    for i, m in enumerate(v):
        vals = _item(m, "mix", MIX_KEYS, path, v, i)
        share, name, sources = vals.pop("share"), vals.pop("name", None), vals.pop("source_classes", None)
        kinds.append(Kind(share=share, name=name, values=vals, source_classes=sources))
    _shares_sum(kinds, "mix", path, v)
    return kinds


CALIBRATION_KEYS = ("window", "tasks", "unmeasured", "note")


def _parse_calibration(v, path, data) -> dict:
    """`calibration:` (written by `costkit scenario from-history`): window, tasks, unmeasured keys, note."""
    if not isinstance(v, dict):
        _bad("expected a mapping (window, tasks, unmeasured, note)", path, data, "calibration")
    for k in v:
        if k not in CALIBRATION_KEYS:
            _unknown(f"calibration.{k}", [f"calibration.{c}" for c in CALIBRATION_KEYS], path, v)
    unmeasured = v.get("unmeasured") or []
    if not isinstance(unmeasured, list) or not all(isinstance(x, str) for x in unmeasured):
        _bad("expected a list of scenario keys", path, v, "unmeasured")
    return {"window": str(v.get("window", "")), "tasks": v.get("tasks"), "unmeasured": list(unmeasured),
            "note": str(v.get("note", ""))}


def load_scenario(path) -> Scenario:
    """Read and validate a scenario file."""
    return parse_scenario(load_yaml_file(path), path)


def load_scenario_text(text: str, path="scenario") -> Scenario:
    return parse_scenario(load_yaml_text(text, path), path)
