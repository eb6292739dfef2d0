"""What the store collected in the audited month: tasks per billing day, and the coverage calendar (collected,
partial, gap, no tasks) from the recorded collection and import windows."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from costkit.audit.days import UTC, day_bounds


@dataclass
class Coverage:
    calendar: list        # one row per day: state, tasks, succeeded, failed, covered_percent
    gaps: list            # the store's coverage gaps inside the month
    known: bool           # any collection window recorded at all
    collected_until: str | None   # end of the latest collected window (ISO UTC)
    gap_days: set         # days (YYYY-MM-DD) in a gap, partly covered, or without any collected task


def task_days(store, period, imm_start) -> dict:
    """Per UTC+8 day of task completion: tasks, succeeded, failed, succeeded before the cutover."""
    from costkit.engine.period import HOUR_US, _day
    sql = f"""SELECT {_day(f'epoch_us(end_time) // {HOUR_US}')} AS day, count(*),
                     count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed'),
                     count(*) FILTER (WHERE status = 'Succeeded' AND end_time < $imm)
              FROM tasks WHERE status IN ('Succeeded', 'Failed') AND end_time >= $p0 AND end_time < $p1
              GROUP BY ALL"""
    with store._lock:
        rows = store._con.execute(sql, {"p0": period.start, "p1": period.end, "imm": imm_start}).fetchall()
    return {r[0]: {"tasks": int(r[1]), "succeeded": int(r[2]), "failed": int(r[3]), "pre_cutover": int(r[4])}
            for r in rows}


def month_coverage(store, period, days: list[date], tasks: dict, warnings: list) -> Coverage:
    """The month's coverage (`tasks` from `task_days`); warns when no window is recorded at all."""
    with store._lock:
        active = set(store._con.execute("SELECT DISTINCT region, project FROM tasks WHERE end_time >= ? AND "
                                        "end_time < ?", [period.start, period.end]).fetchall())
    calendar, gaps, known, collected_until = _coverage_days(store, days, tasks, active)
    if not known:
        warnings.append("No collection run or import window is recorded: coverage is unknown, so only days "
                        "without any collected task count as coverage gaps.")
    gap_days = {c["day"] for c in calendar if c["state"] in ("gap", "partial")}
    gap_days |= {d.isoformat() for d in days if not tasks.get(d.isoformat(), {}).get("tasks")}
    return Coverage(calendar, gaps, known, collected_until, gap_days)


def _coverage_days(store, days: list[date], task_days: dict, active: set) -> tuple:
    """(calendar rows, gaps inside the month, whether any collection window is recorded, the end of the
    latest collected window). `active`: the (region, project) pairs with tasks in the month."""
    first_s, _ = day_bounds(days[0])
    _, last_e = day_bounds(days[-1])
    cov = store.coverage(now=last_e)
    known = bool(len(cov)) and bool((cov["kind"] == "collected").any())
    windows = defaultdict(list)
    gaps = []
    for r in cov.to_dict("records"):
        key = (r["region"], r["project"])
        s = r["start"].to_pydatetime() if r["start"] is not None and str(r["start"]) != "NaT" else None
        e = r["end"].to_pydatetime()
        if r["kind"] == "collected":
            windows[key].append((s, e))
        else:
            s2 = max(s or first_s, first_s)
            e2 = min(e, last_e)
            if s2 < e2 and ((r["region"], r["project"]) in active or r["start"] is not None):
                gaps.append({"region": r["region"], "project": r["project"], "start": s2.isoformat(),
                             "end": e2.isoformat(), "note": r["note"]})
    # projects that matter this month: with tasks in it, or with a collected window overlapping it
    keys = set(active) | {k for k, spans in windows.items() if any(a < last_e and b > first_s for a, b in spans)}
    collected_until = max((b for spans in windows.values() for _, b in spans), default=None)
    rows = [_calendar_row(d, task_days.get(d.isoformat(), {}), windows, keys, known) for d in days]
    return rows, gaps, known, None if collected_until is None else collected_until.astimezone(UTC).isoformat()


def _calendar_row(d: date, info: dict, windows: dict, keys: set, known: bool) -> dict:
    """One calendar day: covered when every project that matters was collected all day."""
    s, e = day_bounds(d)
    if known and windows and keys:   # no project matters: nothing to weigh
        fracs = []
        for key2 in keys:
            spans = windows.get(key2, [])
            covered = sum(max(0.0, (min(e, b) - max(s, a)).total_seconds()) for a, b in spans)
            fracs.append(min(1.0, covered / 86400))
        state = "collected" if all(f >= 0.999999 for f in fracs) else (
            "gap" if all(f <= 0 for f in fracs) else "partial")
        share = min(fracs)
    else:
        state = "collected" if info.get("tasks") else "gap"
        share = 1.0 if info.get("tasks") else 0.0
    if state == "collected" and not info.get("tasks"):
        state = "no tasks"
    return {"day": d.isoformat(), "weekday": d.strftime("%a"), "state": state, "tasks": info.get("tasks", 0),
            "succeeded": info.get("succeeded", 0), "failed": info.get("failed", 0),
            "covered_percent": f"{share * 100:.0f}"}
