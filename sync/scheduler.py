"""`crmsync schedule`: the configured jobs on their cron expressions (APScheduler 3, in memory).

No persistent APScheduler job store: the state store's run history is the memory. On start,
an entry whose latest firing (within its misfire grace) has no run after it is run once now —
a restart or a wake-up after many missed firings runs the job once, not once per firing.
While running, APScheduler coalesces missed firings the same way (`coalesce=True`) and never
starts a job while it still runs (`max_instances=1`); the job lock in the store does the same
across processes and machines (see `sync.jobs`).

Each firing reads the config again (`_as_configured_now`): an entry's job and settings as the
file says now, and none once the file drops it; new times and new entries need a restart.

Reconcile entries of one scheduler take turns: one that fires while a sibling's reconcile runs
waits for it, where a reconcile of another process (which holds the store's reconcile lock)
makes it skip the firing. Two entries on one cron line would otherwise lose one of them to
the other at every firing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from config import ScheduleEntry, load_config
from config.cron import crontab_fields
from sync.errors import UsageError, run_error
from sync.jobs import SKIPPED, JobOutcome, last_served_run, run_job, stopped_outcome
from sync.locks import sibling_turn_stopped
from sync.shutdown import stop_event, stoppable_work
from sync.store import RunRecord, Store
from sync.store_open import open_store

__all__ = [
    "OVERDUE_AFTER",
    "cron_trigger",
    "latest_firing",
    "missed_firing",
    "overdue_firing",
    "run_scheduler",
    "wall_clock",
]

# A firing's run starts within seconds, or after waiting its turn behind another scheduler's
# reconcile (10 minutes at most): a firing older than this with no run was run by nothing.
OVERDUE_AFTER = timedelta(minutes=15)

TriggerFactory = Callable[[ScheduleEntry], BaseTrigger]
Clock = Callable[[], datetime]

_log = logging.getLogger("crmsync.schedule")


class _CrontabTrigger(CronTrigger):
    """A CronTrigger that treats the hour repeated when the clocks go back as cron does: an
    entry at fixed times (neither its minute nor its hour field starts with `*`) runs once, at
    the first of the two equal wall-clock times; `*/15 * * * *` goes on firing through it."""

    def __init__(self, *, fixed_time: bool, **fields: Any) -> None:
        super().__init__(**fields)
        self.fixed_time = fixed_time

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and self.fixed_time and _second_occurrence(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire


def wall_clock(moment: datetime) -> datetime:
    """A fire time as its zone's clocks show it. For a time the clocks skip (02:30 on the
    night they go forward) the trigger gives that wall time with the offset from before the
    jump; the job runs at that instant, which the clocks show as 03:30."""
    zone = moment.tzinfo
    return moment.astimezone(UTC).astimezone(zone) if zone is not None else moment


def _second_occurrence(moment: datetime) -> bool:
    """True for the later of two equal wall-clock times (the hour repeated at a fall-back)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


class _EitherDayTrigger(BaseTrigger):
    """crontab's rule for an expression that restricts both the day of the month and the
    weekday (`0 2 1,15 * 5`): a day matching either fires (the 1st, the 15th and every Friday).
    APScheduler's CronTrigger would fire only on days matching both."""

    def __init__(self, by_day: CronTrigger, by_weekday: CronTrigger) -> None:
        self._triggers = (by_day, by_weekday)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fires = [t.get_next_fire_time(previous_fire_time, now) for t in self._triggers]
        return min((fire for fire in fires if fire is not None), default=None)

    def __str__(self) -> str:
        return " or ".join(str(t) for t in self._triggers)


def _restricts(field: str) -> bool:
    """Whether a crontab day field restricts the days: as in cron, one starting with `*`
    (`*`, `*/2`) does not, so the other day field alone decides."""
    return not field.startswith(("*", "?"))


def cron_trigger(entry: ScheduleEntry) -> BaseTrigger:
    """The entry's 5-field cron expression, in its time zone, with crontab's weekday numbers and
    its rule for a day of the month and a weekday both given (either day fires)."""
    fields = crontab_fields(entry.cron)
    fixed_time = not (fields["minute"].startswith("*") or fields["hour"].startswith("*"))
    zone = ZoneInfo(entry.timezone)

    def trigger(**changed: str) -> CronTrigger:
        return _CrontabTrigger(fixed_time=fixed_time, **(fields | changed), timezone=zone)

    _, _, day, _, weekday = entry.cron.split()
    if _restricts(day) and _restricts(weekday):
        return _EitherDayTrigger(trigger(day_of_week="*"), trigger(day="*"))
    return trigger()


def latest_firing(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The trigger's last fire time in ``[now - lookback, now]``, or None."""
    last = None
    fire = trigger.get_next_fire_time(None, now - lookback)
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire)
    return last


def missed_firing(
    trigger: BaseTrigger,
    last_run: RunRecord | None,
    now: datetime,
    grace: timedelta,
    *,
    tried: bool = False,
) -> datetime | None:
    """The firing to catch up now: the latest within ``grace`` that no run has served.

    A job that never ran has missed nothing: a new schedule starts at its next firing. One
    whose only runs were stopped (``tried``: SIGTERM, or a killed process) has missed it.
    """
    if last_run is None and not tried:
        return None
    firing = latest_firing(trigger, now, grace)
    if firing is None or (last_run is not None and last_run.started_at >= firing):
        return None
    return firing


def overdue_firing(
    trigger: BaseTrigger, last_started: datetime | None, now: datetime
) -> datetime | None:
    """The first firing since the entry's last run (of any outcome) that is over
    OVERDUE_AFTER old: nothing ran it, so no scheduler (or timer) is running the entry. None
    before its first run: a new entry waits for its first firing."""
    if last_started is None:
        return None
    firing = trigger.get_next_fire_time(None, last_started + timedelta(seconds=1))
    if firing is None or firing > now - OVERDUE_AFTER:
        return None
    return firing


