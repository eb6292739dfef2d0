"""Targets kept in IA (or colder) that are smaller than the class's minimum billable size (64 KB): each
pays for 64 KB. What-if: write them in Standard (storage at actual size, no minimum duration, Standard PUT)."""
from __future__ import annotations

from costkit.advise.rules.common import evidence, gb, hour_text, kb
from costkit.advise.whatif import Proposal, WhatIf
from costkit.model.usage import MIN_SIZE_CLASSES

NAME = "ia_small_targets"
TITLE = "Small targets in IA pay for 64 KB"


def find(ctx) -> list[Proposal]:
    rows = [t for t in ctx.targets() if not t["unknown"] and t["cls"] in MIN_SIZE_CLASSES
            and t["size"] < ctx.floor_bytes(t["cls"])]
    if not rows:
        return []
    uris = {t["uri"] for t in rows}
    classes = sorted({t["cls"] for t in rows})
    floor_kb = kb(ctx.floor_bytes(rows[0]["cls"]))
    existing = {t["uri"]: t for t in rows if not t["gone"] and t["d"] is None}
    one_time = []
    if existing:
        one_time.append((f"copy the {len(existing)} stored object(s) to Standard (PUT-type CopyObject each)",
                         "oss.PutRequest", {"storage_class": "Standard"}, len(existing)))
        for cls in classes:
            byte_hours = sum(t["bb"] * max(0, t["min_hours"] - (ctx.period.h1 - t["c"]))
                             for t in existing.values() if t["cls"] == cls)
            if byte_hours:
                reds = {t["red"] for t in existing.values() if t["cls"] == cls}
                one_time.append((f"early deletion of the {cls} copies younger than {ctx.min_hours(cls)} h",
                                 "oss.EarlyDeletion", {"storage_class": cls, "redundancy": sorted(reds)[0]},
                                 gb(byte_hours)))
    table = [[t["task_id"], t["uri"], kb(t["size"]), t["cls"], hour_text(t["c"])] for t in rows]
    return [Proposal(
        rule=NAME,
        change=f"Write these {len(uris)} target(s) smaller than {floor_kb} KB in Standard instead of "
               f"{'/'.join(classes)}, where they would be billed at their actual size.",
        whatif=WhatIf(object_class={u: "Standard" for u in uris}),
        affected={t["tid"] for t in rows},
        evidence=evidence(tasks=len({t["tid"] for t in rows}), objects=len(uris),
                          buckets=[u.split("/")[2] for u in uris],
                          columns=["task", "target", "size KB", "class", "written"], rows=table,
                          summary=f"{len(uris)} target(s) of {kb(min(t['size'] for t in rows))}-"
                                  f"{kb(max(t['size'] for t in rows))} KB billed as {floor_kb} KB each"),
        items=("oss.Storage", "oss.EarlyDeletion", "oss.PutRequest"),
        one_time=one_time,
        risk="Standard storage costs more per GB: a target that later grows past the minimum size, or is kept "
             "much longer, may be cheaper in IA again. Standard has no retrieval fee, so reads only get cheaper.")]

