"""The measured scenario assembled from calibration's SQL sums (costkit.engine.calibrate): values, the mix of
kinds, and a comment for each value saying what it was measured from."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from costkit.core.errors import BadInput
from costkit.core.timeutil import SHANGHAI, add_months, hours_between, month_label, month_start
from costkit.model.usage import MB

LIFE_BOUNDS = (24, 24 * 7, 24 * 30, 24 * 90)
LIFE_NAMES = ("under 1 day", "1-7 days", "7-30 days", "30-90 days", "90 days or more")
DAYS_PER_MONTH = Decimal("30.436875")   # the mean Gregorian month, for a daily growth rate as a monthly one


@dataclass
class Calibration:
    """A measured scenario: `data` (parse_scenario input), `comments` (value path -> what it was measured
    from), `notes` (header lines), `unmeasured` (keys that took defaults) and the window measured."""

    data: dict
    comments: dict
    notes: list
    unmeasured: list
    start: datetime
    end: datetime
    tasks: int
    daily: list = field(default_factory=list)   # [(YYYY-MM-DD, tasks completing that day)]


def _dec(x, places=6) -> Decimal:
    """`x` as a Decimal rounded half-even to `places` decimals, trailing zeros dropped (for YAML)."""
    d = Decimal(str(x)).quantize(Decimal(1).scaleb(-places))
    return d.normalize() if d != 0 else Decimal(0)



def first_month(p0: datetime, start_month) -> tuple[int, int]:
    if start_month:
        return start_month
    s = p0.astimezone(SHANGHAI)
    return s.year, s.month


def month_span(p0: datetime, p1: datetime, first) -> int:
    """Months from `first` through the month holding the window's last hour."""
    last = (p1 - timedelta(hours=1)).astimezone(SHANGHAI)
    n = (last.year - first[0]) * 12 + last.month - first[1] + 1
    return max(1, min(n, 120))

CARRY_IN = ("storage carried in from targets written before {start} is not part of a scenario: `costkit cost` "
            "of a month includes it, `estimate` does not")


def _pct(a, b) -> str:
    return f"{100 * a / b:.1f} %" if b else "n/a"


def _fix_shares(shares: list[Decimal]) -> list[Decimal]:
    """Shares rounded to 6 decimals, the largest adjusted so that they add up to exactly 1."""
    if not shares:
        return shares
    out = [_dec(s) for s in shares]
    i = max(range(len(out)), key=lambda j: out[j])
    out[i] = _dec(out[i] + 1 - sum(out))
    return out


def _kind_name(cls, red, small, life) -> str:
    kept = "kept" if life < 0 else LIFE_NAMES[life]
    return f"{cls} {red} target{' under the minimum billable size' if small else ''}, {kept}"


