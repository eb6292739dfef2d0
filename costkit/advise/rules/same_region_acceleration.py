"""Transfer acceleration used from the same region: IMM reads and writes its buckets inside the region, so the
acceleration charge buys nothing. costkit knows acceleration only as `accelerated_gb_per_task` (one figure for
every task); the what-if sets it to 0 when every task runs in its target bucket's region. When only some do,
the rule says so and asks for the settings to be split, instead of guessing a share."""
from __future__ import annotations

from decimal import Decimal

from costkit.advise.rules.common import evidence
from costkit.advise.whatif import Proposal, WhatIf

NAME = "same_region_acceleration"
TITLE = "Transfer acceleration from the same region"


def _region(location) -> str | None:
    """`oss-cn-hangzhou` -> `cn-hangzhou`."""
    if not location:
        return None
    return location[4:] if location.startswith("oss-") else location


def find(ctx) -> list[Proposal]:
    if not ctx.model.accel_gb:
        return []
    buckets = ctx.buckets()
    same, other = [], []
    for t in ctx.tasks():
        b = (t["target_uri"] or "").split("/")[2] if t["target_uri"] else None
        fact = buckets.get(b) if b else None
        region = _region(fact["location"]) if fact else None
        (same if region is not None and region == t["region"] else other).append((t, b, region))
    if not same:
        return []
    bks = sorted({b for _, b, _ in same})
    table = [[t["task_id"], t["region"], b, r] for t, b, r in same]
    ev = evidence(tasks=len(same), objects=0, buckets=bks, columns=["task", "task region", "bucket", "bucket region"],
                  rows=table, summary=f"{len(same)} of {len(same) + len(other)} task(s) run in their target "
                                      f"bucket's region with {ctx.settings.splice.accelerated_gb_per_task} GB "
                                      "accelerated per task")
    risk = ("Clients outside the region that download through the acceleration endpoint still need it; this "
            "concerns only the splices' own traffic.")
    if other:
        return [Proposal(
            rule=NAME, change=f"Stop using the acceleration endpoint for the splices of {', '.join(bks)}, which run "
                              "in the same region.",
            whatif=None, affected={t["tid"] for t, _, _ in same}, evidence=ev, risk=risk, counts=False,
            needs=["accelerated_gb_per_task per region (price the same-region tasks with separate settings)"],
            items=("oss.TransferAcceleration",),
            note=f"{len(other)} task(s) run elsewhere or in buckets without facts; accelerated_gb_per_task is one "
                 "figure for all tasks, so costkit cannot price the change for a part of them.")]
    return [Proposal(
        rule=NAME, change=f"Use the internal (non-accelerated) endpoint for the splices of {', '.join(bks)}: every "
                          "task runs in its bucket's region, where acceleration buys nothing.",
        whatif=WhatIf(settings={"accelerated_gb_per_task": Decimal(0)}), affected={t["tid"] for t, _, _ in same},
        evidence=ev, risk=risk, items=("oss.TransferAcceleration",))]
