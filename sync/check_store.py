"""`crmsync check`'s findings in the state store: links of instances the config no longer
names, and schedule firings nothing ran."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

from config import Config
from sync.scheduler import cron_trigger, overdue_firing, wall_clock
from sync.store import Store
from sync.undone_runs import undone_run

__all__ = ["retired_links", "schedule_checks"]


def retired_links(config: Config, store: Store) -> list[str]:
    """A warning per instance the store holds links of that the config no longer names (one a
    migration retired): its stored links, keyed by instance name and deal id, would pair the
    deals of another account given that name, until `crmsync forget` removes them."""
    counts = store.link_counts()
    return [
        f"warning: store: it holds {counts[name]} link(s) of {name}, which {config.path.name} "
        f"no longer names: no run reads them; remove them with `crmsync forget {name} --apply` "
        "before giving that name to another account (its deals would be paired by them)"
        for name in sorted(counts.keys() - config.systems.keys())
    ]


def schedule_checks(config: Config, store: Store) -> tuple[list[str], int]:
    """Each schedule entry's last run and next firing; a firing nothing ran is a problem (exit
    1): the daemon or the timer running the entry has stopped. So is a last run that failed
    or was partial: nobody reads a nightly job's exit code."""
    if not config.schedule:
        return [], 0
    lines: list[str] = []
    code = 0
    now = datetime.now(UTC)
    for entry in config.schedule:
        trigger = cron_trigger(entry)
        zone = ZoneInfo(entry.timezone)
        runs = store.runs.recent(1, job=entry.name)
        last = runs[0] if runs else None
        started = last.started_at if last is not None else None
        missed = overdue_firing(trigger, started, now)
        fire = trigger.get_next_fire_time(None, now)
        next_at = _shown(fire, zone) if fire is not None else "none"
        if last is None:
            lines.append(f"ok: schedule {entry.name}: no run yet; next firing {next_at}")
        elif missed is not None:
            lines.append(
                f"problem: schedule {entry.name}: nothing ran its firing at "
                f"{_shown(missed, zone)} (its last run started {_shown(last.started_at, zone)}"
                f", {last.status.value}); is `crmsync schedule` (or the timer running "
                f"`crmsync schedule --run-now {entry.name}`) running?"
            )
            code = 1
        elif undone := undone_run(config, store, entry.name, partial(_shown, zone=zone)):
            lines.append(undone)
            code = 1
        else:
            lines.append(
                f"ok: schedule {entry.name}: last run started "
                f"{_shown(last.started_at, zone)} ({last.status.value}); next firing {next_at}"
            )
    return lines, code


def _shown(moment: datetime, zone: ZoneInfo) -> str:
    return wall_clock(moment.astimezone(zone)).strftime("%Y-%m-%d %H:%M %Z")
