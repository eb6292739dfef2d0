"""The scenario's `mix:` of task kinds: validation with lines, pricing per kind, and no change without it."""
from decimal import Decimal

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.engine.forecast import estimate
from costkit.model.scenario import load_scenario_text
from tests.helpers_forecast import scenario_yaml

BASE = scenario_yaml(months=2, target_storage_class="IA", source_storage_class="IA", target_retention_days=10)


def _est(text):
    return estimate(load_scenario_text(text), sensitivity=False)


def test_mix_of_one_kind_that_repeats_the_scenario_prices_the_same_as_no_mix():
    plain = _est(BASE)
    mixed = _est(BASE + "mix:\n  - {share: 1}\n")
    assert [m["items"] for m in mixed["months"]] == [m["items"] for m in plain["months"]]
    assert mixed["total"] == plain["total"]


def test_kinds_split_by_share_add_up_to_the_plain_scenario_for_linear_items():
    plain = _est(BASE)
    mixed = _est(BASE + "mix:\n  - {share: 0.25}\n  - {share: 0.75, source_classes: [{storage_class: IA, share: 1}]}\n")
    for a, b in zip(plain["months"], mixed["months"]):
        for item in ("imm.ImageSplicing", "oss.GetRequest", "oss.IaRetrieval", "oss.Storage"):
            assert abs(Decimal(a["items"][item]) - Decimal(b["items"][item])) <= Decimal("0.02"), item


def test_size_mix_across_the_64kb_minimum_is_not_priced_as_its_average():
    small_big = _est(BASE + "mix:\n  - {share: 0.5, target_size_mb: 0.0390625}\n  - {share: 0.5, target_size_mb: 3.9609375}\n")
    average = _est(BASE.replace("target_size_mb: '1'", "target_size_mb: '2'"))
    gb_mix = Decimal(small_big["months"][0]["quantities"]["oss.Storage"]["quantity"])
    gb_avg = Decimal(average["months"][0]["quantities"]["oss.Storage"]["quantity"])
    # 40 KB in IA bills 64 KB: the mix stores (64 KB + 3.96 MB) / 2 per target, more than the 2 MB average.
    assert float(gb_mix / gb_avg) == pytest.approx(float((Decimal(64) / 1024 + Decimal("3.9609375")) / 4), rel=1e-6)


def test_archive_kind_with_direct_read_is_charged_direct_read_and_restored_one_is_not():
    text = BASE + ("mix:\n  - {share: 0.5, source_classes: [{storage_class: Archive, share: 1, "
                   "archive_direct_read: true}]}\n  - {share: 0.5, source_classes: [{storage_class: Archive, "
                   "share: 1, restored: true}]}\n")
    prices = ("- {item: oss.ArchiveDirectRead, unit: GB, price: '0.05', currency: CNY, confidence: contract, "
              "source: test}\n")
    text = text.replace("prices:\n", "prices:\n" + prices)
    model = _est(text)
    q = Decimal(model["months"][0]["quantities"]["oss.ArchiveDirectRead"]["quantity"])
    # half the tasks read 2 sources of 1 MB directly: 720000 x 0.5 x 2 MB
    assert q == Decimal(720000) * 2 / 2 / 1024
    assert model["months"][0]["items"]["imm.ImageSplicing"] != "0.00"   # both kinds' tasks can succeed


@pytest.mark.parametrize("mix, message, line", [
    ("mix:\n  - {share: 0.5}\n  - {share: 0.4}\n", "the shares add up to 0.9, not 1", None),
    ("mix:\n  - {share: 1, target_sise_mb: 1}\n", "did you mean mix[0].target_size_mb?", None),
    ("mix:\n  - {share: 1, target_storage_class: Cold}\n", "unknown storage class 'Cold'", None),
    ("mix:\n  - {share: 1.5}\n", "out of range (0..1)", None),
    ("mix:\n  - {target_size_mb: 1}\n", "missing required key share", None),
    ("mix:\n  - {share: 1, source_classes: [{storage_class: IA, share: 0.5}]}\n", "add up to 0.5", None),
    ("mix: []\n", "expected a list of task kinds", None),
    ("mix:\n  - share: 1\n    sources_per_task: 11\n", "out of range (1..10)", "sources_per_task"),
])
def test_bad_mix_is_one_line_naming_the_file_and_line(mix, message, line):
    text = BASE + mix
    with pytest.raises(BadInput) as e:
        load_scenario_text(text, "s.yaml")
    msg = str(e.value)
    assert message in msg and msg.startswith("s.yaml:")
    lineno = int(msg.split(":")[1])
    assert text.splitlines()[lineno - 1].strip().startswith(("mix", "-", line or "-"))


def test_bad_mix_through_estimate_exits_2_with_one_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(BASE + "mix:\n  - {share: 0.5}\n")
    r = CliRunner().invoke(main, ["estimate", str(p)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "costkit: error:" in r.output and "s.yaml:" in r.output


def test_mix_is_listed_in_the_assumptions_and_absent_without_it():
    assert not [a for a in _est(BASE)["assumptions"] if a["key"].startswith("mix")]
    rows = [a for a in _est(BASE + "mix:\n  - {share: 1, name: all}\n")["assumptions"] if a["key"].startswith("mix")]
    assert rows[0]["value"]["name"] == "all"
