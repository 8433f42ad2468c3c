from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.core.money import (
    apply_bps,
    cents_to_yuan_str,
    div_half_up,
    format_cents,
    percent_to_bps,
    split_largest_remainder,
    yuan_to_cents,
)


@pytest.mark.parametrize(("numerator", "denominator", "expected"), [
    (5, 2, 3),      # half rounds away from zero
    (-5, 2, -3),
    (5, -2, -3),
    (-5, -2, 3),
    (4, 2, 2),
    (1, 3, 0),
    (2, 3, 1),
    (-1, 3, 0),
    (-2, 3, -1),
    (0, 7, 0),
    (10**18 + 1, 2, 5 * 10**17 + 1),  # big integers stay exact
])
def test_div_half_up(numerator, denominator, expected):
    assert div_half_up(numerator, denominator) == expected


def test_div_half_up_refuses_zero_denominator():
    with pytest.raises(ZeroDivisionError):
        div_half_up(1, 0)


@pytest.mark.parametrize(("amount", "bps", "expected"), [
    (5, 1000, 1),         # 10% of ¥0.05 is ¥0.005, rounded half-up to ¥0.01
    (4, 1000, 0),
    (12345, 10_000, 12345),
    (12345, 0, 0),
    (9999, 150, 150),     # 1.5% of 99.99 = 1.49985 -> 1.50
    (-5, 1000, -1),
    (1, 5000, 1),         # half a cent rounds up
    (1, 4999, 0),
])
def test_apply_bps(amount, bps, expected):
    assert apply_bps(amount, bps) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("12", 1200),
    ("12.5", 1250),
    ("12.50", 1250),
    ("1,234.50", 123450),
    ("¥8", 800),
    ("￥0.01", 1),
    (" 3.10 ", 310),
    ("-1.50", -150),
    ("0", 0),
    (7, 700),
])
def test_yuan_to_cents(text, expected):
    assert yuan_to_cents(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("15", 1500), ("12.5", 1250), ("8.25%", 825), (" 0.01 ", 1)])
def test_percent_to_bps(text, expected):
    assert percent_to_bps(text) == expected


@pytest.mark.parametrize("text", ["12.345", "abc", "", "NaN", "1e400", "%"])
def test_percent_to_bps_refuses_what_is_not_a_percentage(text):
    with pytest.raises(ValueError):
        percent_to_bps(text)


@pytest.mark.parametrize("text", ["1.001", "0.005", "abc", "", "NaN", "Infinity", "-inf", "1e400", "12..5", "¥", "1,2.3.4"])
def test_yuan_to_cents_refuses_what_is_not_an_amount(text):
    with pytest.raises(ValueError):
        yuan_to_cents(text)


@pytest.mark.parametrize(("cents", "expected"), [
    (123450, "¥1,234.50"),
    (0, "¥0.00"),
    (5, "¥0.05"),
    (-5, "-¥0.05"),
    (100_000_000_00, "¥100,000,000.00"),
    (None, "—"),
])
def test_format_cents(cents, expected):
    assert format_cents(cents) == expected


def test_format_cents_other_symbol_and_form_value():
    assert format_cents(100, symbol="$") == "$1.00"
    assert cents_to_yuan_str(1234) == "12.34"
    assert cents_to_yuan_str(-1234) == "-12.34"
    assert cents_to_yuan_str(7) == "0.07"


@pytest.mark.parametrize(("total", "weights", "expected"), [
    (100, [1, 1, 1], [34, 33, 33]),       # the leftover unit goes to the earliest tie
    (-100, [1, 1, 1], [-34, -33, -33]),
    (10, [0, 1], [0, 10]),
    (1, [1, 1], [1, 0]),
    (7, [5, 3, 2], [4, 2, 1]),            # exact 3.5, 2.1, 1.4: the largest remainder (.5) gets the unit
    (0, [1, 2], [0, 0]),
    (0, [], []),
])
def test_split_largest_remainder_examples(total, weights, expected):
    assert split_largest_remainder(total, weights) == expected


@pytest.mark.parametrize(("total", "weights"), [(1, []), (5, [0, 0]), (5, [1, -1])])
def test_split_largest_remainder_refuses_impossible_splits(total, weights):
    with pytest.raises(ValueError):
        split_largest_remainder(total, weights)


weights_strategy = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@given(total=st.integers(min_value=-(10**12), max_value=10**12), weights=weights_strategy)
def test_split_parts_sum_to_the_total_and_stay_within_one_of_the_exact_share(total, weights):
    parts = split_largest_remainder(total, weights)
    whole = sum(weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        # |part - total * weight / whole| < 1, in integers
        assert abs(part * whole - total * weight) < whole
        if weight == 0:
            assert part == 0


@given(amount=st.integers(min_value=-(2**31), max_value=2**31), bps=st.integers(min_value=0, max_value=10_000))
def test_apply_bps_is_the_exact_share_rounded_to_the_nearest_cent(amount, bps):
    share = apply_bps(amount, bps)
    # never more than half a cent from the exact amount * bps / 10000
    assert abs(share * 10_000 - amount * bps) * 2 <= 10_000
