"""Targets deleted (or overwritten) before their class's minimum storage duration (IA 30 days, Archive 60,
...): each pays the missing hours anyway. What-if: write them in Standard (no minimum duration). Targets
smaller than the minimum billable size are left to `ia_small_targets`, so the two findings do not overlap."""
from __future__ import annotations

from costkit.advise.rules.common import evidence, hour_text, kb

from costkit.advise.whatif import Proposal, WhatIf

NAME = "early_deleted_targets"
TITLE = "Targets deleted before the minimum storage duration"


def find(ctx) -> list[Proposal]:
    h0, h1 = ctx.period.h0, ctx.period.h1
    rows = [t for t in ctx.targets() if not t["unknown"] and t["min_hours"] and t["d"] is not None
            and h0 <= t["d"] < h1 and t["d"] - t["c"] < t["min_hours"] and t["size"] >= ctx.floor_bytes(t["cls"])]
    if not rows:
        return []
    uris = {t["uri"] for t in rows}
    classes = sorted({t["cls"] for t in rows})
    kept = sorted(t["d"] - t["c"] for t in rows)
    table = [[t["task_id"], t["uri"], kb(t["size"]), t["cls"], hour_text(t["c"]), hour_text(t["d"]),
              t["d"] - t["c"], t["min_hours"]] for t in rows]
    return [Proposal(
        rule=NAME,
        change=f"Write these {len(uris)} short-lived target(s) in Standard instead of {'/'.join(classes)}: they "
               f"are deleted after {kept[0]}-{kept[-1]} h, before the {'/'.join(str(ctx.min_hours(c)) for c in classes)}"
               " h minimum, and pay the missing hours anyway.",
        whatif=WhatIf(object_class={u: "Standard" for u in uris}),
        affected={t["tid"] for t in rows},
        evidence=evidence(tasks=len({t["tid"] for t in rows}), objects=len(uris),
                          buckets=[u.split("/")[2] for u in uris],
                          columns=["task", "target", "size KB", "class", "written", "deleted", "hours kept",
                                   "minimum hours"], rows=table,
                          summary=f"{len(rows)} target(s) deleted or overwritten after {kept[0]}-{kept[-1]} h "
                                  f"(median {kept[len(kept) // 2]} h)"),
        items=("oss.Storage", "oss.EarlyDeletion", "oss.PutRequest"),
        risk="If these targets are kept longer in future (past the minimum duration), IA storage is cheaper "
             "again; the deletion times come from the inventory (the hour it first saw each object gone).")]
