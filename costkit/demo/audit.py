"""The demo's monthly audit of a SYNTHETIC month, end to end, on 127.0.0.1 only.

`run_demo_audit(out_dir)`:
1. collects the synthetic month (`costkit.demo_history.run_synthetic_collection`) from the local IMM server
   through the real SDK into a fresh store `out_dir/audit-demo.duckdb`, with a planted collector outage:
   the daily runs of MISSED_RUNS do not happen, so the outage is longer than IMM's 7-day retention, the
   tasks of MISSED_DAY are really lost and the collector's retention guard warns;
2. bills every synthetic task (the lost day too) as DescribeInstanceBill lines with two more planted
   discrepancies (a different ImageSplicing unit price on PRICE_DAYS and splices covered by a resource plan
   on PLAN_DAY), plus a whole-bucket OSS storage line per day and an unmapped outbound-traffic line; writes
   them as two console exports in the real 39-column header (the IMM lines and the OSS lines, as a month
   often arrives) and imports both: the month is their union, and the demo lists the imports that make it up;
3. audits the month against a SYNTHETIC contract price (written to `out_dir/prices-demo.yaml`) and writes
   the audit as HTML, JSON and CSV.

Everything is labelled synthetic; credentials are the static test keys of the local servers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

MONTH = "2025-08"
MISSED_DAY = "2025-08-10"
MISSED_RUNS = tuple(f"2025-08-{d:02d}" for d in range(11, 18))   # last run 08-10 00:10, next 08-18 00:10
PRICE_DAYS = ("2025-08-21", "2025-08-22", "2025-08-23", "2025-08-24")
CONTRACT_PRICE = "2.5"        # CNY per 1,000 calls (synthetic)
BILLED_PRICE = "3"            # the planted different unit price
PLAN_DAY = "2025-08-25"
PLAN_CALLS = 20               # splices a resource plan covers that day (a quantity; 0.05 CNY at the contract price)
BUCKET_GB = 100               # the synthetic bucket holds this much all month (splicing targets are a sliver)
PER_DAY = 120

PRICES_YAML = f"""# SYNTHETIC price overlay for the costkit demo: an illustrative contract price for ImageSplicing
# (the published price after the 2025-07-28 cutover is unknown). Not a real price.
site: cn
entries:
  - item: imm.ImageSplicing
    unit: 1000 calls
    price: "{CONTRACT_PRICE}"
    currency: CNY
    effective_from: "2025-07-28T11:00:00+08:00"
    confidence: illustrative
    source: SYNTHETIC demo contract price (costkit demo), not a published price
