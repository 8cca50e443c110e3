"""Cron expressions, time zones and missed-firing rules (pure, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from config import ScheduleEntry
from sync.scheduler import cron_trigger, latest_firing, missed_firing, wall_clock
from sync.store import RunKind, RunRecord, RunStatus


def entry(cron: str, timezone: str = "UTC", grace: int = 3600) -> ScheduleEntry:
    return ScheduleEntry(name="nightly", cron=cron, timezone=timezone, job="reconcile-dry-run",
                         misfire_grace_seconds=grace)  # fmt: skip


def run_at(started: datetime) -> RunRecord:
    return RunRecord("r", "nightly", RunKind.RECONCILE_DRY_RUN, RunStatus.OK, started, started,
                     None, {}, {}, None)  # fmt: skip


SUNDAY = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)


def test_weekday_numbers_follow_crontab_where_zero_is_sunday() -> None:
    weekdays = cron_trigger(entry("0 2 * * 1-5"))
    assert weekdays.get_next_fire_time(None, SUNDAY) == datetime(2024, 6, 3, 2, 0, tzinfo=UTC)
    sundays = cron_trigger(entry("0 2 * * 0"))
    assert sundays.get_next_fire_time(None, SUNDAY) == datetime(2024, 6, 9, 2, 0, tzinfo=UTC)
    weekend = cron_trigger(entry("0 2 * * sat,0"))
    fires = [weekend.get_next_fire_time(None, SUNDAY + timedelta(days=d)) for d in range(7)]
    assert {f.strftime("%a") for f in fires if f is not None} == {"Sat", "Sun"}


def test_a_day_of_the_month_and_a_weekday_both_given_fire_on_either_as_in_crontab() -> None:
    # crontab: `0 2 1,15 * 5` runs on the 1st and the 15th of each month, and on every Friday
    either = cron_trigger(entry("0 2 1,15 * 5"))
    fires = fires_after(either, datetime(2024, 6, 1, 12, tzinfo=UTC), 6)  # Saturday 1 June
    assert [f.strftime("%a %d %b") for f in fires] == [
        "Fri 07 Jun", "Fri 14 Jun", "Sat 15 Jun", "Fri 21 Jun", "Fri 28 Jun", "Mon 01 Jul",
    ]  # fmt: skip
    # a field starting with `*` restricts nothing of its own: the other one alone decides
    mondays = cron_trigger(entry("0 2 * * 1"))
    assert [f.strftime("%a %d") for f in fires_after(mondays, SUNDAY, 2)] == ["Mon 03", "Mon 10"]
    tenths = cron_trigger(entry("0 2 */10 * 1"))  # crontab: Mondays that are the 1st, 11th, ...
    assert [f.strftime("%a %d %b") for f in fires_after(tenths, SUNDAY, 2)] == [
        "Mon 01 Jul", "Mon 21 Oct",
    ]  # fmt: skip


def test_cron_runs_in_the_entry_time_zone_across_dst() -> None:
    berlin = cron_trigger(entry("0 2 * * *", "Europe/Berlin"))
    summer = berlin.get_next_fire_time(None, SUNDAY)
    winter = berlin.get_next_fire_time(None, datetime(2024, 12, 1, tzinfo=UTC))
    assert summer is not None and summer.astimezone(UTC).hour == 0  # CEST, UTC+2
    assert winter is not None and winter.astimezone(UTC).hour == 1  # CET, UTC+1


def fires_after(trigger: BaseTrigger, start: datetime, count: int) -> list[datetime]:
    """The trigger's next ``count`` fire times after ``start``, in UTC, as the scheduler asks."""
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and len(fires) < count:
        fires.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)
    return fires


def test_a_fixed_time_entry_runs_once_on_the_night_the_clocks_go_back() -> None:
    nightly = cron_trigger(entry("30 2 * * *", "Europe/Berlin"))
    # 02:30 comes twice on 2026-10-25: in CEST (00:30 UTC), then again in CET (01:30 UTC)
    fires = fires_after(nightly, datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert [f.strftime("%d %H:%M") for f in fires] == ["25 00:30", "26 01:30", "27 01:30"]


def test_the_next_run_on_the_night_the_clocks_go_forward_is_shown_as_the_clocks_show_it() -> None:
    nightly = cron_trigger(entry("30 2 * * *", "Europe/Berlin"))
    # 02:30 does not exist on 2026-03-29: the job runs at 01:30 UTC, 03:30 CEST
    fire = nightly.get_next_fire_time(None, datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert fire is not None
    shown = wall_clock(fire)
    assert shown.isoformat() == "2026-03-29T03:30:00+02:00"
    assert shown == fire.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_an_every_half_hour_entry_keeps_firing_through_the_repeated_hour() -> None:
    half_hourly = cron_trigger(entry("*/30 * * * *", "Europe/Berlin"))
    fires = fires_after(half_hourly, datetime(2026, 10, 25, 0, 10, tzinfo=UTC), 4)
    assert [f.strftime("%H:%M") for f in fires] == ["00:30", "01:00", "01:30", "02:00"]


def test_many_missed_firings_are_caught_up_once_as_the_latest() -> None:
    hourly = cron_trigger(entry("0 * * * *"))
    now = datetime(2024, 6, 2, 12, 20, tzinfo=UTC)
    last = run_at(now - timedelta(hours=10))
    assert missed_firing(hourly, last, now, timedelta(hours=24)) == now.replace(minute=0)


def test_a_served_firing_is_not_caught_up() -> None:
    hourly = cron_trigger(entry("0 * * * *"))
    now = datetime(2024, 6, 2, 12, 20, tzinfo=UTC)
    assert missed_firing(hourly, run_at(now.replace(minute=0, second=3)), now,
                         timedelta(hours=1)) is None  # fmt: skip


def test_a_firing_older_than_the_grace_time_is_skipped() -> None:
    nightly = cron_trigger(entry("0 2 * * *"))
    now = datetime(2024, 6, 2, 9, 0, tzinfo=UTC)  # 7 h after the firing
    last = run_at(now - timedelta(days=3))
    assert missed_firing(nightly, last, now, timedelta(hours=1)) is None
    assert missed_firing(nightly, last, now, timedelta(hours=8)) == now.replace(hour=2)


def test_a_job_that_never_ran_missed_nothing() -> None:
    hourly = cron_trigger(entry("0 * * * *"))
    assert missed_firing(hourly, None, SUNDAY + timedelta(minutes=5), timedelta(hours=1)) is None


def test_a_job_whose_only_runs_were_stopped_catches_up_its_latest_firing() -> None:
    hourly = cron_trigger(entry("0 * * * *"))
    now = SUNDAY + timedelta(minutes=5)
    assert missed_firing(hourly, None, now, timedelta(hours=1), tried=True) == SUNDAY


def test_latest_firing_steps_through_second_level_triggers() -> None:
    from apscheduler.triggers.cron import CronTrigger

    every_two = CronTrigger(second="*/2", timezone=UTC)
    now = datetime(2024, 6, 2, 12, 0, 7, 500000, tzinfo=UTC)
    assert latest_firing(every_two, now, timedelta(seconds=10)) == now.replace(
        second=6, microsecond=0
    )
    assert latest_firing(every_two, now, timedelta(seconds=1)) is None
