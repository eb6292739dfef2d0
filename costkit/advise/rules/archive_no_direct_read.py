"""Tasks on unrestored Archive sources in buckets without direct read: IMM cannot read them, the task fails
and still pays its HEAD (GET-type) requests. What-if: those tasks are not submitted until their sources are
readable (restored, or direct read turned on); the engine replays the month without them."""
from __future__ import annotations

from collections import defaultdict

from costkit.advise.rules.common import evidence, instant_text
from costkit.advise.whatif import Proposal, WhatIf

NAME = "archive_no_direct_read"
TITLE = "Archive sources without direct read: failed tasks pay HEAD requests"


def blocked_tasks(ctx) -> dict:
    """tid -> the unreadable sources of each Failed task with an unrestored Archive source in a bucket without
    direct read (also used by `failed_retries`, which leaves these tasks to this rule)."""
    out = defaultdict(list)
    for s in ctx.sources():
        if s["status"] == "Failed" and s["cls"] == "Archive" and not s["dr"] and not s["restored"]:
            out[s["tid"]].append(s)
    return dict(out)


def find(ctx) -> list[Proposal]:
    blocked = blocked_tasks(ctx)
    if not blocked:
        return []
    srcs = [s for v in blocked.values() for s in v]
    uris = {s["uri"] for s in srcs}
    buckets = sorted({s["bucket"] for s in srcs})
    table = [[v[0]["task_id"], v[0]["code"] or "", instant_text(v[0]["end_time"]), len(v), v[0]["uri"]]
             for v in blocked.values()]
    return [Proposal(
        rule=NAME,
        change=f"Do not submit splices on unrestored Archive sources: restore them first, or turn on Archive "
               f"direct read for {', '.join(buckets)}; {len(blocked)} task(s) failed on them and still paid "
               "their HEAD requests.",
        whatif=WhatIf(drop_tasks=set(blocked)),
        affected=set(blocked),
        evidence=evidence(tasks=len(blocked), objects=len(uris), buckets=buckets,
                          columns=["task", "code", "ended", "Archive sources", "first such source"], rows=table,
                          summary=f"{len(blocked)} failed task(s) with {len(uris)} unrestored Archive source(s) "
                                  f"in {len(buckets)} bucket(s) without direct read"),
        items=("oss.GetRequest", "imm.ImageSplicing"),
        risk="The splices still have to run once the sources are readable: a restore (Archive retrieval) or "
             "direct-read retrieval is then paid, which this saving does not include.")]
