from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platone_bal.domain.readings import (
    InvalidReading,
    decimal_text,
    format_time,
    implausible_time,
    parse_time,
)


@pytest.mark.parametrize("text", ["11", "11.04", "-3.450", "0", "1e3", "2.5E-4", "+7", " 11.0 "])
def test_decimal_text_keeps_the_digits_sent(text: str) -> None:
    assert decimal_text(text) == text.strip()


@pytest.mark.parametrize(
    "raw", ["NaN", "Infinity", "-inf", "", "1,5", "0x10", "1.2.3", True, None, 5]
)
def test_decimal_text_refuses_what_is_not_a_decimal(raw: object) -> None:
    with pytest.raises(InvalidReading):
        decimal_text(raw)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_finite_decimal_survives_unchanged(value: object) -> None:
    assert decimal_text(str(value)) == str(value)


def test_times_are_normalised_to_utc_with_six_digits() -> None:
    assert format_time(parse_time("2019-09-13T15:30:00+03:00")) == "2019-09-13T12:30:00.000000Z"
    assert format_time(parse_time("2020-05-20T10:27:57.980802Z")) == "2020-05-20T10:27:57.980802Z"


@pytest.mark.parametrize("text", ["2019-09-13T15:30:00", "yesterday", "2019-13-45T00:00:00Z", ""])
def test_times_without_offset_or_not_rfc3339_are_refused(text: str) -> None:
    with pytest.raises(InvalidReading):
        parse_time(text)


def test_impossible_times() -> None:
    received = datetime(2026, 1, 1, tzinfo=UTC)
    assert implausible_time(datetime(1989, 12, 31, tzinfo=UTC), received) is not None
    assert implausible_time(received + timedelta(days=1, seconds=1), received) is not None
    assert implausible_time(received + timedelta(hours=23), received) is None
    assert implausible_time(datetime(1990, 1, 1, tzinfo=UTC), received) is None
