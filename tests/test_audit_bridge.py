"""The audit bridge (expected -> billed net, one step per cause), the invoice anchor, ImageSplicing per project,
partial months in the trend and the synthetic flag: the model's figures and their HTML rendering."""
from __future__ import annotations

from decimal import Decimal

from test_audit import (add_tasks, audit, base_month, bill_item, collected, import_bill, item_row, prices,  # noqa: F401
                        splice_line, store)

from costkit.audit.bridge import bridges
from costkit.audit.causes import CAUSES
from costkit.outputs.audit import bridge_chart_rows, render_audit


def _assert_adds_up(b):
    running = Decimal(b["expected"])
    for s in b["steps"]:
        assert Decimal(s["from"]) == running, (s, running)
        running += Decimal(s["amount"])
        assert Decimal(s["to"]) == running, s
    assert running == Decimal(b["billed_net"]) and b["adds_up"], b
    claimed = sum((Decimal(s["amount"]) for s in b["steps"] if s["claimed"]), Decimal(0))
    assert Decimal(b["expected"]) + claimed == Decimal(b["attributable"])


def _mixed_month(store, tmp_path, prices):
    base_month(store, n=7)
    add_tasks(store, "2025-09-02", 2, status="Failed", hour=14)
    for d in ("2025-09-01", "2025-09-02"):
        add_tasks(store, d, 3, sources=5, prefix="oss")
    import_bill(store, tmp_path, [
        splice_line("2025-09-01", 10, price="1333", plan="0.33"), splice_line("2025-09-02", 11),
        splice_line("2025-09-03", 7, discount="0.07"), splice_line("2025-09-04", 5),
        bill_item("2025-09-01", "oss", "GetRequest", billing_item="GET类请求次数", product_name="对象存储",
                  pretax_gross="9.99", list_price="0.01", list_price_unit="CNY/次", usage="999", usage_unit="次",
                  instance_id="cn-hangzhou;standard"),
        bill_item("2025-09-05", "oss", "NetworkOut", billing_item="外网流出流量", product_name="对象存储",
                  pretax_gross="0.5", usage="1", usage_unit="GB")])
    return audit(store, prices)


def test_every_bridge_adds_up_exactly_from_expected_to_billed_net(store, tmp_path, prices):
    m = _mixed_month(store, tmp_path, prices)
    b = m["bridge"]
    assert [x["item"] for x in b["items"]] == [r["item"] for r in m["items"]]
    for x, r in zip(b["items"], m["items"]):
        assert (x["expected"], x["billed_net"]) == (r["expected"], r["billed_net"])
        _assert_adds_up(x)
    _assert_adds_up(b["month"])
    assert (b["month"]["expected"], b["month"]["billed_net"]) == (m["kpis"]["expected"], m["kpis"]["billed_net"])
    assert b["month"]["attributable"] == m["kpis"]["billed_attributable"]
    assert not [w for w in m["warnings"] if "bridge" in w]


def test_bridge_steps_follow_the_cause_model_with_rounding_its_own_step(store, tmp_path, prices):
    m = _mixed_month(store, tmp_path, prices)
    order = list(CAUSES)
    month = m["bridge"]["month"]
    names = [s["cause"] for s in month["steps"]]
    assert names == sorted(names, key=order.index)
    assert {"coverage_gap", "failed_billed", "price", "discount", "rounding", "not_splicing"} <= set(names), names
    assert names.index("rounding") < names.index("not_splicing")
    # Unclaimed whole-bucket use comes last, after every claimed step.
    claimed = [s["claimed"] for s in month["steps"]]
    assert claimed == sorted(claimed, reverse=True)
    # The month's step of a cause is the sum of the items' steps of that cause.
    for s in month["steps"]:
        per_item = [Decimal(x["amount"]) for b in m["bridge"]["items"] for x in b["steps"] if x["cause"] == s["cause"]]
        assert sum(per_item, Decimal(0)) == Decimal(s["amount"]), s


def test_rounding_is_a_step_even_when_the_lines_round_exactly():
    items = [{"item": "imm.ImageSplicing", "unit": "calls", "expected": "10.00", "billed_net": "12.00",
              "causes": [{"cause": "price", "amount": "2.00", "quantity": None}]}]
    warnings: list = []
    b = bridges(items, warnings)
    assert [(s["cause"], s["amount"]) for s in b["items"][0]["steps"]] == [("price", "2.00"), ("rounding", "0.00")]
    assert warnings == []


def test_a_bridge_that_does_not_add_up_is_a_warning_not_a_hidden_step():
    items = [{"item": "imm.ImageSplicing", "unit": "calls", "expected": "10.00", "billed_net": "12.01",
              "causes": [{"cause": "price", "amount": "2.00", "quantity": None}]}]
    warnings: list = []
    b = bridges(items, warnings)
    assert not b["items"][0]["adds_up"] and not b["month"]["adds_up"]
    assert len(warnings) == 2 and "does not add up" in warnings[0]
    assert [s["cause"] for s in b["items"][0]["steps"]] == ["price", "rounding"]


