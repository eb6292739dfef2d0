"""`costkit render` (a saved JSON report in another format, format_version checked) and `costkit diff`."""
import json
from pathlib import Path

from click.testing import CliRunner

from costkit.cli.main import main
from costkit.engine.forecast import estimate
from costkit.outputs.forecast import render_forecast

from helpers_forecast import write_scenario

AUDIT_GOLD = Path(__file__).parent / "gold" / "audit_report.json"


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def saved(tmp_path, name="a.json", **over):
    path = tmp_path / name
    result = invoke("estimate", write_scenario(tmp_path, f"{name}.yaml", **over), "--format", "json", "--out", path)
    assert result.exit_code == 0, result.output
    return path


def test_render_reproduces_each_format_of_a_saved_estimate(tmp_path):
    path = saved(tmp_path, months=2)
    model = json.loads(path.read_text(encoding="utf-8"))
    for fmt in ("table", "csv"):
        result = invoke("render", path, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.stdout == render_forecast(model, fmt)
    out = tmp_path / "r.html"
    assert invoke("render", path, "--format", "html", "--out", out).exit_code == 0
    assert model["scenario"]["name"] in out.read_text(encoding="utf-8")


def test_render_reads_stdin_and_a_partial_forecast(tmp_path):
    path = saved(tmp_path, prices=...)
    result = invoke("render", "-", "--format", "csv", input=path.read_text(encoding="utf-8"))
    assert result.exit_code == 0 and "price needed" in result.stdout


def test_render_refuses_an_unknown_or_missing_format_version(tmp_path):
    model = json.loads(saved(tmp_path).read_text(encoding="utf-8"))
    for version, needle in ((2, "format_version: 2 is not an estimate format"), (None, "format_version: missing")):
        m = dict(model)
        if version is None:
            del m["format_version"]
        else:
            m["format_version"] = version
        p = tmp_path / f"v{version}.json"
        p.write_text(json.dumps(m), encoding="utf-8")
        result = invoke("render", p, "--format", "table")
        assert result.exit_code == 2, result.output
        assert needle in result.stderr and str(p) in result.stderr


def test_render_bad_json_names_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "format_version": 1,\n  oops\n}\n', encoding="utf-8")
    result = invoke("render", p)
    assert result.exit_code == 2 and f"{p}:3: not JSON" in result.stderr
    other = tmp_path / "other.json"
    other.write_text('{"format_version": 1}', encoding="utf-8")
    assert "not a costkit estimate, cost or audit report" in invoke("render", other).stderr


def test_render_audit_as_table_csv_and_html(tmp_path):
    for fmt, needle in (("table", "imm.ImageSplicing"), ("csv", "imm.ImageSplicing"), ("html", "<html")):
        result = invoke("render", AUDIT_GOLD, "--format", fmt)
        assert result.exit_code == 0 and needle in result.stdout, (fmt, result.output)


def test_diff_two_forecasts_item_by_item(tmp_path):
    a, b = saved(tmp_path, "a.json"), saved(tmp_path, "b.json", tasks_per_month=1440000)
    result = invoke("diff", a, b, "--format", "json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["format_version"] == 1 and d["report_kind"] == "estimate"
    rows = {r["item"]: r for r in d["rows"]}
    assert rows["imm.ImageSplicing"] == {"item": "imm.ImageSplicing", "a": "720.00", "b": "1440.00",
                                         "difference": "720.00", "pct": "100.0"}
    assert rows["total"]["difference"] == str(
        __import__("decimal").Decimal(rows["total"]["b"]) - __import__("decimal").Decimal(rows["total"]["a"]))
    table = invoke("diff", a, b).stdout
    assert "B - A" in table and "100.0%" in table


def test_diff_of_a_partial_forecast_shows_n_a_and_a_note(tmp_path):
    a, b = saved(tmp_path, "a.json", prices=...), saved(tmp_path, "b.json")
    table = invoke("diff", a, b).stdout
    assert "n/a" in table and "A totals are excluding imm.ImageSplicing" in table


def test_diff_two_audit_months(tmp_path):
    b = json.loads(AUDIT_GOLD.read_text(encoding="utf-8"))
    b["month"] = "2025-10"
    b["items"][0]["billed_net"] = "104.00"
    p = tmp_path / "oct.json"
    p.write_text(json.dumps(b), encoding="utf-8")
    d = json.loads(invoke("diff", AUDIT_GOLD, p, "--format", "json").stdout)
    rows = {r["item"]: r for r in d["rows"]}
    assert rows["imm.ImageSplicing billed"]["difference"] == "52.00" and rows["imm.ImageSplicing billed"]["pct"] == "100.0"
    assert d["a"]["label"] == "2025-09" and d["b"]["label"] == "2025-10"


def test_diff_refuses_different_kinds(tmp_path):
    result = invoke("diff", saved(tmp_path), AUDIT_GOLD)
    assert result.exit_code == 2 and "cannot compare an estimate report" in result.stderr


def test_estimate_model_kind_detection_uses_the_python_model(tmp_path):
    from costkit.outputs.saved import report_kind
    assert report_kind(estimate(write_scenario(tmp_path), sensitivity=False), "x") == "estimate"


def _cost_model(month, splicing):
    items = {k: "0.00" for k in ("imm.ImageSplicing", "oss.GetRequest", "oss.PutRequest", "oss.IaRetrieval",
                                 "oss.ArchiveDirectRead", "oss.TransferAcceleration", "oss.Storage",
                                 "oss.EarlyDeletion")}
    items["imm.ImageSplicing"] = splicing
    return {"format_version": 1, "period": {"label": month}, "site": "cn", "currency": "CNY", "by": "item",
            "tasks": 10, "succeeded": 10, "failed": 0, "billable_splices": 10, "items": items,
            "quantities": {k: {"quantity": "0", "unit": "calls"} for k in items}, "total": splicing,
            "groups": [], "prices": [], "assumptions": {}, "warnings": []}


def test_render_and_diff_cost_months(tmp_path):
    a, b = tmp_path / "aug.json", tmp_path / "sep.json"
    a.write_text(json.dumps(_cost_model("2025-08", "10.00")), encoding="utf-8")
    b.write_text(json.dumps(_cost_model("2025-09", "7.50")), encoding="utf-8")
    assert "Cost of 2025-08" in invoke("render", a, "--format", "table").stdout
    assert invoke("render", a, "--format", "html").exit_code == 2  # no HTML cost report: said, not guessed
    d = json.loads(invoke("diff", a, b, "--format", "json").stdout)
    total = {r["item"]: r for r in d["rows"]}["total"]
    assert (total["difference"], total["pct"]) == ("-2.50", "-25.0")
