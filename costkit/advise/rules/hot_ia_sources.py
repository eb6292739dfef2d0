"""IA sources read so often that IA retrieval and the IA GET price cost more than keeping them in Standard.
What-if: keep those sources in Standard. The engine replays the splices' reads; the source storage (not a
splicing charge, so not in `cost --month`) is priced from the book as an adjustment for the hours each
source exists in the period. Reads outside splicing are unknown to costkit: the rule asks for
`advise.sources_read_elsewhere_per_month` and, without it, the saving is a lower bound."""
from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

from costkit.advise.rules.common import evidence, gb, instant_text, kb
from costkit.advise.whatif import Adjustment, Proposal, WhatIf
from costkit.prices.pricer import Pricer

NAME = "hot_ia_sources"
TITLE = "Hot IA sources: retrieval costs more than Standard storage"
SETTING = "sources_read_elsewhere_per_month"


def _hours(ctx, src) -> int:
    """Hours of the period in which the source object exists (from Last-Modified to the period's end)."""
    h0, h1 = ctx.period.h0, ctx.period.h1
    start = h0 if src["last_modified"] is None else max(h0, int(src["last_modified"].timestamp()) // 3600)
    return max(0, h1 - start) if not src["gone"] else 0


def _per_object(ctx, pricer, o, reads, elsewhere) -> tuple[Fraction, Fraction]:
    """(read cost saved, storage added) for one object per period, from the book: selection only; the
    reported figures come from the replay and the adjustments."""
    n = reads + elsewhere
    saved = (ctx.price("oss.IaRetrieval", {}, gb(o["size"]) * n, pricer)
             + ctx.price("oss.GetRequest", {"storage_class": "IA"}, n, pricer)
             - ctx.price("oss.GetRequest", {"storage_class": "Standard"}, n, pricer))
    return saved, _storage_delta(ctx, pricer, [o])


def _storage_delta(ctx, pricer, objs) -> Fraction:
    """Standard storage minus IA storage of `objs` for the hours they exist in the period (book prices)."""
    total = Fraction(0)
    for o in objs:
        red = o["redundancy"] if o["redundancy"] in ("LRS", "ZRS") else "LRS"
        h = _hours(ctx, o)
        total += ctx.price("oss.Storage", {"storage_class": "Standard", "redundancy": red}, gb(o["size"] * h), pricer)
        total -= ctx.price("oss.Storage", {"storage_class": "IA", "redundancy": red},
                           gb(max(o["size"], ctx.floor_bytes("IA")) * h), pricer)
    return total


def find(ctx) -> list[Proposal]:
    reads = defaultdict(int)
    objs, tids = {}, defaultdict(set)
    for s in ctx.sources():
        if s["cls"] == "IA" and s["size"] is not None:
            reads[s["uri"]] += ctx.settings.splice.requests["get_per_source"]
            objs[s["uri"]] = s
            tids[s["uri"]].add(s["tid"])
    if not objs:
        return []
    elsewhere = ctx.setting(SETTING)
    pricer = Pricer(ctx.book)
    hot = []
    for uri, o in objs.items():
        saved, added = _per_object(ctx, pricer, o, reads[uri], elsewhere or 0)
        if saved > added:
            hot.append(uri)
    pricer.raise_if_missing()
    if not hot:
        return []
    chosen = [objs[u] for u in hot]
    adjustments = [Adjustment("Standard storage of these sources instead of IA (book prices; source storage is "
                              "not a splicing charge)", -_storage_delta(ctx, pricer, chosen),
                              pricer.used_entries())]
    needs, note = [], ""
    if elsewhere:
        extra = sum(_per_object(ctx, pricer, o, 0, elsewhere)[0] for o in chosen)
        adjustments.append(Adjustment(f"reads outside splicing ({elsewhere} per object per month, from the "
                                      f"settings), at IA retrieval and GET prices", extra, pricer.used_entries()))
    elif elsewhere is None:
        needs = [SETTING]
        note = ("costkit sees only the splices' reads; reads of these sources outside splicing would save more. "
                f"Set advise.{SETTING} in the settings to count them; this saving is a lower bound.")
    one_time = [(f"copy the {len(chosen)} source(s) to Standard (PUT-type CopyObject each)", "oss.PutRequest",
                 {"storage_class": "Standard"}, len(chosen))]
    young = [(o, ctx.min_hours("IA") - (ctx.period.h1 - int(o["last_modified"].timestamp()) // 3600))
             for o in chosen if o["last_modified"] is not None]
    byte_hours = sum(max(o["size"], ctx.floor_bytes("IA")) * left for o, left in young if left > 0)
    if byte_hours:
        one_time.append(("early deletion of IA copies younger than 720 h", "oss.EarlyDeletion",
                         {"storage_class": "IA", "redundancy": "LRS"}, gb(byte_hours)))
    table = sorted(([u, kb(objs[u]["size"]), reads[u], len(tids[u]), instant_text(objs[u]["last_modified"])]
                    for u in hot), key=lambda r: (-r[2], r[0]))
    return [Proposal(
        rule=NAME,
        change=f"Keep these {len(hot)} frequently read source(s) in Standard instead of IA: their IA retrieval "
               "and IA GET prices cost more than the Standard storage would.",
        whatif=WhatIf(object_class={u: "Standard" for u in hot}),
        affected=set().union(*(tids[u] for u in hot)),
        evidence=evidence(tasks=len(set().union(*(tids[u] for u in hot))), objects=len(hot),
                          buckets=[objs[u]["bucket"] for u in hot],
                          columns=["source", "size KB", "reads", "tasks", "last modified"], rows=table,
                          summary=f"{len(hot)} IA source(s) read {sum(reads[u] for u in hot)} time(s) by splices "
                                  "this period"),
        items=("oss.GetRequest", "oss.IaRetrieval"), adjustments=adjustments, one_time=one_time, needs=needs,
        note=note, positive_only=True,
        risk="If these sources become cold (read rarely), Standard storage costs more than IA would; existing "
             "objects must be copied to change class, which restarts nothing in Standard but ends the IA minimum "
             "duration early.")]
