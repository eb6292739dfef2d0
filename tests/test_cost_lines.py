"""Charge lines at billing granularity: one row per task x item x interval (hour, Asia/Shanghai day or month)
x price segment, adding up to the cost report."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.core.money import round_money
from costkit.engine.history import cost_frames, price_history
from costkit.engine.lines import line_columns, line_cuts
from costkit.engine.period import parse_period
from costkit.model.settings import parse_settings
from costkit.store.db import Store

from test_cost import GB, KB, PRICES, T, add_task, obj, store  # noqa: F401  (fixtures)

# A storage price change mid-day (2025-09-15 10:00 +08:00) cuts that day's lines in two segments.
_OLD = ('{item: oss.Storage, selectors: {storage_class: Standard, redundancy: LRS}, unit: GB-month, price: "0.72",\n'
        '     currency: CNY, confidence: contract, source: test}')
CHANGED = PRICES.replace(_OLD, _OLD[:-1] + ', effective_to: "2025-09-15T10:00:00+08:00"}\n'
                         '  - {item: oss.Storage, selectors: {storage_class: Standard, redundancy: LRS}, unit: GB-month,\n'
                         '     price: "1.5", currency: CNY, confidence: contract, source: test,\n'
                         '     effective_from: "2025-09-15T10:00:00+08:00"}')


@pytest.fixture()
def prices(tmp_path):
    assert CHANGED != PRICES
    p = tmp_path / "prices.yaml"
    p.write_text(CHANGED)
    return str(p)


def _history(store):
    add_task(store, "a", T(2025, 9, 1, 0, 10), ["oss://s/x.jpg"], "oss://d/a.jpg")
    add_task(store, "b", T(2025, 9, 20, 3), ["oss://s/x.jpg", "oss://s/y.jpg"], "oss://d/b.jpg", project="p2")
    add_task(store, "c", T(2025, 8, 25), [], "oss://d/c.jpg")              # stored into September
    add_task(store, "f", T(2025, 9, 3), ["oss://s/y.jpg"], "oss://d/f.jpg", status="Failed")
    obj(store, "oss://s/x.jpg", GB)
    obj(store, "oss://s/y.jpg", GB // 3, "IA")
    obj(store, "oss://d/a.jpg", GB)
    obj(store, "oss://d/b.jpg", 10 * KB, "IA", gone_since=T(2025, 9, 25, 5, 30))
    obj(store, "oss://d/c.jpg", 3 * GB // 7)


def _sum(col) -> Decimal:
    return sum(col, Decimal(0))


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_lines_add_up_to_the_report_at_every_granularity(store, prices, granularity):
    """The report is one figure per billing day x item, rounded once (the bill's rule): the lines of a day,
    summed and rounded, give it; at month granularity the lines sum to the exact amount."""
    _history(store)
    s = parse_settings({})
    report = price_history(store, parse_period("2025-09"), prices_file=prices, settings=s)
    lines, totals = cost_frames(store, parse_period("2025-09"), prices_file=prices, settings=s, lines=True,
                                granularity=granularity)
    assert list(lines.columns) == line_columns(granularity)
    day = (lines["hour"].dt.tz_convert("Asia/Shanghai").dt.date.astype(str) if granularity == "hour"
           else lines["day"].astype(str))
    for item, amount in report["items"].items():
        mine = lines["item"] == item
        by_day = lines[mine].groupby(day[mine])["amount"].apply(_sum)
        assert str(sum((round_money(v) for v in by_day), Decimal("0.00"))) == amount, item
    assert str(_sum(totals["amount"])) == report["total"]


def test_month_lines_sum_to_the_exact_amount(store, prices):
    _history(store)
    p = parse_period("2025-09")
    month, _ = cost_frames(store, p, prices_file=prices, lines=True, granularity="month")
    day, _ = cost_frames(store, p, prices_file=prices, lines=True, granularity="day")
    assert list(month.columns) == line_columns("month")
    for item in set(day["item"]):
        a, b = _sum(month[month["item"] == item]["amount"]), _sum(day[day["item"] == item]["amount"])
        assert abs(a - b) <= Decimal("1e-18") * len(day), item


def test_day_lines_are_cut_at_a_price_change_and_month_lines_are_one_per_task_and_item(store, prices):
    _history(store)
    s = parse_settings({})
    p = parse_period("2025-09")
    day, _ = cost_frames(store, p, prices_file=prices, settings=s, lines=True, granularity="day")
    a = day[(day["task_id"] == "a") & (day["item"] == "oss.Storage")]
    assert len(a) == 30 + 1          # every September day, the 15th in two segments
    d15 = a[a["day"] == __import__("pandas").Period("2025-09-15", freq="D")]
    assert [t.isoformat() for t in d15["charge_start"]] == ["2025-09-14T16:00:00+00:00", "2025-09-15T02:00:00+00:00"]
    assert list(d15["unit_price"]) == [Decimal("0.72"), Decimal("1.5")]
    assert day["charge_start"].dt.tz is not None
    month, _ = cost_frames(store, p, prices_file=prices, settings=s, lines=True, granularity="month")
    am = month[(month["task_id"] == "a") & (month["item"] == "oss.Storage")]
    assert len(am) == 2 and list(am["month"].astype(str)) == ["2025-09", "2025-09"]   # two price segments
    hour, _ = cost_frames(store, p, prices_file=prices, settings=s, lines=True, granularity="hour")
    assert len(hour[(hour["task_id"] == "a") & (hour["item"] == "oss.Storage")]) == 712   # from 2025-09-01 08:00 +08:00
    # the same amounts task by task and item by item, whatever the granularity (within 10^-18 per line)
    for frame in (day, month):
        for key, g in hour.groupby(["task_id", "item"]):
            other = frame[(frame["task_id"] == key[0]) & (frame["item"] == key[1])]["amount"]
            assert abs(_sum(g["amount"]) - _sum(other)) <= Decimal("1e-18") * len(g), key


def test_early_deletion_lands_on_its_billing_day(store, prices):
    _history(store)
    lines, _ = cost_frames(store, parse_period("2025-09"), prices_file=prices, lines=True)
    ed = lines[lines["item"] == "oss.EarlyDeletion"]
    assert list(ed["task_id"]) == ["b"] and str(ed["day"].iloc[0]) == "2025-09-25"


def test_line_cuts_cover_the_period_once():
    p = parse_period(None, "2025-08-30T05:00:00+08:00", "2025-10-02")
    for g in ("day", "month"):
        cuts = line_cuts(p, [p.h0 + 30], g)
        assert cuts[0][2] == p.h0 and cuts[-1][3] == p.h1
        assert all(a[3] == b[2] for a, b in zip(cuts, cuts[1:]))
    assert len(line_cuts(p, [], "month")) == 3


def test_cli_lines_granularity_and_stdout_dash(tmp_path, prices):
    path = str(tmp_path / "s.duckdb")
    with Store.open(path) as st:
        _history(st)
    run = CliRunner().invoke
    outs = {}
    for g in ("hour", "day", "month"):
        r = run(main, ["cost", "--store", path, "--month", "2025-09", "--prices", prices, "--lines",
                       "--granularity", g, "--out", "-"])
        assert r.exit_code == 0, r.output
        head, *rows = r.stdout.splitlines()
        assert head.split(",")[2] == g
        outs[g] = rows
    assert len(outs["hour"]) > len(outs["day"]) > len(outs["month"])
    assert outs["month"][0].split(",")[2] == "2025-09"
    r = run(main, ["cost", "--store", path, "--month", "2025-09", "--prices", prices, "--lines", "--granularity",
                   "week"])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    pq = tmp_path / "l.parquet"
    r = run(main, ["cost", "--store", path, "--month", "2025-09", "--prices", prices, "--lines", "--format",
                   "parquet", "--out", str(pq)])
    import pyarrow.parquet as papq
    t = papq.read_table(pq)
    assert t.num_rows == len(outs["day"]) and str(t.schema.field("day").type) == "date32[day]"


def test_granularity_is_checked():
    from costkit.engine.lines import check_granularity
    with pytest.raises(BadInput):
        check_granularity("week")
