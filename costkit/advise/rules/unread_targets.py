"""Targets in Standard that nothing reads after they are written: no later task takes them as a source (the
history shows when a target was a later task's source). What-if: write them in IA; the engine prices the
IA storage with its minimum size and duration and the IA PUT price, and the finding is kept only when that
saves. Reads outside splicing would pay IA retrieval and costkit cannot see them: without
`advise.targets_read_elsewhere_per_month` the finding asks for it and does not count in the month's total."""
from __future__ import annotations

from fractions import Fraction

from costkit.advise.rules.common import evidence, gb, hour_text, kb
from costkit.advise.whatif import Adjustment, Proposal, WhatIf
from costkit.prices.pricer import Pricer

NAME = "unread_targets"
TITLE = "Targets nothing reads after writing, kept in Standard"
SETTING = "targets_read_elsewhere_per_month"


def _read_later(ctx) -> dict:
    """uri -> the latest start time of a task that read it as a source."""
    return {r["uri"]: r["last"] for r in ctx.rows(
        "SELECT uri, max(start_time) AS last FROM (SELECT start_time, unnest(sources).uri AS uri FROM tasks) "
        "GROUP BY uri")}


def find(ctx) -> list[Proposal]:
    reads = _read_later(ctx)
    ia_floor, ia_hours = ctx.floor_bytes("IA"), ctx.min_hours("IA")
    rows = [t for t in ctx.targets() if not t["unknown"] and t["cls"] == "Standard" and t["size"] >= ia_floor
            and (t["d"] is None or t["d"] - t["c"] >= ia_hours)
            and not (reads.get(t["uri"]) is not None and reads[t["uri"]] >= t["end_time"])]
    if not rows:
        return []
    uris = {t["uri"] for t in rows}
    elsewhere = ctx.setting(SETTING)
    adjustments, needs, note = [], [], ""
    if elsewhere is None:
        needs = [SETTING]
        note = ("costkit cannot see reads outside splicing (downloads, CDN origin, other jobs), which would pay IA "
                f"retrieval; set advise.{SETTING} (reads per object per month, 0 if none) to count this saving.")
    elif elsewhere:
        pricer = Pricer(ctx.book)
        n = Fraction(elsewhere)
        cost = sum(ctx.price("oss.IaRetrieval", {}, gb(t["size"]) * n, pricer)
                   + ctx.price("oss.GetRequest", {"storage_class": "IA"}, n, pricer)
                   - ctx.price("oss.GetRequest", {"storage_class": "Standard"}, n, pricer)
                   for t in {r["uri"]: r for r in rows}.values())
        pricer.raise_if_missing()
        adjustments = [Adjustment(f"IA retrieval and GET prices of {elsewhere} read(s) per object per month "
                                  "outside splicing (from the settings)", -cost, pricer.used_entries())]
    existing = [t for t in {r["uri"]: r for r in rows}.values() if not t["gone"] and t["d"] is None]
    one_time = [(f"copy the {len(existing)} stored object(s) to IA (PUT-type CopyObject each)", "oss.PutRequest",
                 {"storage_class": "IA"}, len(existing))] if existing else []
    table = [[t["task_id"], t["uri"], kb(t["size"]), hour_text(t["c"]), hour_text(t["d"]) or "kept"] for t in rows]
    return [Proposal(
        rule=NAME,
        change=f"Write these {len(uris)} target(s) that no later task reads in IA instead of Standard.",
        whatif=WhatIf(object_class={u: "IA" for u in uris}), affected={t["tid"] for t in rows},
        evidence=evidence(tasks=len({t["tid"] for t in rows}), objects=len(uris),
                          buckets=[u.split("/")[2] for u in uris],
                          columns=["task", "target", "size KB", "written", "deleted"], rows=table,
                          summary=f"{len(uris)} Standard target(s) of at least {kb(ia_floor)} KB, kept at least "
                                  f"{ia_hours} h or still stored, never a later task's source"),
        items=("oss.Storage", "oss.EarlyDeletion", "oss.PutRequest"), adjustments=adjustments,
        one_time=one_time, needs=needs, note=note, counts=elsewhere is not None, positive_only=True,
        risk="Every read of an IA object pays retrieval by its size: if these targets are downloaded or served "
             "often, IA costs more than Standard. A target deleted before 30 days pays the rest of them.")]