def test_bridge_chart_draws_expected_the_claimed_causes_and_the_splicing_share(store, tmp_path, prices):
    m = _mixed_month(store, tmp_path, prices)
    rows = bridge_chart_rows(m["bridge"]["month"])
    assert rows[0]["label"] == "expected" and rows[-1]["label"] == "billed, splicing share"
    assert [r["label"] for r in rows[1:-1]][:2] == ["coverage gap", "failed tasks billed"]
    assert "not splicing" not in [r["label"] for r in rows]
    assert rows[-1]["text"] == m["kpis"]["billed_attributable"]


def test_invoice_anchor_splits_the_payable_total_exactly(store, tmp_path, prices):
    m = _mixed_month(store, tmp_path, prices)
    inv = m["invoice"]
    # Every line's net: 13.33-0.33 + 11 + 7-0.07 + 5 + 9.99 + 0.5 (unmapped).
    assert inv["payable"] == "46.42" and inv["lines"] == 6
    assert inv["splicing_share"] == m["kpis"]["billed_attributable"]
    assert Decimal(inv["splicing_share"]) + Decimal(inv["rest"]) == Decimal(inv["payable"])
    assert sum(Decimal(v) for v in inv["rest_parts"].values()) == Decimal(inv["rest"])
    assert inv["rest_parts"]["unmapped"] == "0.50" and inv["rest_parts"]["not_splicing"] == m["kpis"]["not_splicing"]


def test_imagesplicing_billed_against_expected_per_project(store, tmp_path, prices):
    base_month(store, days=("2025-09-01",), n=10)
    other = [dict(splice_line("2025-09-01", 4), InstanceID="p-unknown")]
    import_bill(store, tmp_path, [splice_line("2025-09-01", 12), *other])
    m = audit(store, prices)
    rows = {r["project"]: r for r in m["projects"]["rows"]}
    assert m["projects"]["named"] is True
    assert (rows["p1"]["billed_quantity"], rows["p1"]["expected_quantity"]) == ("12", "10")
    assert (rows["p1"]["billed_net"], rows["p1"]["expected"], rows["p1"]["variance"]) == ("12.00", "10.00", "2.00")
    assert rows["p-unknown"]["expected"] is None and "no project" in rows["p-unknown"]["note"]
    assert m["projects"]["billed_net"] == item_row(m)["billed_net"] == "16.00"


def test_a_month_holding_six_hours_of_tasks_is_partial_in_the_trend(store, tmp_path, prices):
    for hour in (9, 12, 15):
        add_tasks(store, "2025-09-10", 2, hour=hour, prefix=f"h{hour}")
    collected(store, "2025-08-31", "2025-10-01")
    import_bill(store, tmp_path, [splice_line("2025-09-10", 6)])
    m = audit(store, prices)
    t = m["trend"][-1]
    assert t["month"] == "2025-09" and t["partial"] is True
    assert (t["first_task"], t["last_task"], t["task_days"], t["days"]) == (
        "2025-09-10T09:00:00+08:00", "2025-09-10T15:00:01+08:00", 1, 30)
    html = render_audit(m, "html", generated_at="2025-10-01T00:00:00+00:00")
    assert "partial month</strong>: tasks from 2025-09-10 09:00 +08:00 to 2025-09-10 15:00 +08:00, 1 of 30 days" in html


def test_a_full_month_of_tasks_is_not_partial(store, tmp_path, prices):
    add_tasks(store, "2025-09-01", 1, hour=3)
    add_tasks(store, "2025-09-30", 1, hour=20, prefix="late")
    collected(store, "2025-08-31", "2025-10-01")
    import_bill(store, tmp_path, [splice_line("2025-09-01", 1), splice_line("2025-09-30", 1)])
    assert audit(store, prices)["trend"][-1]["partial"] is False


def test_synthetic_flag_defaults_off_and_puts_a_banner_on_top(store, tmp_path, prices):
    base_month(store, days=("2025-09-01",))
    import_bill(store, tmp_path, [splice_line("2025-09-01", 10)])
    plain, synthetic = audit(store, prices), audit(store, prices, synthetic=True)
    assert plain["synthetic"] is False and synthetic["synthetic"] is True
    assert 'id="illustrative-banner"' not in render_audit(plain, "html", generated_at="2025-10-01T00:00:00Z")
    html = render_audit(synthetic, "html", generated_at="2025-10-01T00:00:00Z")
    body = html.split("<main", 1)[1]
    assert body.index('id="illustrative-banner"') < body.index("<header") and "Synthetic data." in body


def test_bridge_table_renders_every_step_and_the_running_totals(store, tmp_path, prices):
    m = _mixed_month(store, tmp_path, prices)
    html = render_audit(m, "html", generated_at="2025-10-01T00:00:00Z")
    table = html.split('id="bridge-month-table"', 1)[1].split("</table>", 1)[0]
    for s in m["bridge"]["month"]["steps"]:
        assert f'data-cause="{s["cause"]}"' in table
    assert "Billed, attributable to splicing" in table and m["bridge"]["month"]["billed_net"] in table
