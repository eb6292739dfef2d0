"""The notebook API: the README's Python blocks run as written, and every public frame is numeric, exact
and plottable (Arrow decimals for money, Periods for months, tz-aware times)."""
from __future__ import annotations

import datetime
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import matplotlib
import pandas as pd
import pyarrow as pa
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import costkit  # noqa: E402
from costkit.model.scenario import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "costkit" / "data" / "demo-scenario.yaml"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A folder laid out as the README assumes: the demo's store as costkit.duckdb (2025-08, with its
    synthetic bill), its contract prices as contract-prices.yaml, the demo scenario as scenario.yaml."""
    from costkit.demo.audit import run_demo_audit
    d = tmp_path_factory.mktemp("readme")
    demo = run_demo_audit(d / "demo", per_day=12)
    shutil.copy(demo.store, d / "costkit.duckdb")
    shutil.copy(demo.prices, d / "contract-prices.yaml")
    shutil.copy(SCENARIO, d / "scenario.yaml")
    return d


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_blocks():
    assert len(_readme_blocks()) >= 5


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_each_readme_python_block_runs_as_written(demo_dir, index, monkeypatch):
    monkeypatch.chdir(demo_dir)
    code = _readme_blocks()[index]
    plt.close("all")   # each block starts with no figure, as in a fresh notebook
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
    plt.close("all")


def _money(dtype) -> bool:
    return isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype)


def _plot(df: pd.DataFrame, y: str, x: str | None = None):
    ax = df.plot(x=x, y=y)
    assert ax.lines or ax.patches
    plt.close("all")


def test_months_frame_is_numeric_exact_and_plots():
    df = costkit.months_frame(costkit.estimate(str(SCENARIO)))
    assert isinstance(df["month"].dtype, pd.PeriodDtype)
    assert df["tasks"].dtype == "int64"
    assert not [c for c in df.columns if df[c].dtype == object]
    for c in df.columns[2:]:
        assert _money(df[c].dtype), c
    assert df["total"].dtype.pyarrow_dtype == pa.decimal128(38, 2)
    model = costkit.estimate(str(SCENARIO))
    assert str(df["total"].sum()) == model["total"]          # exact: the frame adds up to the model
    _plot(df, "total", "month")


def test_estimate_takes_a_path_a_dict_and_a_scenario():
    import yaml
    by_path = costkit.estimate(str(SCENARIO))
    assert costkit.estimate(SCENARIO)["total"] == by_path["total"]
    assert costkit.estimate(load_scenario(SCENARIO))["total"] == by_path["total"]
    data = yaml.safe_load(SCENARIO.read_text())              # floats as YAML reads them: 0.03, 1.5
    assert costkit.estimate(data)["total"] == by_path["total"]
    from costkit.core.errors import BadInput
    with pytest.raises(BadInput, match="monthly_growth"):
        costkit.estimate({**data, "monthly_growth": "lots"})


def test_load_tasks_takes_dates_strings_and_aware_datetimes_and_any_case_status(demo_dir):
    store = str(demo_dir / "costkit.duckdb")
    by_text = costkit.load_tasks(store, since="2025-08-01", status="succeeded")
    by_date = costkit.load_tasks(store, since=datetime.date(2025, 8, 1), status="Succeeded")
    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    by_dt = costkit.load_tasks(store, since=datetime.datetime(2025, 8, 1, tzinfo=shanghai), status="SUCCEEDED")
    assert len(by_text) == len(by_date) == len(by_dt) > 0
    assert set(by_text["status"]) == {"Succeeded"}
    assert str(by_text["start_time"].dtype).startswith("datetime64") and by_text["start_time"].dt.tz is not None
    assert (by_text["start_time"] >= pd.Timestamp("2025-07-31T16:00:00Z")).all()
    first_week = costkit.load_tasks(store, since="2025-08-01", until="2025-08-08")
    assert 0 < len(first_week) < len(costkit.load_tasks(store))
    counts = by_text.groupby(by_text["end_time"].dt.tz_convert("Asia/Shanghai").dt.date).size()
    assert counts.plot().lines
    plt.close("all")
    from costkit.core.errors import BadInput
    with pytest.raises(BadInput):
        costkit.load_tasks(store, since="2025-08-01T00:00:00")   # a naive instant: which day is it?
    with pytest.raises(BadInput):
        costkit.load_tasks(store, status="done")


def test_cost_frames_gives_priced_groups_by_default_and_lines_when_asked(demo_dir):
    store, prices = str(demo_dir / "costkit.duckdb"), str(demo_dir / "contract-prices.yaml")
    groups = costkit.cost_frames(store, "2025-08", prices_file=prices)
    assert isinstance(groups, pd.DataFrame)
    assert list(groups.columns) == ["group", "item", "quantity", "unit", "amount", "currency"]
    assert _money(groups["amount"].dtype) and _money(groups["quantity"].dtype)
    with costkit.Store.open(store, create=False) as st:
        report = costkit.price_history(st, costkit.parse_period("2025-08"), prices_file=prices)
    assert str(groups["amount"].sum()) == report["total"]
    _plot(groups, "amount", "item")
    by_project = costkit.cost_frames(store, "2025-08", prices_file=prices, by="project")
    assert set(by_project["group"]) and str(by_project["amount"].sum()) == report["total"]
    lines, groups2 = costkit.cost_frames(store, "2025-08", prices_file=prices, lines=True)
    assert groups2.equals(groups)
    assert _money(lines["amount"].dtype) and lines["amount"].dtype.pyarrow_dtype == pa.decimal128(38, 18)
    assert isinstance(lines["day"].dtype, pd.PeriodDtype) and lines["charge_start"].dt.tz is not None
    assert not [c for c in ("quantity", "unit_price", "amount") if lines[c].dtype == object]
    daily = lines.groupby("day")["amount"].sum()
    assert daily.plot().lines
    plt.close("all")
    assert abs(Decimal(str(lines["amount"].sum())) - Decimal(report["total"])) < Decimal("0.01") * 9


def test_mapped_bill_is_numeric_and_plots(demo_dir):
    with costkit.Store.open(str(demo_dir / "costkit.duckdb"), create=False) as st:
        frame = costkit.mapped_bill(st, "2025-08")
    assert len(frame) > 0
    for c in ("pretax_gross_amount", "pretax_amount", "usage", "net_amount", "deductions"):
        assert _money(frame[c].dtype), c
    numbers_as_objects = [c for c in frame.columns
                          if frame[c].dtype == object and any(isinstance(v, Decimal) for v in frame[c])]
    assert numbers_as_objects == []
    assert frame["day_start"].dt.tz is not None and frame["billing_date"].dt.tz is not None
    by_item = frame.groupby("item")["net_amount"].sum()
    from costkit.store.bills import mapped_bill_lines
    from costkit.store.db import Store
    with Store.open(str(demo_dir / "costkit.duckdb"), create=False) as st:
        exact = mapped_bill_lines(st, "2025-08")
    assert sum(exact["net_amount"], Decimal(0)) == frame["net_amount"].sum()
    ax = by_item.plot.bar()
    assert ax.patches
    plt.close("all")


def test_tasks_frame_plots_counts_per_day(demo_dir):
    df = costkit.load_tasks(str(demo_dir / "costkit.duckdb"))
    assert df["end_time"].dt.tz is not None
    s = df.set_index("end_time").resample("D").size()
    assert s.plot().lines
    plt.close("all")
    os.environ.pop("MPLBACKEND", None)