def _source_classes(rows, n_tasks):
    """(sources per task, [source class mapping], unknown sources, all sources) of one kind's source rows."""
    total = sum(r[7] for r in rows)
    unknown = sum(r[9] for r in rows)
    groups = []
    for scls, direct, restored, n, nbytes, _ in ((r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows):
        g = {"storage_class": scls, "share": Decimal(n) / total, "size_mb": _dec(Decimal(int(nbytes)) / n / MB, 9)}
        if scls == "Archive":
            g["archive_direct_read"] = bool(direct)
            if restored:
                g["restored"] = True
        groups.append(g)
    for g, s in zip(groups, _fix_shares([g["share"] for g in groups])):
        g["share"] = s
    return _dec(Decimal(total) / n_tasks), groups, unknown, total


def _mix(kinds, sources, comments, unmeasured):
    by_kind = defaultdict(list)
    for r in sources:
        by_kind[tuple(r[:4])].append(r)
    n_all = sum(k[4] for k in kinds)
    shares = _fix_shares([Decimal(k[4]) / n_all for k in kinds])
    mix, src_unknown, src_all = [], 0, 0
    for i, (k, share) in enumerate(zip(kinds, shares)):
        cls, red, small, life, n, size, unknown, avg_lt, n_lt = k
        spt, groups, su, sa = _source_classes(by_kind[(cls, red, small, life)], n)
        src_unknown, src_all = src_unknown + su, src_all + sa
        kind = {"name": _kind_name(cls, red, small, life), "share": share, "sources_per_task": spt,
                "source_classes": groups, "target_storage_class": cls, "target_redundancy": red,
                "target_size_mb": _dec(Decimal(int(size)) / n / MB, 9),
                "target_retention_days": None if life < 0 else _dec(Decimal(str(avg_lt)) / 24, 4)}
        p = f"mix[{i}]"
        comments[f"{p}.share"] = f"{n:,} of {n_all:,} succeeded tasks with a target"
        comments[f"{p}.sources_per_task"] = (f"{sa:,} sources / {n:,} tasks; {_pct(sa - su, sa)} of sources "
                                             "inventoried (others: the settings' default size and class)")
        comments[f"{p}.target_size_mb"] = (f"mean of {n:,} targets; {_pct(n - unknown, n)} inventoried"
                                           + (" (others: the settings' default)" if unknown else ""))
        comments[f"{p}.target_retention_days"] = (
            f"no deletion or overwrite seen for these {n:,} targets (kept)" if life < 0 else
            f"mean lifetime of {n_lt:,} targets from completion to deletion or overwrite")
        if unknown == n:
            unmeasured.append(f"{p}.target_size_mb")
        if sa and su == sa:
            unmeasured.append(f"{p}.source_classes")
        mix.append(kind)
    return mix, src_unknown, src_all


def _profile(hours):
    total = sum(hours)
    return _fix_shares([Decimal(h) / total for h in hours]) if total else None


def _days(d: Decimal) -> str:
    return f"{d.quantize(Decimal('0.01')).normalize():f}"


def _start_count(daily, p0, p1, first, growth):
    """(tasks in the first scenario month, comment): the measured daily rate of that month x its days."""
    y, m = first
    ms, me = month_start(y, m), month_start(*add_months(y, m, 1))
    days_in_month = Decimal(hours_between(ms, me)) / 24
    lo, hi = max(ms, p0), min(me, p1)
    if lo < hi:
        n = sum(c for d, c in daily if ms.astimezone(SHANGHAI).date().isoformat() <= d
                < me.astimezone(SHANGHAI).date().isoformat())
        days = Decimal(hours_between(lo, hi)) / 24
        count = int((Decimal(n) / days * days_in_month).to_integral_value())
        return count, (f"{n:,} tasks in {_days(days)} days of {month_label(y, m)} = "
                       f"{_dec(Decimal(n) / days, 1)}/day x {_days(days_in_month)} days")
    if ms < p0:
        raise BadInput(f"--start {month_label(y, m)} is before the history window ({p0.isoformat()})", field="--start")
    last = (p1 - timedelta(hours=1)).astimezone(SHANGHAI)
    c0, _ = _start_count(daily, p0, p1, (last.year, last.month), None)
    ahead = (y - last.year) * 12 + m - last.month
    g = growth[0] if growth else Decimal(0)
    count = int((Decimal(c0) * (1 + g) ** ahead).to_integral_value())
    return count, f"the window's last month ({month_label(last.year, last.month)}, {c0:,}) grown {ahead} months"


def build_scenario(*, settings, p0, p1, daily, hours, ok, failed, kinds, sources, growth, start_month,
                   projects, sample=1) -> Calibration:
    """The Calibration of the measured sums (see costkit.engine.calibrate)."""
    s = settings.splice
    n = ok + failed
    first = first_month(p0, start_month)
    comments, unmeasured = {}, []
    window = f"{p0.astimezone(SHANGHAI).isoformat()} .. {p1.astimezone(SHANGHAI).isoformat()}"
    count, why = _start_count(daily, p0, p1, first, growth)
    data = {"name": "calibrated from history" + (f" ({', '.join(projects)})" if projects else ""),
            "site": settings.site, "start": month_label(*first), "months": month_span(p0, p1, first),
            "tasks_per_month": count}
    comments["tasks_per_month"] = why
    comments["months"] = "the months of the window"
    if growth:
        data["monthly_growth"] = growth[0]
        comments["monthly_growth"] = f"log-linear fit of tasks per day over {growth[1]} days with tasks"
    else:
        data["monthly_growth"] = Decimal(0)
        comments["monthly_growth"] = "NOT MEASURED (fewer than 14 days with tasks): default 0"
        unmeasured.append("monthly_growth")
    data["failure_rate"] = _dec(Decimal(failed) / n)
    comments["failure_rate"] = f"{failed:,} failed of {n:,} finished tasks"
    mix, src_unknown, src_all = _mix(kinds, sources, comments, unmeasured) if kinds else ([], 0, 0)
    top = _top_level(s, mix)
    data.update(top)
    for k in top:
        comments.setdefault(k, "the mix's overall mean; each kind below carries its own" if mix else
                            "NOT MEASURED (no succeeded task with a target): the settings' default")
        if not mix:
            unmeasured.append(k)
    data["accelerated_gb_per_task"] = s.accelerated_gb_per_task
    comments["accelerated_gb_per_task"] = ("NOT MEASURED (the store records no accelerated traffic): "
                                           "the settings' value")
    unmeasured.append("accelerated_gb_per_task")
    prof = _profile(hours)
    if prof:
        data["daily_profile"] = prof
        comments["daily_profile"] = f"share of {n:,} tasks completing in each hour 00..23 (Asia/Shanghai)"
    for key in ("requests", "usage", "prices"):
        if key in settings.given:
            data[key] = getattr(s, key)
            comments[key] = "from the settings file (not measured)"
    if mix:
        data["mix"] = mix
    notes = [f"Measured from {n:,} finished tasks completing {window} ({len(daily)} days with tasks); "
             f"{_pct(src_all - src_unknown, src_all)} of sources inventoried"
             + (f"; the kinds from a 1-in-{sample} sample of the succeeded tasks (by row hash)." if sample > 1
                else "."),
             "S" + CARRY_IN.format(start=p0.astimezone(SHANGHAI).isoformat())[1:] + "."]
    data["calibration"] = {"window": window, "tasks": n, "unmeasured": list(unmeasured),
                           "note": CARRY_IN.format(start=p0.astimezone(SHANGHAI).isoformat())}
    return Calibration(data=data, comments=comments, notes=notes, unmeasured=unmeasured, start=p0, end=p1,
                       tasks=n, daily=daily)


def _top_level(s, mix) -> dict:
    """Scenario-level splice values: the mix's means (weighted by share), or the settings' defaults."""
    if not mix:
        return {"sources_per_task": int(s.sources_per_task), "source_size_mb": s.source_size_mb,
                "source_storage_class": s.source_storage_class, "archive_direct_read": s.archive_direct_read,
                "target_size_mb": s.target_size_mb, "target_storage_class": s.target_storage_class,
                "target_redundancy": s.target_redundancy, "target_retention_days": s.target_retention_days}
    spt = sum(k["share"] * k["sources_per_task"] for k in mix)
    src = sum(k["share"] * k["sources_per_task"] * g["share"] * g["size_mb"] for k in mix for g in k["source_classes"])
    weights = defaultdict(Decimal)
    for k in mix:
        for g in k["source_classes"]:
            weights[g["storage_class"]] += k["share"] * g["share"]
    biggest = max(mix, key=lambda k: k["share"])
    return {"sources_per_task": max(1, min(10, int(spt.to_integral_value()))),
            "source_size_mb": _dec(src / spt, 9), "source_storage_class": max(weights, key=weights.get),
            "archive_direct_read": any(g.get("archive_direct_read") for k in mix for g in k["source_classes"]),
            "target_size_mb": _dec(sum(k["share"] * k["target_size_mb"] for k in mix), 9),
            "target_storage_class": biggest["target_storage_class"],
            "target_redundancy": biggest["target_redundancy"],
            "target_retention_days": biggest["target_retention_days"]}


__all__ = ["build_scenario", "CARRY_IN"]
