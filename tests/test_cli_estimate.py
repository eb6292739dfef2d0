"""`costkit estimate` through the CLI runner: output formats and every bad-input case (exit 2, one line)."""
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from costkit.cli.main import main

from helpers_forecast import write_scenario


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_bad_input(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    for n in needles:
        assert n in lines[0], lines[0]


def test_json_has_every_month_and_item_key_and_a_format_version(tmp_path):
    s = write_scenario(tmp_path, start="2025-07", months=3)
    result = invoke("estimate", s, "--format", "json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["format_version"] == 1 and m["currency"] == "CNY" and m["site"] == "cn"
    assert [mm["month"] for mm in m["months"]] == ["2025-07", "2025-08", "2025-09"]
    for mm in m["months"]:
        assert set(mm) >= {"month", "tasks", "billable_splices", "items", "total"}
        assert set(mm["items"]) == set(m["item_keys"])
        assert all(Decimal(v).as_tuple().exponent == -2 for v in mm["items"].values())
    assert {"items", "total", "prices", "assumptions", "warnings", "scenario"} <= set(m)
    assert all(p["source"] and p["confidence"] for p in m["prices"])


def test_csv_table_adds_up(tmp_path):
    result = invoke("estimate", write_scenario(tmp_path, months=2), "--format", "csv")
    rows = [r.split(",") for r in result.stdout.strip().splitlines()]
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert total[0] == "TOTAL"
    for col in range(3, len(header)):
        assert sum(Decimal(r[col]) for r in body) == Decimal(total[col])


def test_out_writes_the_report_file(tmp_path):
    out = tmp_path / "r" / "f.json"
    result = invoke("estimate", write_scenario(tmp_path), "--format", "json", "--out", out)
    assert result.exit_code == 0
    assert json.loads(out.read_text())["total"]


def test_malformed_yaml_names_the_line(tmp_path):
    s = write_scenario(tmp_path, text="name: x\nsite: cn\nstart: [2025-07\nmonths: 3\n")
    assert_one_line_bad_input(invoke("estimate", s), str(s), "malformed YAML")


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    s = write_scenario(tmp_path, target_retension_days=30)
    assert_one_line_bad_input(invoke("estimate", s), "target_retension_days", "did you mean target_retention_days",
                              str(s))


@pytest.mark.parametrize("key,value,needle", [
    ("tasks_per_month", "lots", "expected a whole number"),
    ("archive_direct_read", "maybe", "expected true or false"),
    ("sources_per_task", 2.5, "expected a whole number"),
])
def test_wrong_type_is_bad_input(tmp_path, key, value, needle):
    s = write_scenario(tmp_path, **{key: value})
    assert_one_line_bad_input(invoke("estimate", s), key, needle)


@pytest.mark.parametrize("key,value", [("months", 121), ("failure_rate", "1.5"), ("sources_per_task", 11),
                                       ("tasks_per_month", -1)])
def test_out_of_range_is_bad_input(tmp_path, key, value):
    s = write_scenario(tmp_path, **{key: value})
    assert_one_line_bad_input(invoke("estimate", s), key, "out of range")


def test_unknown_storage_class_is_bad_input(tmp_path):
    s = write_scenario(tmp_path, source_storage_class="Glacier")
    assert_one_line_bad_input(invoke("estimate", s), "source_storage_class", "unknown storage class 'Glacier'")


def test_missing_price_names_every_missing_item_and_how_to_supply_it(tmp_path):
    s = write_scenario(tmp_path, site="intl", prices=[])
    result = invoke("estimate", s, "--strict")
    assert_one_line_bad_input(result, "imm.ImageSplicing", "oss.GetRequest", "oss.PutRequest", "--prices")


def test_user_price_file_fills_a_missing_price(tmp_path):
    s = write_scenario(tmp_path, prices=...)
    assert invoke("estimate", s, "--strict").exit_code == 2
    prices = tmp_path / "p.yaml"
    prices.write_text("entries:\n  - item: imm.ImageSplicing\n    unit: 1000 calls\n    price: '0.7'\n"
                      "    currency: CNY\n    effective_from: '2025-07-28T11:00:00+08:00'\n"
                      "    confidence: contract\n    source: contract 2025-001\n", encoding="utf-8")
    result = invoke("estimate", s, "--prices", prices, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["items"]["imm.ImageSplicing"] == "504.00"  # 720,000 x 0.7 / 1000


def test_missing_scenario_file_is_bad_input(tmp_path):
    assert_one_line_bad_input(invoke("estimate", tmp_path / "nope.yaml"), "file not found")


def test_html_report_escapes_a_script_in_the_scenario_name(tmp_path):
    s = write_scenario(tmp_path, name="<script>alert('x')</script> budget")
    out = tmp_path / "f.html"
    result = invoke("estimate", s, "--format", "html", "--out", out)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_prices_check_names_the_line_of_malformed_yaml(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("entries:\n  - item: oss.Storage\n    unit: [GB\n", encoding="utf-8")
    result = invoke("prices", "check", bad)
    assert result.exit_code == 2
    assert f"{bad}:" in result.stderr and "malformed YAML" in result.stderr


def test_ten_year_horizon_with_sensitivity_runs(tmp_path):
    s = write_scenario(tmp_path, start="2025-01", months=120, monthly_growth="0.01", target_retention_days=45,
                       target_storage_class="IA", daily_profile=[str(h % 5) for h in range(24)])
    result = invoke("estimate", s, "--format", "json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert len(m["months"]) == 120 and m["sensitivity"]
