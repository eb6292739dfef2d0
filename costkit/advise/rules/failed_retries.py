"""Failed tasks that are retried: a later task writes the same target or reads the same sources, so every
failed attempt read its sources for nothing. What-if: the failed attempts do not happen (their cause is
fixed before resubmitting); the engine replays the month without them. Failures on unreadable Archive
sources are left to `archive_no_direct_read`."""
from __future__ import annotations

from collections import Counter

from costkit.advise.rules.archive_no_direct_read import blocked_tasks
from costkit.advise.rules.common import evidence, instant_text
from costkit.advise.whatif import Proposal, WhatIf

NAME = "failed_retries"
TITLE = "Failed tasks retried: sources read again"


def _retried(ctx) -> list[tuple[dict, dict]]:
    """(failed task, the later task that retried it) for each Failed period task with a later attempt."""
    later = ctx.rows("""SELECT task_id, status, start_time, end_time, target_uri,
                               [s.uri FOR s IN sources] AS sources
                        FROM tasks WHERE status IN ('Succeeded', 'Failed', 'Running') AND start_time >= $p0
                        ORDER BY start_time, task_id""")
    by_target, by_sources = {}, {}
    for t in later:
        if t["target_uri"]:
            by_target.setdefault(t["target_uri"], []).append(t)
        by_sources.setdefault(tuple(t["sources"] or ()), []).append(t)
    out = []
    for f in ctx.tasks():
        if f["status"] != "Failed":
            continue
        cands = by_target.get(f["target_uri"], []) + by_sources.get(tuple(f["sources"] or ()), [])
        retry = next((t for t in cands if t["task_id"] != f["task_id"] and t["start_time"] is not None
                      and t["start_time"] >= f["end_time"]), None)
        if retry is not None:
            out.append((f, retry))
    return out


def find(ctx) -> list[Proposal]:
    blocked = blocked_tasks(ctx)
    pairs = [(f, r) for f, r in _retried(ctx) if f["tid"] not in blocked]
    if not pairs:
        return []
    codes = Counter(f["code"] or "(no code)" for f, _ in pairs)
    reads = sum(len(f["sources"] or ()) for f, _ in pairs)
    table = [[f["task_id"], f["code"] or "", instant_text(f["end_time"]), r["task_id"], r["status"],
              len(f["sources"] or ())] for f, r in pairs]
    top = ", ".join(f"{c} x{n}" for c, n in codes.most_common(3))
    return [Proposal(
        rule=NAME,
        change=f"Fix the cause of these {len(pairs)} failures ({top}) before resubmitting: each failed attempt "
               "read its sources again for nothing.",
        whatif=WhatIf(drop_tasks={f["tid"] for f, _ in pairs}),
        affected={f["tid"] for f, _ in pairs},
        evidence=evidence(tasks=len(pairs), objects=len({u for f, _ in pairs for u in f["sources"] or ()}),
                          buckets=[u.split("/")[2] for f, _ in pairs for u in f["sources"] or ()],
                          columns=["failed task", "code", "ended", "retried by", "retry status", "sources"],
                          rows=table, summary=f"{len(pairs)} failed attempt(s) later retried; {reads} source "
                                              f"read(s) wasted; codes: {top}"),
        items=("oss.GetRequest", "oss.IaRetrieval", "oss.ArchiveDirectRead", "oss.TransferAcceleration",
               "imm.ImageSplicing"),
        risk="Transient failures (throttling, 5xx) cannot all be avoided; the saving assumes the failures were "
             "avoidable (bad parameters, missing or unreadable sources).")]
