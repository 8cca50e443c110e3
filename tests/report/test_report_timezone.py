"""`report.timezone`: the report's days (today, past due, forecast months, --since, a sales
cycle measured from a close date) begin at midnight in that zone, not in UTC.

Berlin is UTC+1 until 2024-03-31 and UTC+2 after; New York is UTC-4 in summer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from fixtures import deal, inputs, usd

from sync.health import build_health
from sync.health_model import HealthReport
from sync.report_render import to_json

# 23:30 UTC on June 30th is already 01:30 on July 1st in Berlin.
LATE_JUNE_30_UTC = datetime(2024, 6, 30, 23, 30, tzinfo=UTC)
# 02:00 UTC on July 1st is still 22:00 on June 30th in New York.
EARLY_JULY_1_UTC = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)

CLOSING_JUNE_30 = deal("x", "1", "Acme", "proposal", value=usd("100"), close_date=date(2024, 6, 30))


def report(deals: list, now: datetime, zone: str | None = None, **kw: object) -> HealthReport:
    extra = {} if zone is None else {"timezone": zone}
    return build_health(inputs(deals={"x": deals}, entities=[], plan=None, now=now, **extra, **kw))


def test_a_deal_closing_on_a_day_already_over_in_the_report_zone_is_past_due():
    in_utc = report([CLOSING_JUNE_30], LATE_JUNE_30_UTC)
    assert in_utc.consolidated.past_due == 0
    assert [m.month for m in in_utc.consolidated.forecast.months] == ["2024-06"]
    berlin = report([CLOSING_JUNE_30], LATE_JUNE_30_UTC, "Europe/Berlin")
    assert berlin.consolidated.past_due == 1
    [flag] = berlin.funnels["default"].past_due.deals
    assert flag.days == 1
    assert berlin.consolidated.forecast.months == ()
    assert berlin.consolidated.forecast.past_due == 1


def test_a_deal_closing_today_in_the_report_zone_is_not_past_due_though_utc_is_a_day_ahead():
    in_utc = report([CLOSING_JUNE_30], EARLY_JULY_1_UTC)
    assert in_utc.consolidated.past_due == 1
    new_york = report([CLOSING_JUNE_30], EARLY_JULY_1_UTC, "America/New_York")
    assert new_york.consolidated.past_due == 0
    [month] = new_york.consolidated.forecast.months
    assert (month.month, month.deals) == ("2024-06", 1)  # still the current month there


def test_the_forecast_starts_at_the_current_month_of_the_report_zone():
    july = deal("x", "2", "Beta", "proposal", value=usd("200"), close_date=date(2024, 7, 1))
    berlin = report([CLOSING_JUNE_30, july], LATE_JUNE_30_UTC, "Europe/Berlin")
    assert [m.month for m in berlin.consolidated.forecast.months] == ["2024-07"]


def test_since_is_a_day_of_the_report_zone():
    # created and updated 23:00 UTC on June 30th: July 1st, 01:00 in Berlin
    late = datetime(2024, 6, 30, 23, 0, tzinfo=UTC)
    fresh = deal("x", "3", "Gamma", "lead", created_at=late, updated_at=late)
    assert report([fresh], EARLY_JULY_1_UTC, since=date(2024, 7, 1)).systems["x"].deals == 0
    berlin = report([fresh], EARLY_JULY_1_UTC, "Europe/Berlin", since=date(2024, 7, 1))
    assert berlin.systems["x"].deals == 1


def test_a_sales_cycle_from_a_close_date_counts_days_from_the_creation_date_in_the_report_zone():
    # created 23:30 UTC on March 20th = March 21st in Berlin; won (close date) April 10th,
    # after Berlin's switch to summer time: 20 whole days there, 21 from the UTC date
    won = deal(
        "x", "4", "Delta", "won",
        value=usd("500"), close_date=date(2024, 4, 10),
        created_at=datetime(2024, 3, 20, 23, 30, tzinfo=UTC),
    )  # fmt: skip
    in_utc = report([won], LATE_JUNE_30_UTC).funnels["default"].sales_cycle
    assert (in_utc.median_days, in_utc.sources) == (D("21.0"), {"close_date": 1})
    berlin = report([won], LATE_JUNE_30_UTC, "Europe/Berlin").funnels["default"].sales_cycle
    assert (berlin.median_days, berlin.sources) == (D("20.0"), {"close_date": 1})


def test_stale_ages_are_elapsed_days_the_same_in_every_zone():
    # stage entered 31 days and 1 hour before now: stale (more than 30 days) anywhere
    entered = datetime(2024, 5, 30, 22, 30, tzinfo=UTC)
    old = deal("x", "5", "Eps", "lead", stage_entered_at=entered, updated_at=entered)
    for zone in ("UTC", "Europe/Berlin", "America/New_York"):
        [flag] = report([old], LATE_JUNE_30_UTC, zone).funnels["default"].stale.deals
        assert flag.days == 31


def test_the_report_says_which_zone_its_days_begin_in_and_keeps_datetimes_in_utc():
    data = to_json(report([CLOSING_JUNE_30], LATE_JUNE_30_UTC, "Europe/Berlin"))
    assert data["timezone"] == "Europe/Berlin"
    assert data["generated_at"] == "2024-06-30T23:30:00Z"
    assert to_json(report([CLOSING_JUNE_30], LATE_JUNE_30_UTC))["timezone"] == "UTC"
