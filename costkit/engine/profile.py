"""What the forecast and the history engine share about a splice: the scenario's splice profile (the input of
the usage model), how its assumptions are shown (plain values), and which price confidences need no warning."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from costkit.core.money import fmt_quantity, to_fraction
from costkit.model.scenario import Scenario
from costkit.model.usage import MB, SpliceProfile, retention_hours

# Price-entry confidences a report takes as settled; any other priced entry gets a "confirm it" warning.
CONFIDENT = ("official", "official-example", "contract", "bill", "user")


def splice_profile(scn: Scenario, **over) -> SpliceProfile:
    """The `SpliceProfile` of one task of `scn` (sizes in bytes); `over` replaces scenario drivers by name
    (sources_per_task, source_size_mb, target_size_mb, target_retention_days, accelerated_gb_per_task)."""
    u = scn.usage
    return SpliceProfile(
        sources=to_fraction(over.get("sources_per_task", scn.sources_per_task)),
        source_bytes=to_fraction(over.get("source_size_mb", scn.source_size_mb)) * MB,
        source_class=scn.source_storage_class, archive_direct_read=scn.archive_direct_read,
        target_bytes=to_fraction(over.get("target_size_mb", scn.target_size_mb)) * MB,
        target_class=scn.target_storage_class, target_redundancy=scn.target_redundancy,
        retention_hours=retention_hours(over.get("target_retention_days", scn.target_retention_days)),
        accelerated_gb=to_fraction(over.get("accelerated_gb_per_task", scn.accelerated_gb_per_task)),
        get_per_source=scn.requests["get_per_source"], head_per_source=scn.requests["head_per_source"],
        put_per_task=scn.requests["put_per_task"], charge_failed_splices=u["charge_failed_splices"],
        min_billable_kb=to_fraction(u["min_billable_kb"]),
        min_storage_days={k: to_fraction(v) for k, v in u["min_storage_days"].items()})


# Drivers a sensitivity run may move; in a mix each kind's own value moves by the same factor.
_SCALED = ("sources_per_task", "source_size_mb", "target_size_mb", "target_retention_days",
           "accelerated_gb_per_task", "failure_rate")


def kind_profiles(scn: Scenario, **over) -> list[tuple[Fraction, list[SpliceProfile], Fraction]]:
    """For each kind of `scn.mix`: (share of the volume, one SpliceProfile per source class, failure rate).
    A kind's unset keys take the scenario's; `over` moves a driver by the factor it moves the scenario's
    value (a kind's value x over / scenario value). The profiles of one kind differ only in their sources:
    `sources` is the kind's sources per task x that class's share; the first profile carries the target."""
    out = []
    for kind in scn.mix:
        vals = {}
        for key in _SCALED:
            v = kind.values.get(key, getattr(scn, key))
            if key in over and v is not None:
                base = getattr(scn, key)
                v = to_fraction(over[key]) if not base else to_fraction(v) * to_fraction(over[key]) / to_fraction(base)
            vals[key] = v
        groups = kind.source_classes or [None]
        profiles = []
        for g in groups:
            p = splice_profile(scn, **{k: v for k, v in vals.items() if k != "failure_rate"})
            p.source_class = kind.values.get("source_storage_class", scn.source_storage_class)
            p.archive_direct_read = kind.values.get("archive_direct_read", scn.archive_direct_read)
            p.target_class = kind.values.get("target_storage_class", scn.target_storage_class)
            p.target_redundancy = kind.values.get("target_redundancy", scn.target_redundancy)
            if g is not None:
                p.sources = p.sources * to_fraction(g.share)
                p.source_class = g.storage_class
                if g.size_mb is not None:
                    p.source_bytes = to_fraction(g.size_mb) * MB
                if g.archive_direct_read is not None:
                    p.archive_direct_read = g.archive_direct_read
                p.source_restored = g.restored
            profiles.append(p)
        out.append((to_fraction(kind.share), profiles, to_fraction(vals["failure_rate"])))
    return out


def mix_assumptions(scn: Scenario) -> list[dict]:
    """Rows for `mix:` (one per kind) and `calibration:` (what was measured; unmeasured keys flagged)."""
    out = []
    for i, k in enumerate(scn.mix or []):
        vals = {**plain(k.values), **({"source_classes": [plain(vars(g)) for g in k.source_classes]}
                                      if k.source_classes else {})}
        out.append({"key": f"mix[{i}]", "value": {"name": k.name, "share": plain(k.share), **vals},
                    "defaulted": False, "description": "task kind: its share of the volume; keys not given "
                                                       "take the scenario's"})
    cal = scn.calibration
    if cal:
        out.append({"key": "calibration", "value": f"measured from {cal['tasks']} tasks, {cal['window']}",
                    "defaulted": False, "description": cal["note"]})
        for key in cal["unmeasured"]:
            out.append({"key": key, "value": "not measured", "defaulted": True,
                        "description": "not measured from the history: a documented default (see the "
                                       "scenario's comment)"})
    return out


def plain(v):
    """`v` with every exact number (Decimal, Fraction) as a decimal string, through dicts and lists (for JSON)."""
    if isinstance(v, (Decimal, Fraction)):
        return fmt_quantity(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


__all__ = ["CONFIDENT", "splice_profile", "kind_profiles", "mix_assumptions", "plain"]
