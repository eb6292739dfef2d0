"""Where the audit's figures come from: the month's bill imports (and which one is used), the collection runs
around the month, the store's row counts, and when the data was read (is the bill final yet?)."""
from __future__ import annotations

from datetime import datetime, timedelta

from costkit.audit.days import iso_utc
from costkit.core.timeutil import SHANGHAI, add_months, parse_month


def bill_imports(store, month: str, frame) -> tuple[list[dict], str | None]:
    """(the month's bill imports, newest first, `used` marking the audited one; when that one was read, ISO
    UTC)."""
    from costkit.store.bills import bill_sources

    srcs = bill_sources(store, month)
    used = srcs[srcs["source"] == frame["source"].iloc[0]]
    info = [{"source": s["source"], "kind": s["kind"], "origin": s["origin"], "lines": int(s["line_count"]),
             "imported_at": iso_utc(s["imported_at"]), "account_id": s.get("account_id"),
             "encoding": s.get("encoding"), "header_language": s.get("header_language"),
             "used": s["source"] == frame["source"].iloc[0]} for s in srcs.to_dict("records")]
    return info, iso_utc(used.iloc[0]["imported_at"]) if len(used) else None


def warn_if_not_final(month: str, read_at: str | None, warnings: list) -> None:
    """Warn when the bill was read before the 3rd of the next month, 12:00 UTC+8 (late lines may follow)."""
    y, m = parse_month(month)
    ny, nm = add_months(y, m, 1)
    final_at = datetime(ny, nm, 3, 12, tzinfo=SHANGHAI)
    if read_at and datetime.fromisoformat(read_at) < final_at:
        warnings.append(f"The bill was read at {read_at}, before it is final ({final_at.isoformat()}): "
                        "late lines may still change it.")


def runs(store, period) -> list[dict]:
    """The recorded collection runs whose window touches the period (or the two days after it)."""
    df = store.runs_frame()
    out = []
    for r in df.to_dict("records"):
        ws, we = iso_utc(r.get("window_start")), iso_utc(r.get("window_end"))
        if we is not None and ws is not None and (datetime.fromisoformat(we) < period.start
                                                  or datetime.fromisoformat(ws) >= period.end + timedelta(days=2)):
            continue
        out.append({"id": int(r["id"]), "kind": r["kind"], "region": r["region"], "project": r["project"],
                    "started_at": iso_utc(r.get("started_at")), "window_start": ws, "window_end": we,
                    "pages": None if r.get("pages") is None or r.get("pages") != r.get("pages") else int(r["pages"]),
                    "new": _int(r.get("new")), "updated": _int(r.get("updated")),
                    "unchanged": _int(r.get("unchanged")), "ok": bool(r.get("ok")),
                    "errors": len(r.get("errors") or [])})
    return out


def _int(v):
    try:
        return None if v is None or v != v else int(v)
    except (TypeError, ValueError):
        return None


def row_counts(store, period, frame) -> dict:
    """How many rows the store holds (tasks in all and in the month, objects, buckets, imports) and the bill
    lines of the audited import (mapped and not)."""
    with store._lock:
        con = store._con
        total = con.execute("SELECT count(*) FROM tasks").fetchone()[0]
        in_month = con.execute("SELECT count(*) FROM tasks WHERE end_time >= ? AND end_time < ?",
                               [period.start, period.end]).fetchone()[0]
        objects = con.execute("SELECT count(*) FROM objects").fetchone()[0]
        buckets = con.execute("SELECT count(*) FROM buckets").fetchone()[0]
        imports = con.execute("SELECT count(*) FROM imports").fetchone()[0]
    return {"tasks_total": int(total), "tasks_in_month": int(in_month), "objects": int(objects),
            "buckets": int(buckets), "task_imports": int(imports), "bill_lines": len(frame),
            "bill_lines_mapped": int(frame["mapped"].sum()), "bill_lines_unmapped": len(frame[~frame["mapped"]])}
