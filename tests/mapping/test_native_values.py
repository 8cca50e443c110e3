"""Native scalar parsing: timestamps stay the same instant, numbers never pass through float."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from mapping.values import json_number, parse_date, parse_decimal, parse_flag, parse_timestamp

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("native", "utc"),
    [
        # Spring forward in Berlin: 02:00 CET -> 03:00 CEST on 2024-03-31 (01:00 UTC).
        ("2024-03-31T01:59:59.000+0100", datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC)),
        ("2024-03-31T03:00:00.000+0200", datetime(2024, 3, 31, 1, 0, 0, tzinfo=UTC)),
        # Fall back: 02:30 happens twice on 2024-10-27; the offset tells the two apart.
        ("2024-10-27T02:30:00.000+0200", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        ("2024-10-27T02:30:00.000+0100", datetime(2024, 10, 27, 1, 30, tzinfo=UTC)),
        ("2024-10-27T01:30:00Z", datetime(2024, 10, 27, 1, 30, tzinfo=UTC)),
        ("2024-10-27 01:30:00", datetime(2024, 10, 27, 1, 30, tzinfo=UTC)),  # Pipedrive: UTC
        ("1729992600000", datetime(2024, 10, 27, 1, 30, tzinfo=UTC)),  # HubSpot millis
    ],
)
def test_timestamps_at_berlin_dst_switches_keep_their_utc_instant(
    native: str, utc: datetime
) -> None:
    parsed = parse_timestamp(native)
    assert parsed == utc and parsed is not None and parsed.tzinfo is UTC


def test_the_two_fall_back_instants_are_an_hour_apart_in_berlin() -> None:
    first = parse_timestamp("2024-10-27T02:30:00.000+0200")
    second = parse_timestamp("2024-10-27T02:30:00.000+0100")
    assert first is not None and second is not None
    assert (second - first).total_seconds() == 3600
    assert first.astimezone(BERLIN).fold == 0 and second.astimezone(BERLIN).fold == 1


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_values_are_none(blank: str | None) -> None:
    assert parse_timestamp(blank) is None and parse_date(blank) is None
    assert parse_decimal(blank) is None and parse_flag(blank) is None


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("2024-06-30", date(2024, 6, 30)),
        ("2024-06-30T00:00:00Z", date(2024, 6, 30)),
        ("1719705600000", date(2024, 6, 30)),
    ],
)
def test_dates_from_date_text_iso_or_millis(native: str, expected: date) -> None:
    assert parse_date(native) == expected


@pytest.mark.parametrize("garbage", ["NaN", "inf", "-Infinity", "1e", "12,50", True, [1]])
def test_garbage_numbers_are_rejected(garbage: object) -> None:
    with pytest.raises(ValueError):
        parse_decimal(garbage)


def test_floats_go_through_their_shortest_repr() -> None:
    assert parse_decimal(0.1) == Decimal("0.1")
    assert parse_decimal(1500.5) == Decimal("1500.5")


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("1500"), "1500"),
        (Decimal("1500.00"), "1500"),
        (Decimal("1500.5"), "1500.5"),
        (Decimal("0.1"), "0.1"),
        (Decimal("12345678901234567.89"), '"12345678901234567.89"'),
        (Decimal("0.10000000000000000001"), '"0.10000000000000000001"'),
    ],
)
def test_json_numbers_keep_every_digit(value: Decimal, wire: str) -> None:
    text = json.dumps(json_number(value))
    assert text == wire
    assert Decimal(json.loads(text) if wire.startswith('"') else text) == value
