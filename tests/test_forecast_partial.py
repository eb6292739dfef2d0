"""Forecasts with unknown prices (partial by default, --strict), --price, price precedence and terse user
entries, whole counts, the price sweep and break-even, and --budget (exit 3)."""
import json
from decimal import Decimal

import yaml
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.engine.forecast import estimate, months_frame
from costkit.prices.book import check_book

from helpers_forecast import BASE, write_scenario


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def unpriced(tmp_path, **over):
    """A scenario without an ImageSplicing price after the cutover (the bundled book has it null)."""
    return write_scenario(tmp_path, prices=..., **over)


def test_unknown_price_gives_a_partial_forecast_with_quantities_and_exit_0(tmp_path):
    result = invoke("estimate", unpriced(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["complete"] is False and m["excluded_items"] == ["imm.ImageSplicing"]
    assert m["items"]["imm.ImageSplicing"] is None and m["months"][0]["items"]["imm.ImageSplicing"] is None
    assert m["price_needed"]["imm.ImageSplicing"]["quantity"] == "720000"  # splices, never priced
    assert m["total_label"] == "excluding imm.ImageSplicing (price needed)"
    known = [v for k, v in m["items"].items() if v is not None]
    assert Decimal(m["total"]) == sum(Decimal(v) for v in known)
    [mp] = m["missing_prices"]
    assert (mp["item"], mp["unit"], mp["currency"]) == ("imm.ImageSplicing", "1000 calls", "CNY")
    assert mp["from"] == "2025-09-01T00:00:00+08:00" and mp["quantity"] == "720000"
    entry = yaml.safe_load(mp["yaml"])[0]
    assert entry["price"] is None and entry["effective_from"] == "2025-07-28T11:00:00+08:00"  # no number filled in


def test_the_pasted_entry_with_a_price_completes_the_forecast(tmp_path):
    m = estimate(unpriced(tmp_path), sensitivity=False)
    entry = yaml.safe_load(m["missing_prices"][0]["yaml"])[0]
    entry["price"] = "2.5"
    done = estimate(write_scenario(tmp_path, "done.yaml", prices=[entry]), sensitivity=False)
    assert done["complete"] is True and done["items"]["imm.ImageSplicing"] == "1800.00"  # 720,000 x 2.5 / 1000
    [p] = [p for p in done["prices"] if p["item"] == "imm.ImageSplicing"]
    assert p["layer"] == "scenario" and p["confidence"] == "user" and p["currency"] == "CNY"
    text = (tmp_path / "done.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, ln in enumerate(text, 1) if "item: imm.ImageSplicing" in ln)
    assert p["source"] == f"{tmp_path / 'done.yaml'}:{line}"  # file and line of the entry


def test_every_format_labels_the_totals_excluding_the_unpriced_item(tmp_path):
    s = unpriced(tmp_path)
    table = invoke("estimate", s).stdout
    assert "excluding imm.ImageSplicing (price needed)" in table and "price needed" in table
    assert "720000 calls (splices)" in table
    csv = invoke("estimate", s, "--format", "csv").stdout.splitlines()
    assert csv[0].endswith("total excluding imm.ImageSplicing (price needed)")
    assert csv[-1].startswith("TOTAL excluding imm.ImageSplicing") and ",price needed," in csv[-1]
    out = tmp_path / "f.html"
    assert invoke("estimate", s, "--format", "html", "--out", out).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert 'id="unknown-prices"' in html and 'class="num price-needed">price needed<' in html
    assert html.count("excluding imm.ImageSplicing (price needed)") >= 3
    assert 'id="price-sweep"' in html and "<script" not in html and "http" not in html.split("<body")[0]


def test_strict_keeps_exit_2_naming_the_missing_price(tmp_path):
    result = invoke("estimate", unpriced(tmp_path), "--strict")
    assert result.exit_code == 2 and "missing price" in result.stderr and "imm.ImageSplicing" in result.stderr


def test_price_option_fills_a_missing_price_and_beats_every_layer(tmp_path):
    s = write_scenario(tmp_path)  # the scenario prices ImageSplicing at 1 CNY / 1000 calls
    prices = tmp_path / "p.yaml"
    prices.write_text("- {item: imm.ImageSplicing, price: '2', unit: 1000 calls}\n", encoding="utf-8")
    by_file = estimate(s, prices, sensitivity=False)
    assert by_file["items"]["imm.ImageSplicing"] == "1440.00"  # --prices beats the scenario
    result = invoke("estimate", s, "--prices", prices, "--price", "imm.ImageSplicing=2.5/1000calls",
                    "--format", "json")
    m = json.loads(result.stdout)
    assert m["items"]["imm.ImageSplicing"] == "1800.00"
    [p] = [p for p in m["prices"] if p["item"] == "imm.ImageSplicing"]
    assert p["layer"] == "cli" and p["source"] == "--price imm.ImageSplicing=2.5/1000calls"
    assert [x["layer"] for x in m["price_layers"]] == ["cli", "user", "scenario", "bundled"]


def test_price_option_with_selectors_and_default_unit(tmp_path):
    s = write_scenario(tmp_path)
    m = estimate(s, sensitivity=False, prices=["oss.Storage[storage_class=Standard,redundancy=LRS]=0.24"])
    base = estimate(s, sensitivity=False)
    assert Decimal(m["items"]["oss.Storage"]) > Decimal(base["items"]["oss.Storage"])
    [p] = [p for p in m["prices"] if p["item"] == "oss.Storage"]
    assert p["unit"] == "GB-month" and p["layer"] == "cli"


def test_bad_price_option_is_one_line_exit_2(tmp_path):
    for bad, needle in [("imm.ImageSplicing", "ITEM=VALUE"), ("imm.Nope=1", "unknown item"),
                        ("imm.ImageSplicing=1/GB", "does not measure"), ("imm.ImageSplicing=-1", "price")]:
        result = invoke("estimate", write_scenario(tmp_path), "--price", bad)
        assert result.exit_code == 2, (bad, result.output)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--price" in lines[0] and needle in lines[0], lines


def test_terse_user_entries_with_top_level_selectors(tmp_path):
    s = write_scenario(tmp_path, prices=[{"item": "imm.ImageSplicing", "price": "2.5", "unit": "1000 calls",
                                          "effective_from": "2025-07-28T11:00:00+08:00"},
                                         {"item": "oss.Storage", "storage_class": "Standard", "redundancy": "LRS",
                                          "price": "0", "unit": "GB-month"}])
    m = estimate(s, sensitivity=False)
    assert m["complete"] and m["items"]["imm.ImageSplicing"] == "1800.00" and m["items"]["oss.Storage"] == "0.00"


def test_bundled_books_stay_strict(tmp_path):
    f = tmp_path / "book.yaml"
    f.write_text("entries:\n  - {item: imm.ImageSplicing, price: '2.5', unit: 1000 calls, storage_class: IA}\n",
                 encoding="utf-8")
    problems = "\n".join(check_book(f))
    assert "currency: missing" in problems and "confidence: missing" in problems and "storage_class" in problems


def test_whole_counts_per_month_and_in_the_cutover_month(tmp_path):
    s = write_scenario(tmp_path, start="2025-07", months=3, tasks_per_month=1247618, monthly_growth="0.03",
                       failure_rate="0.02")
    m = estimate(s, sensitivity=False)
    for mm in m["months"]:
        assert mm["succeeded"].isdigit() and mm["billable_splices"].isdigit()
    assert int(m["months"][0]["billable_splices"]) < int(m["months"][0]["succeeded"])  # cutover 07-28 11:00
    assert sum(int(mm["billable_splices"]) for mm in m["months"]) == int(m["billable_splices"])
    assert sum(int(mm["succeeded"]) for mm in m["months"]) == int(m["succeeded"])
    assert [mm["tasks"] for mm in m["months"]] == [1247618, 1285047, 1323598]
    frame = months_frame(m)
    assert list(frame["tasks"]) == [1247618, 1285047, 1323598]


def test_sensitivity_moves_sources_by_one_and_has_price_drivers(tmp_path):
    m = estimate(write_scenario(tmp_path, sources_per_task=4))
    rows = {r["driver"]: r for r in m["sensitivity"]}
    assert (rows["sources_per_task"]["low_value"], rows["sources_per_task"]["high_value"]) == ("3", "5")
    price = rows["price imm.ImageSplicing"]
    assert (price["base_value"], price["low_value"], price["high_value"]) == ("1", "0.8", "1.2")
    assert price["low_total"] == estimate(write_scenario(tmp_path, "lo.yaml", sources_per_task=4), sensitivity=False,
                                          prices=["imm.ImageSplicing=0.8"])["total"]


def test_sweep_totals_are_the_totals_at_that_price(tmp_path):
    s = unpriced(tmp_path, start="2025-07", months=2)
    m = estimate(s, sensitivity=False)
    [row] = [r for r in m["price_sweep"] if r["item"] == "imm.ImageSplicing"]
    assert row["price"] is None and row["why"] == "price unknown"
    for point in row["points"]:
        at = estimate(s, sensitivity=False, prices=[f"imm.ImageSplicing={point['price']}/1000calls"])
        assert at["total"] == point["total"], point


def test_break_even_price_reaches_the_budget(tmp_path):
    s = unpriced(tmp_path, months=2)
    m = estimate(s, sensitivity=False, budget="5000")
    [row] = [r for r in m["price_sweep"] if r["item"] == "imm.ImageSplicing"]
    be = Decimal(row["break_even"]["price"])
    at = estimate(s, sensitivity=False, prices=[f"imm.ImageSplicing={be}"])
    above = estimate(s, sensitivity=False, prices=[f"imm.ImageSplicing={be + Decimal('0.000001')}"])
    assert Decimal(at["total"]) <= 5000 < Decimal(above["total"])
    assert m["budget"]["passed"] is None  # the partial total is within it: cannot tell yet


def test_budget_passed_by_a_month_exits_3_naming_it(tmp_path):
    s = write_scenario(tmp_path, months=3, monthly_growth="0.5")
    months = estimate(s, sensitivity=False)["months"]
    limit = Decimal(months[1]["total"])  # the third month passes it, the first two do not
    result = invoke("estimate", s, "--budget", f"{limit}/month", "--format", "json")
    assert result.exit_code == 3, result.output
    assert months[2]["month"] in result.stderr and months[0]["month"] not in result.stderr.split("budget:")[1]
    assert json.loads(result.stdout)["budget"]["over"] == [{"month": months[2]["month"], "total": months[2]["total"]}]
    total = estimate(s, sensitivity=False)["total"]
    assert invoke("estimate", s, "--budget", total).exit_code == 0
    over = invoke("estimate", s, "--budget", Decimal(total) - Decimal("0.01"))
    assert over.exit_code == 3 and "horizon total" in over.stderr


def test_bad_budget_is_exit_2(tmp_path):
    for bad in ("lots", "100/week", "-5", "100 USD"):
        result = invoke("estimate", write_scenario(tmp_path), "--budget", bad)
        assert result.exit_code == 2 and "--budget" in result.stderr, (bad, result.output)


def test_scenario_default_site_currency_for_intl(tmp_path):
    s = write_scenario(tmp_path, site="intl", prices=[{"item": "imm.ImageSplicing", "price": "0.4",
                                                       "unit": "1000 calls"}])
    m = estimate(s, sensitivity=False)
    [p] = [p for p in m["prices"] if p["item"] == "imm.ImageSplicing"]
    assert p["currency"] == "USD" and BASE["tasks_per_month"] == 720000
