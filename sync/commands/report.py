"""`crmsync report`: cross-system pipeline health from the state store (`--refresh` pulls first)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from sync.commands import config_option, wait_option
from sync.errors import LimitsExceeded
from sync.health_model import ReportFilters
from sync.locks import DEFAULT_WAIT, REPORT_JOB, Budget, report_job_lock
from sync.outfile import check_not_ours, check_writable
from sync.report_render import to_table
from sync.report_run import FORMATS, build_report, check_filters, render_report, write_text
from sync.runtime import open_runtime
from sync.shutdown import terminate_as_interrupt
from sync.terminal import plain_console

__all__ = ["command"]


@click.command("report")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write to this file.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only deals created or updated since this date (YYYY-MM-DD; days begin "
                   "at midnight in report.timezone).")  # fmt: skip
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only deals created or updated on or before this date (YYYY-MM-DD, "
                   "inclusive, a day in report.timezone).")  # fmt: skip
@click.option("--funnel", "funnels", multiple=True, metavar="NAME",
              help="Only this funnel's deals and figures (repeatable).")  # fmt: skip
@click.option("--system", "systems", multiple=True, metavar="NAME",
              help="Only this instance's copies of the deals (repeatable).")  # fmt: skip
@click.option("--refresh", is_flag=True, help="Pull from the CRMs first.")
@wait_option(
    "in all for another `crmsync report` and (--refresh) for another process's pull of the "
    f"instances (0: exit at once; without it: up to {DEFAULT_WAIT:g}s for each of them)"
)
def command(
    config_path: str,
    fmt: str,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    funnels: tuple[str, ...],
    systems: tuple[str, ...],
    refresh: bool,
    wait_seconds: float | None,
) -> None:
    """Pipeline health per system, per funnel and consolidated; exit 3 on breached thresholds."""
    if out is not None:
        check_writable(out, what="--out")
    # One `crmsync report` at a time (a second waits): the lock's next holder knows a run of it
    # still `running` is dead, and records it so.
    # --wait bounds this wait and (--refresh) the one for the pull locks, together.
    with open_runtime(config_path, connect=refresh) as rt, terminate_as_interrupt():
        if out is not None:
            check_not_ours(out, what="--out", config=rt.config)
        filters = ReportFilters(
            funnels=tuple(dict.fromkeys(funnels)),
            systems=tuple(dict.fromkeys(systems)),
            since=since.date() if since else None,
            until=until.date() if until else None,
        )
        today = datetime.now(ZoneInfo(rt.config.report.timezone)).date()
        check_filters(rt.config, filters, today)
        budget = Budget(wait_seconds)
        wait = budget.left()
        with report_job_lock(rt.store, REPORT_JOB, wait=wait > 0, timeout=wait, wait_option=True,
                             budget=budget):  # fmt: skip
            report = build_report(rt, job=REPORT_JOB, refresh=refresh, wait=budget,
                                  since=filters.since, filters=filters)  # fmt: skip
    if fmt == "table" and out is None:
        to_table(report, plain_console())
    else:
        text = render_report(report, fmt)
        if out is None:
            click.echo(text, nl=False)
        else:
            write_text(text, out)
            click.echo(f"report written to {out}", err=True)
    if report.breached:
        names = ", ".join(t.name for t in report.breached)
        raise LimitsExceeded(f"report thresholds breached: {names}")