"""


@dataclass
class DemoAudit:
    store: Path
    html: Path
    json: Path
    csv: Path
    prices: Path
    status: str
    collection_line: str
    bill_line: str
    warnings: list = field(default_factory=list)   # the collector's retention warnings
    found: dict = field(default_factory=dict)      # planted discrepancy -> what the audit says


def demo_bill_items(month: str = MONTH, per_day: int = PER_DAY) -> list[dict]:
    """The SYNTHETIC bill of the synthetic month (every task, the lost day too) with the planted lines."""
    from costkit.testing.bill_items import bill_item
    from costkit.testing.imm_server import fmt_time, parse_time, synthetic_month_tasks
    from costkit.testing.synthetic_bill import synthetic_bill_items

    tasks = synthetic_month_tasks(month, per_day=per_day)
    for t in tasks:   # as in the collection: splices still running at the month's end finish
        if t["Status"] == "Running":
            t.update(Status="Succeeded", EndTime=fmt_time(parse_time(t["StartTime"]) + timedelta(seconds=40)))
    items = synthetic_bill_items(tasks, month, list_price=CONTRACT_PRICE,
                                 price_overrides={d: BILLED_PRICE for d in PRICE_DAYS},
                                 resource_plan={PLAN_DAY: PLAN_CALLS})
    y, m = (int(x) for x in month.split("-"))
    d = date(y, m, 1)
    storage_price = "0.12"
    while d.month == m:
        usage = BUCKET_GB * 24    # GB summed over the 24 hourly bills
        gross = (usage * 12) / 100 / 720   # 0.12 CNY/GB-month
        items.append(bill_item(d.isoformat(), "oss", "Storage", billing_item="标准存储（本地冗余）容量",
                               product_name="对象存储", pretax_gross=f"{gross:.2f}", list_price=storage_price,
                               list_price_unit="CNY/GB/月", usage=str(usage), usage_unit="GB",
                               instance_id="cn-hangzhou;standard", region="cn-hangzhou"))
        d += timedelta(days=1)
    return items


ACCOUNT = ("1000000000000001", "synthetic-demo@example.com")


def demo_bill_files(out: Path, per_day: int = PER_DAY) -> dict:
    """The SYNTHETIC bill as two console exports in the real 39-column header, as a month often arrives:
    {"imm": out/bill-{MONTH}-imm.csv, "oss": out/bill-{MONTH}-oss.csv}."""
    from costkit.testing.synthetic_bill import write_console_csv

    files = {}
    items = demo_bill_items(MONTH, per_day)
    for n, it in enumerate(items, start=1):
        it.update(BillAccountID=ACCOUNT[0], BillAccountName=ACCOUNT[1], OwnerID=ACCOUNT[0],
                  OwnerAccountName=ACCOUNT[1], BillingCycle=MONTH, RecordID=f"synthetic-{n}")
    for product in ("imm", "oss"):
        files[product] = write_console_csv([i for i in items if i["ProductCode"] == product],
                                           out / f"bill-{MONTH}-{product}.csv", layout="console39")
    return files


def _sources_table(store) -> list[str]:
    """`costkit bill-lines --sources`: the imports that make up the month, one line each."""
    from costkit.store.bills import import_rows
    _, rows = import_rows(store, MONTH)
    return [f"  import #{r[0]}: {r[2]} (account {r[3]}, products {r[4]}, {r[5]}..{r[6]}): {r[7]} lines, "
            f"payable {r[8]} CNY" for r in rows]


def run_demo_audit(out_dir, *, per_day: int = PER_DAY) -> DemoAudit:
    from costkit.audit.reconcile import build_audit
    from costkit.outputs.audit import render_audit
    from costkit.store.bills import import_bill_csv
    from costkit.outputs.files import write_output
    from costkit.demo.history import run_synthetic_collection
    from costkit.store.db import Store

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "audit-demo.duckdb"
    for p in (store_path, store_path.with_name(store_path.name + ".wal")):
        if p.exists():
            p.unlink()
    prices = out / "prices-demo.yaml"
    prices.write_text(PRICES_YAML, encoding="utf-8")
    coll = run_synthetic_collection(store_path, MONTH, per_day=per_day, skip_runs=MISSED_RUNS)
    with Store.open(store_path) as store:
        lines = []
        for product, path in demo_bill_files(out, per_day).items():
            lines.append("SYNTHETIC " + import_bill_csv(store, path).line())
        lines += _sources_table(store)
        model = build_audit(store, MONTH, prices_file=prices, synthetic=True)
    paths = {}
    for fmt in ("html", "json", "csv"):
        paths[fmt] = out / f"audit-{MONTH}.{fmt}"
        write_output(render_audit(model, fmt), str(paths[fmt]))
    return DemoAudit(store=store_path, html=paths["html"], json=paths["json"], csv=paths["csv"], prices=prices,
                     status=model["status"], collection_line=coll.line(), bill_line="\n".join(lines),
                     warnings=list(coll.warnings), found=planted_findings(model))


def planted_findings(model: dict) -> dict:
    """What the audit says about each planted discrepancy (None when it did not find it)."""
    days = {(r["day"], r["item"]): r for r in model["days"]}

    def cause(day, name):
        r = days.get((day, "imm.ImageSplicing"))
        if r is None:
            return None
        for c in r["causes"]:
            if c["cause"] == name:
                return f"{day}: {c['text']}" + (f" ({c['quantity']} calls)" if c.get("quantity") else "") + \
                    f": {c['amount']} {model['currency']}"
        return None

    price = [cause(d, "price") for d in PRICE_DAYS]
    amounts = [next(c["amount"] for c in days[(d, "imm.ImageSplicing")]["causes"] if c["cause"] == "price")
               for d in PRICE_DAYS] if all(price) else []
    return {"missed day": cause(MISSED_DAY, "coverage_gap"),
            "different unit price": (f"{PRICE_DAYS[0]} to {PRICE_DAYS[-1]}: price difference: billed unit price "
                                     f"differs from the book price: {' + '.join(amounts)} "
                                     f"{model['currency']}") if amounts else None,
            "resource plan": cause(PLAN_DAY, "resource_plan")}


__all__ = ["run_demo_audit", "demo_bill_items", "demo_bill_files", "planted_findings", "DemoAudit"]
