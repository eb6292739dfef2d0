"""Settings for pricing the history (`costkit cost`) and for `costkit inventory`: one small YAML file.

`--settings FILE` (or env `COSTKIT_SETTINGS`); without it every value takes its default. The keys are the
scenario keys that describe one splice (same names, same validation, same defaults as `estimate`), used
for what the inventory does not know, plus `buckets:`:

```yaml
site: cn                         # cn (CNY) or intl (USD); `--site` overrides it
source_size_mb: 1                # size of a source whose object facts are unknown
source_storage_class: Standard   # its class
archive_direct_read: false       # direct read of a bucket whose setting the API does not expose
target_size_mb: 1                # size of a target whose object facts are unknown
target_storage_class: Standard   # its class, when neither the object nor its bucket is known
target_redundancy: LRS           # redundancy of a target bucket not reported by GetBucketInfo
target_retention_days: null      # unknown targets: days kept (null = kept through the period)
lifecycle_lag_hours: 0           # a lifecycle rule deletes/transitions this many hours after its instant (0..48)
accelerated_gb_per_task: 0       # GB per task through transfer acceleration
requests: {get_per_source: 1, head_per_source: 1, put_per_task: 1}
usage: {charge_failed_splices: false, imm_billing_start: "2025-07-28T11:00:00+08:00", min_billable_kb: 64}
prices: []                       # price entries on top of the book and --prices (highest precedence)
advise: {sources_read_elsewhere_per_month: 0, targets_read_elsewhere_per_month: 0}   # for `costkit advise`
buckets:                         # per-bucket configuration, used where the API does not say
  my-bucket: {archive_direct_read: true, redundancy: ZRS, storage_class: IA}
```
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from costkit.core.errors import BadInput
from costkit.core.catalog import REDUNDANCIES, STORAGE_CLASSES
from costkit.model.scenario import Scenario, parse_scenario
from costkit.core.yamlio import Mapping, load_yaml_file

SETTINGS_KEYS = ("site", "region", "source_size_mb", "source_storage_class", "archive_direct_read",
                 "target_size_mb", "target_storage_class", "target_redundancy", "target_retention_days",
                 "accelerated_gb_per_task", "requests", "usage", "prices", "buckets", "advise",
                 "lifecycle_lag_hours")
# `advise:` facts costkit cannot see, asked for by `costkit advise` (reads per object per month, >= 0).
ADVISE_KEYS = ("sources_read_elsewhere_per_month", "targets_read_elsewhere_per_month")
# OSS runs lifecycle rules daily from 08:00 UTC+8 and finishes within 24 hours (operations-facts.md section 1):
# storage of an expiring object ends between the rule's instant and about 24 hours later. Default: the instant.
LIFECYCLE_LAG_MAX = 48
BUCKET_KEYS = {"archive_direct_read": bool, "redundancy": REDUNDANCIES, "storage_class": STORAGE_CLASSES}
# Scenario keys that a settings file does not take (they describe a forecast, not the history).
_DUMMY = {"name": "settings", "start": "2025-01", "months": 1, "tasks_per_month": 0, "sources_per_task": 1,
          "source_size_mb": 1, "target_size_mb": 1, "site": "cn"}


@dataclass
class Settings:
    """Validated settings. `splice` is a Scenario carrying the splice keys (defaults where not given)."""

    splice: Scenario
    buckets: dict = field(default_factory=dict)
    path: str | None = None
    advise: dict = field(default_factory=dict)   # ADVISE_KEYS given -> Fraction
    given: set = field(default_factory=set)
    lifecycle_lag_hours: int = 0

    @property
    def site(self) -> str:
        return self.splice.site


def parse_settings(data, path="settings") -> Settings:
    """Validate a parsed settings mapping (BadInput with file:line on any problem)."""
    if data is None:
        data = Mapping()
    if not isinstance(data, dict):
        raise BadInput("expected a mapping of settings keys", path=path, line=1)
    for k in data:
        if k not in SETTINGS_KEYS:
            line = data.line_of(k) if isinstance(data, Mapping) else None
            raise BadInput(f"unknown settings key (known: {', '.join(SETTINGS_KEYS)})", path=path, line=line,
                           field=k)
    buckets_raw = data.get("buckets") or {}
    advise = _advise(data.get("advise"), path)
    scenario_part = Mapping({**_DUMMY, **{k: v for k, v in data.items()
                                          if k not in ("buckets", "advise", "lifecycle_lag_hours")}})
    lag = data.get("lifecycle_lag_hours", 0)
    if isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag <= LIFECYCLE_LAG_MAX:
        line = data.line_of("lifecycle_lag_hours") if isinstance(data, Mapping) else None
        raise BadInput(f"expected whole hours from 0 to {LIFECYCLE_LAG_MAX}, got {lag!r}", path=path, line=line,
                       field="lifecycle_lag_hours")
    scenario_part.line = getattr(data, "line", 0)
    scenario_part.key_lines = dict(getattr(data, "key_lines", {}))
    splice = parse_scenario(scenario_part, path)
    if not isinstance(buckets_raw, dict):
        raise BadInput("expected a mapping of bucket name to settings", path=path, field="buckets")
    buckets = {}
    for name, conf in buckets_raw.items():
        if not isinstance(conf, dict):
            raise BadInput("expected a mapping", path=path, field=f"buckets.{name}")
        for k, v in conf.items():
            kind = BUCKET_KEYS.get(k)
            if kind is None:
                raise BadInput(f"unknown key (known: {', '.join(BUCKET_KEYS)})", path=path,
                               field=f"buckets.{name}.{k}")
            if kind is bool and not isinstance(v, bool):
                raise BadInput(f"expected true or false, got {v!r}", path=path, field=f"buckets.{name}.{k}")
            if kind is not bool and v not in kind:
                raise BadInput(f"{v!r} is not one of {', '.join(kind)}", path=path, field=f"buckets.{name}.{k}")
        buckets[str(name)] = dict(conf)
    return Settings(splice=splice, buckets=buckets, path=None if path == "settings" else str(path), given=set(data),
                    advise=advise, lifecycle_lag_hours=lag)


def _advise(raw, path) -> dict:
    """The `advise:` mapping: ADVISE_KEYS -> non-negative exact numbers (Fractions)."""
    from costkit.core.money import to_fraction
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput("expected a mapping (keys: " + ", ".join(ADVISE_KEYS) + ")", path=path, field="advise")
    out = {}
    for k, v in raw.items():
        line = raw.line_of(k) if isinstance(raw, Mapping) else None
        if k not in ADVISE_KEYS:
            raise BadInput(f"unknown key (known: {', '.join(ADVISE_KEYS)})", path=path, line=line,
                           field=f"advise.{k}")
        try:
            if isinstance(v, bool):
                raise ValueError
            f = to_fraction(v)
        except (ValueError, TypeError, ArithmeticError):
            raise BadInput(f"expected a number of reads per object per month, got {v!r}", path=path, line=line,
                           field=f"advise.{k}") from None
        if f < 0:
            raise BadInput(f"must be 0 or more, got {v!r}", path=path, line=line, field=f"advise.{k}")
        out[k] = f
    return out


def load_settings(path=None, *, site: str | None = None) -> Settings:
    """Settings from `path`, else env COSTKIT_SETTINGS, else the defaults; `site` overrides the file's."""
    path = path or os.environ.get("COSTKIT_SETTINGS") or None
    data = load_yaml_file(path) if path else None
    s = parse_settings(data, path or "settings")
    if site is not None:
        if site not in ("cn", "intl"):
            raise BadInput(f"unknown site {site!r} (cn or intl)", field="--site")
        s.splice.site = site
    return s
