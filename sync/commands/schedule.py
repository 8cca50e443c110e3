"""`crmsync schedule`: run the config's `schedule:` jobs until SIGTERM/SIGINT (or one job once)."""

from __future__ import annotations

import logging

import click

from config import load_config
from sync.commands import config_option
from sync.connect import check_kinds
from sync.errors import CrmsyncError, UsageError
from sync.jobs import run_job
from sync.scheduler import run_scheduler
from sync.shutdown import stop_event, stop_on_signals


@click.command("schedule")
@config_option
@click.option("--job", "jobs", multiple=True, metavar="NAME",
              help="Only these schedule entries (repeatable; default: all).")  # fmt: skip
@click.option("--run-now", "run_now", default=None, metavar="NAME",
              help="Run this entry once now (with its lock and run record); exit.")  # fmt: skip
def command(config_path: str, jobs: tuple[str, ...], run_now: str | None) -> None:
    """Run the configured jobs on their cron schedules (blocking; SIGTERM stops cleanly)."""
    # A daemon's progress lines are its log: INFO for our own logger, whatever --verbose says.
    logger = logging.getLogger("crmsync.schedule")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    config = load_config(config_path)
    check_kinds(config)
    names = [e.name for e in config.schedule]
    for name in (*jobs, *([run_now] if run_now else [])):
        if name not in names:
            raise UsageError(
                f"no schedule entry named {name!r} in {config.path.name} "
                f"(entries: {', '.join(names) or 'none'})"
            )
    # The daemon's own loop is no work to finish: its jobs are, each while it runs.
    with stop_on_signals(stop_event, work=run_now is not None):
        if run_now is None:
            run_scheduler(config_path, stop=stop_event, only=jobs)
            return
        entry = next(e for e in config.schedule if e.name == run_now)
        outcome = run_job(config_path, entry, stop=stop_event)
    if outcome.exit_code:
        raise CrmsyncError(outcome.summary(), exit_code=outcome.exit_code)
    if outcome.unserved:  # nothing ran it: a oneshot (systemd timer) must not look served
        raise CrmsyncError(outcome.summary())
    click.echo(outcome.summary(), err=True)
