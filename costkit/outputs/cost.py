"""The cost report (`costkit cost`) as text: JSON, CSV (one row per period x group x item) or tables."""
from __future__ import annotations

import io

from costkit.core import csvsafe
from costkit.outputs.text import text_table, to_json
from costkit.prices.book import ITEM_KEYS


def render_report(report: dict, fmt: str) -> str:
    """The cost report model of `costkit.engine.history.price_history` as `json`, `csv` or a text table."""
    if fmt == "json":
        return to_json(report)
    items = [k for k in ITEM_KEYS if report["items"][k] != "0.00"] or ["imm.ImageSplicing"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csvsafe.writer(buf, lineterminator="\n")
        w.writerow(["period", "group", "item", "amount", "currency"])
        for g in report["groups"] or [{"group": "", "items": report["items"], "total": report["total"]}]:
            for k in ITEM_KEYS:
                w.writerow([report["period"]["label"], g["group"], k, g["items"][k], report["currency"]])
            w.writerow([report["period"]["label"], g["group"], "total", g["total"], report["currency"]])
        if report["groups"]:
            w.writerow([report["period"]["label"], "", "total", report["total"], report["currency"]])
        return buf.getvalue()
    head = (f"Cost of {report['period']['label']} ({report['site']}, {report['currency']}): {report['tasks']} tasks, "
            f"{report['succeeded']} succeeded, {report['failed']} failed, {report['billable_splices']} billable "
            f"splices\n")
    if report["groups"]:
        rows = [[g["group"], *[g["items"][k] for k in items], g["total"]] for g in report["groups"]]
        rows.append(["total", *[report["items"][k] for k in items], report["total"]])
        return head + text_table([report["by"], *items, "total"], rows, right=set(range(1, len(items) + 2)))
    rows = [[k, report["quantities"][k]["quantity"], report["quantities"][k]["unit"], report["items"][k]]
            for k in ITEM_KEYS]
    rows.append(["total", "", "", report["total"]])
    return head + text_table(["item", "quantity", "unit", "amount"], rows, right={1, 3})


__all__ = ["render_report"]
