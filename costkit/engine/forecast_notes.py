"""What a forecast says beside its figures: the prices it still needs (with a ready-to-paste price entry)
and its warnings."""
from __future__ import annotations

from costkit.core.catalog import ITEMS, PRICE_ALIAS
from costkit.core.money import fmt_quantity
from costkit.core.timeutil import SHANGHAI
from costkit.engine.profile import CONFIDENT

# What a quantity counts, by usage dimension (for "price needed" lines).
QUANTITY_WORDS = {"calls": "calls (splices)", "requests": "requests", "GB": "GB", "GB-hour": "GB-hours"}


def local_text(when) -> str:
    """An aware datetime as "YYYY-MM-DD HH:MM +08:00" (Asia/Shanghai), the form people read."""
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M +08:00")


def _yaml_entry(item: str, selectors: tuple, unit: str, currency: str, effective_from, effective_to) -> str:
    """A terse user-layer price entry to paste under a scenario's `prices:` or into a --prices file. The
    price stays null: costkit never fills in a number."""
    lines = [f"- item: {item}"]
    lines += [f"  {k}: {v}" for k, v in selectors]
    lines += [f"  unit: {unit}", f"  price: null  # your price in {currency} per {unit}"]
    if effective_from is not None:
        lines.append(f'  effective_from: "{effective_from.astimezone(SHANGHAI).isoformat()}"')
    if effective_to is not None:
        lines.append(f'  effective_to: "{effective_to.astimezone(SHANGHAI).isoformat()}"')
    lines.append("  # currency defaults to the site's, confidence to user, source to this file and line")
    return "\n".join(lines) + "\n"


def missing_prices(knobs, book, horizon_end) -> list[dict]:
    """One row per price the forecast needs and has not got: item, selectors, unit (the usual one), currency,
    `from` (the first instant of the horizon that needs it, ISO +08:00), `until` (where the unknown entry
    ends, or the end of the horizon), the quantity left unpriced (base units), the book's unknown entry, and
    `yaml`: a price entry to paste with its price left null."""
    out = []
    for k in knobs:
        if k.base is not None:
            continue
        _, unknown = book.resolve(k.item, dict(k.selectors), k.since)
        until = unknown.effective_to if unknown is not None and unknown.effective_to is not None else horizon_end
        dim = ITEMS[PRICE_ALIAS.get(k.item, k.item)][0]
        out.append({
            "item": k.item, "selectors": dict(k.selectors), "unit": k.unit, "currency": book.currency,
            "from": k.since.astimezone(SHANGHAI).isoformat(), "until": until.astimezone(SHANGHAI).isoformat(),
            "quantity": fmt_quantity(k.total_quantity()), "quantity_unit": dim,
            "quantity_words": QUANTITY_WORDS[dim],
            "book_entry": None if unknown is None else {
                "layer": unknown.layer, "source": unknown.source, "confidence": unknown.confidence,
                "note": unknown.note},
            "yaml": _yaml_entry(k.item, k.selectors, k.unit, book.currency,
                                unknown.effective_from if unknown is not None else None,
                                unknown.effective_to if unknown is not None else None),
        })
    return out


def forecast_warnings(scn, usage, pricer, missing: list[dict], label: str) -> list[str]:
    """The forecast's warnings: usage-model caveats, missing and low-confidence prices, what is not priced."""
    warnings = list(usage.warnings)
    if missing:
        from datetime import datetime
        warnings.append(f"Forecast incomplete: totals are {label}. " + "; ".join(
            f"{m['item']} needs a price in {m['currency']} per {m['unit']} from "
            f"{local_text(datetime.fromisoformat(m['from']))} ({m['quantity']} {m['quantity_words']})"
            for m in missing)
            + ". Give it with --price ITEM=VALUE/UNIT or a price entry (see missing_prices); "
              "--strict makes this an error.")
    for e in pricer.used_entries():
        if e.confidence not in CONFIDENT and e.price:
            sel = ", ".join(f"{k}={v}" for k, v in e.selectors)
            warnings.append(f"{e.item}{' (' + sel + ')' if sel else ''} is priced at {e.price} {e.currency} per "
                            f"{e.unit} with confidence '{e.confidence}' ({e.source}); confirm it before relying "
                            "on the figure.")
    if scn.accelerated_gb_per_task:
        warnings.append("Transfer acceleration is charged on top of outbound traffic (NetworkOut), which this "
                        "model does not price.")
    if scn.target_retention_days is None:
        warnings.append("target_retention_days is not set: targets are never deleted, so storage grows "
                        "through the horizon.")
    return warnings


__all__ = ["forecast_warnings", "local_text", "missing_prices"]
