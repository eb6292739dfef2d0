"""Price books: bundled books validate, checks name file and line, lookups, overlays and units."""
from decimal import Decimal
from fractions import Fraction

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.core.money import round_money
from costkit.prices.book import bundled_book_path, check_book, load_price_book
from costkit.core.timeutil import parse_instant

GOOD_ENTRY = """\
  - item: oss.IaRetrieval
    unit: GB
    price: "0.04"
    currency: CNY
    confidence: contract
    source: our contract
"""


def write(tmp_path, body, name="book.yaml"):
    p = tmp_path / name
    p.write_text("site: cn\ncurrency: CNY\nentries:\n" + body, encoding="utf-8")
    return p


@pytest.mark.parametrize("site", ["cn", "intl"])
def test_bundled_books_pass_the_check(site):
    assert check_book(bundled_book_path(site)) == []


def test_check_reports_unknown_unit_with_file_and_line(tmp_path):
    p = write(tmp_path, GOOD_ENTRY.replace("unit: GB", "unit: GiB"))
    (problem,) = check_book(p)
    assert problem.startswith(f"{p}:5:") and "unknown unit 'GiB'" in problem


def test_check_reports_a_non_decimal_price(tmp_path):
    p = write(tmp_path, GOOD_ENTRY.replace('"0.04"', '"4 fen"'))
    (problem,) = check_book(p)
    assert f"{p}:6:" in problem and "price" in problem


def test_check_reports_a_missing_source(tmp_path):
    p = write(tmp_path, GOOD_ENTRY.replace("    source: our contract\n", ""))
    (problem,) = check_book(p)
    assert "source: missing" in problem and str(p) in problem


def test_check_reports_overlapping_ranges_for_the_same_item(tmp_path):
    a = GOOD_ENTRY + '    effective_from: "2025-01-01T00:00:00+08:00"\n'
    b = GOOD_ENTRY + '    effective_from: "2025-06-01T00:00:00+08:00"\n'
    (problem,) = check_book(write(tmp_path, a + b))
    assert ":11:" in problem and "overlaps the entry at line 4" in problem


def test_prices_check_cli_exits_2_and_lists_every_problem(tmp_path):
    bad = write(tmp_path, GOOD_ENTRY.replace("unit: GB", "unit: GiB") + GOOD_ENTRY.replace('"0.04"', "abc"))
    result = CliRunner().invoke(main, ["prices", "check", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.count(str(bad)) == 2
    ok = CliRunner().invoke(main, ["prices", "check", str(bundled_book_path("cn"))])
    assert ok.exit_code == 0 and ": ok" in ok.output


def test_splicing_is_free_at_10_59_59_and_unknown_from_11_00(tmp_path):
    book = load_price_book("cn")
    free, _ = book.resolve("imm.ImageSplicing", {}, parse_instant("2025-07-28T10:59:59+08:00"))
    assert free.price == 0
    known, unknown = book.resolve("imm.ImageSplicing", {}, parse_instant("2025-07-28T11:00:00+08:00"))
    assert known is None and unknown.confidence == "not-found"
    # the same instant written in UTC
    known, _ = book.resolve("imm.ImageSplicing", {}, parse_instant("2025-07-28T03:00:00Z"))
    assert known is None


def test_user_file_overrides_bundled_and_the_scenario(tmp_path):
    user = write(tmp_path, GOOD_ENTRY, name="user.yaml")
    scenario = [{"item": "oss.IaRetrieval", "unit": "GB", "price": "0.05", "currency": "CNY",
                 "confidence": "contract", "source": "scenario"}]
    at = parse_instant("2026-01-01T00:00:00+08:00")
    assert load_price_book("cn").resolve("oss.IaRetrieval", {}, at)[0].price == Decimal("0.0325")
    assert load_price_book("cn", prices_file=user).resolve("oss.IaRetrieval", {}, at)[0].price == Decimal("0.04")
    assert load_price_book("cn", scenario_prices=scenario).resolve("oss.IaRetrieval", {}, at)[0].price == \
        Decimal("0.05")
    book = load_price_book("cn", prices_file=user, scenario_prices=scenario)
    assert book.resolve("oss.IaRetrieval", {}, at)[0].price == Decimal("0.04")  # --prices beats the scenario


def test_overrides_in_another_unit_of_the_same_dimension_are_converted(tmp_path):
    per_call = [{"item": "imm.ImageSplicing", "unit": "calls", "price": "0.0012", "currency": "CNY",
                 "confidence": "contract", "source": "c"}]
    per_request = [{"item": "oss.GetRequest", "unit": "requests", "price": "0.000002", "currency": "CNY",
                    "confidence": "contract", "source": "c"}]
    at = parse_instant("2026-01-01T00:00:00+08:00")
    book = load_price_book("cn", scenario_prices=per_call + per_request)
    splice, _ = book.resolve("imm.ImageSplicing", {}, at)
    assert splice.per_base_unit() * 1000 == Fraction("1.2")  # 1.2 CNY per 1000 calls
    get, _ = book.resolve("oss.GetRequest", {"storage_class": "IA"}, at)
    assert get.per_base_unit() * 10000 == Fraction("0.02")
    storage, _ = book.resolve("oss.Storage", {"storage_class": "Standard", "redundancy": "LRS"}, at)
    assert storage.per_base_unit() == Fraction("0.12") / 720  # GB-month -> GB-hour


def test_a_price_in_another_currency_is_bad_input(tmp_path):
    usd = [{"item": "oss.IaRetrieval", "unit": "GB", "price": "0.01", "currency": "USD",
            "confidence": "contract", "source": "c"}]
    with pytest.raises(BadInput, match="currency"):
        load_price_book("cn", scenario_prices=usd)


def test_rounding_is_half_up_to_cents():
    assert round_money(Fraction(5, 1000)) == Decimal("0.01")
    assert round_money(Fraction(4999, 1000000)) == Decimal("0.00")
    assert round_money(Fraction(-5, 1000)) == Decimal("-0.01")
    assert round_money(Fraction(1, 3)) == Decimal("0.33")


def test_prices_command_shows_the_effective_book_as_json():
    result = CliRunner().invoke(main, ["prices", "--site", "intl", "--at", "2025-07-28T11:00:00+08:00",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    import json
    data = json.loads(result.output)
    assert data["currency"] == "USD"
    splice = [e for e in data["entries"] if e["item"] == "imm.ImageSplicing"]
    assert splice == [dict(splice[0], price=None)]
