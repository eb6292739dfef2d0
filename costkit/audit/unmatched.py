"""What one side has and the other lacks: bill lines without a collected task (unmapped lines, or billed days
the store has no task for) and expected charges without a bill line, with a few of those days' tasks."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from costkit.audit.days import day_bounds

MAX_LISTED = 200


def unmatched(store, unmapped, day_rows: list) -> dict:
    """The model's `unmatched` section (lists cut at MAX_LISTED; the totals count all)."""
    from costkit.sources.bills.records import decimal_text

    bill_no_tasks = []
    for r in unmapped.to_dict("records"):
        bill_no_tasks.append({"kind": "unmapped bill line", "day": r["billing_date"].isoformat(),
                              "line_no": int(r["line_no"]), "product": r.get("product_name") or r.get("product_code"),
                              "billing_item": r.get("billing_item") or r.get("billing_item_code"),
                              "instance_id": r.get("instance_id"), "usage": decimal_text(r.get("usage")),
                              "usage_unit": r.get("usage_unit"),
                              "gross": decimal_text(r.get("pretax_gross_amount")), "note": r.get("note")})
    for r in day_rows:
        if r["has_bill_line"] and Decimal(r["expected_quantity"]) == 0 and Decimal(r["billed_quantity"]) > 0:
            bill_no_tasks.append({"kind": "no collected task", "day": r["day"], "line_no": None,
                                  "product": None, "billing_item": r["item"], "instance_id": None,
                                  "usage": r["billed_quantity"], "usage_unit": r["unit"], "gross": r["billed_gross"],
                                  "note": "the store has no task priced for this day and item"})
    tasks_no_bill = [{"day": r["day"], "item": r["item"], "expected_quantity": r["expected_quantity"],
                      "unit": r["unit"], "expected": r["expected"]}
                     for r in day_rows if not r["has_bill_line"] and Decimal(r["expected_quantity"]) > 0]
    samples = _sample_tasks(store, sorted({r["day"] for r in tasks_no_bill}))
    return {"bill_lines_without_tasks": bill_no_tasks[:MAX_LISTED],
            "bill_lines_without_tasks_total": len(bill_no_tasks),
            "tasks_without_bill_line": tasks_no_bill[:MAX_LISTED],
            "tasks_without_bill_line_total": len(tasks_no_bill), "sample_tasks": samples}


def _sample_tasks(store, days: list[str], per_day: int = 3) -> list[dict]:
    """A few stored tasks of the days that have expected charges but no bill line (escaped in the report)."""
    out = []
    for d in days[:20]:
        s, e = day_bounds(date.fromisoformat(d))
        with store._lock:
            rows = store._con.execute(
                "SELECT project, task_id, status, target_uri, tags, user_data FROM tasks WHERE end_time >= ? "
                "AND end_time < ? ORDER BY end_time, task_id LIMIT ?", [s, e, per_day]).fetchall()
        for p, t, st, uri, tags, ud in rows:
            out.append({"day": d, "project": p, "task_id": t, "status": st, "target_uri": uri, "tags": tags,
                        "user_data": ud})
    return out