def _fire(
    config_path: str,
    entry: ScheduleEntry,
    trigger: BaseTrigger,
    stop: threading.Event,
    clock: Clock,
    reconcile_turn: threading.Lock,
) -> JobOutcome | None:
    try:
        configured = _as_configured_now(config_path, entry)
    except Exception as exc:  # an edit broke the config: the next firing tries again
        _could_not_run(entry, exc)
        return None
    if configured is None:
        return None
    entry = configured
    if entry.job == "report":
        return _run(config_path, entry, trigger, stop, clock)
    began = time.monotonic()
    if not _take_turn(reconcile_turn, stop):  # it only waited: it says so, as any wait does
        return _ended(stopped_outcome(entry, sibling_turn_stopped(), began))
    try:
        return _run(config_path, entry, trigger, stop, clock)
    finally:
        reconcile_turn.release()


def _take_turn(turn: threading.Lock, stop: threading.Event) -> bool:
    """Take the turn, waiting while a sibling entry's reconcile holds it; False when a stop
    ended the wait, one the sibling ended on and released the turn at too."""
    if turn.acquire(blocking=False):
        return True
    while not stop.is_set():
        if turn.acquire(timeout=0.2):
            if not stop.is_set():
                return True
            turn.release()
    return False


def _as_configured_now(config_path: str, entry: ScheduleEntry) -> ScheduleEntry | None:
    """The entry as the config file says now, or None once it was taken out: an edit of its
    job, `full`, `out` or `keep` counts from the next firing; its cron and time zone from a
    restart."""
    config = load_config(config_path)
    now = next((e for e in config.schedule if e.name == entry.name), None)
    if now is None:
        _log.warning("%s: no longer in %s; not run (restart `crmsync schedule` to load the "
                     "schedule as it is now)", entry.name, config.path.name)  # fmt: skip
    elif (now.cron, now.timezone) != (entry.cron, entry.timezone):
        _log.warning("%s: its cron or time zone changed in %s; it still fires on the old ones "
                     "until `crmsync schedule` restarts", entry.name, config.path.name)  # fmt: skip
    return now


def _could_not_run(entry: ScheduleEntry, exc: Exception) -> None:
    _log.error("%s: could not run: %s", entry.name, " ".join(run_error(exc).split()))
    _log.debug("%s", entry.name, exc_info=True)


def _run(
    config_path: str,
    entry: ScheduleEntry,
    trigger: BaseTrigger,
    stop: threading.Event,
    clock: Clock,
) -> JobOutcome | None:
    if stop.is_set():
        return None
    grace = timedelta(seconds=entry.misfire_grace_seconds)
    firing = latest_firing(trigger, clock(), grace)
    try:
        with stoppable_work():  # what a SIGTERM meanwhile lets finish its batch
            outcome = run_job(config_path, entry, firing=firing, stop=stop)
    except Exception as exc:  # the scheduler keeps going; the next firing tries again
        _could_not_run(entry, exc)
        return None
    return _ended(outcome)


def _ended(outcome: JobOutcome) -> JobOutcome:
    """Log the firing's one closing line, at info only when there is nothing to read."""
    # A breach (exit code 3) is a run that did its work and still needs reading.
    # So is a firing nobody ran (a reconcile by hand held the lock).
    quiet = outcome.status in ("ok", SKIPPED) and outcome.exit_code == 0 and not outcome.unserved
    level = logging.INFO if quiet else logging.WARNING
    _log.log(level, "%s", outcome.summary())
    return outcome


def _catch_up(store: Store, entry: ScheduleEntry, trigger: BaseTrigger, now: datetime) -> bool:
    grace = timedelta(seconds=entry.misfire_grace_seconds)
    last = last_served_run(store, entry.name)
    tried = last is not None or bool(store.runs.recent(1, job=entry.name))
    missed = missed_firing(trigger, last, now, grace, tried=tried)
    if missed is not None:
        _log.info("%s: missed its firing at %s; running it once now", entry.name, missed)
    return missed is not None


def run_scheduler(
    config_path: str,
    *,
    stop: threading.Event = stop_event,
    trigger_for: TriggerFactory = cron_trigger,
    only: Sequence[str] = (),
    clock: Clock = lambda: datetime.now(UTC),
) -> None:
    """Run the config's schedule until ``stop`` is set, then wait for running jobs to finish."""
    config = load_config(config_path)
    entries = [e for e in config.schedule if not only or e.name in only]
    if not entries:
        raise UsageError(
            f"no schedule entries to run in {config.path.name} (add a `schedule:` list, "
            "see crmsync.example.yaml)"
        )
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=len(entries))},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    reconcile_turn = threading.Lock()
    with open_store(config) as store:
        for entry in entries:
            trigger = trigger_for(entry)
            extra: dict[str, Any] = {}
            if _catch_up(store, entry, trigger, clock()):
                extra["next_run_time"] = clock()
            scheduler.add_job(
                _fire,
                trigger=trigger,
                args=(config_path, entry, trigger, stop, clock, reconcile_turn),
                id=entry.name,
                name=entry.name,
                misfire_grace_time=entry.misfire_grace_seconds,
                **extra,
            )
    scheduler.start()
    try:
        for job in scheduler.get_jobs():
            _log.info("%s: next run at %s", job.id, wall_clock(job.next_run_time))
        while not stop.wait(0.5):
            pass
    finally:
        # Waits for running jobs: each finishes its current batch and records itself.
        scheduler.shutdown(wait=True)
    _log.info("scheduler stopped")
