"""`crmsync pull`: fetch deals into the state store and print them as canonical records."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from mapping import deal_from_json
from sync.commands import config_option, wait_option
from sync.errors import run_error, terminal_safe
from sync.locks import PULL_JOB, pull_locks
from sync.pull import PullFailed, PullReport, failure_of, pull_locked
from sync.runtime import Runtime, open_runtime, progress_reporter
from sync.shutdown import STOPPED, Terminated, terminate_as_interrupt
from sync.store_records import RunKind, RunStatus
from sync.terminal import cell, fitted, id_column, plain_console

__all__ = ["command"]

# what `crmsync runs` says of a pull stopped by Ctrl-C (a pull has no journal: its cursors)
_CTRL_C = "interrupted (Ctrl-C): the next pull reads again from the cursors saved"


@click.command("pull")
@config_option
@click.option("--system", "systems", multiple=True, help="Only this instance (repeatable).")
@click.option("--full", is_flag=True, help="Read everything, not just changes since the cursor.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "table"]), default="table")
@wait_option("for another process's pull of these instances (default: exit)", default=0)
def command(
    config_path: str, systems: tuple[str, ...], full: bool, fmt: str, wait_seconds: float
) -> None:
    """Pull deals (incrementally after the first run) and print them."""
    with open_runtime(config_path, systems=systems) as rt, terminate_as_interrupt():
        # One pull per instance at a time. The run is recorded (and finished) under the locks:
        # the next holder of one of them knows a run of it still `running` is dead.
        with pull_locks(
            rt.store, rt.connectors, wait_seconds > 0, wait_seconds or None, wait_option=True
        ):
            reports, failure = _pull(rt, full)
        for report in reports.values():
            for error in report.errors:
                line = (
                    f"crmsync: skipped {error['system']} record {error['id']}: "
                    f"{error['field']}: {error['reason']}"
                )
                click.echo(terminal_safe(line), err=True)
        instances = list(rt.connectors)
        if fmt == "jsonl":
            out = sys.stdout
            for instance in instances:
                for payload in rt.store.iter_deals(instance):
                    out.write(json.dumps(deal_from_json(payload).as_record()) + "\n")
        else:
            _table(reports, instances)
        if failure is not None:
            raise failure


def _pull(rt: Runtime, full: bool) -> tuple[dict[str, PullReport], PullFailed | None]:
    run_id = rt.store.runs.start(
        PULL_JOB, RunKind.PULL, rt.config.fingerprint(), instances=list(rt.connectors)
    )
    try:
        with progress_reporter(list(rt.connectors)) as progress:
            reports = pull_locked(rt.config, rt.store, rt.connectors, full=full, run_id=run_id,
                                  progress=progress)  # fmt: skip
    except KeyboardInterrupt as exc:  # the cursors moved only with what was saved
        why = STOPPED if isinstance(exc, Terminated) else _CTRL_C
        rt.store.runs.finish(run_id, RunStatus.INTERRUPTED, calls=rt.calls(), error=why)
        raise
    except Exception as exc:
        rt.store.runs.finish(run_id, RunStatus.FAILED, calls=rt.calls(), error=run_error(exc))
        raise
    failure = failure_of(reports)
    status = RunStatus.OK
    if failure is not None:  # the instances that were pulled saved what they read
        pulled = any(r.failure is None for r in reports.values())
        status = RunStatus.PARTIAL if pulled else RunStatus.FAILED
    rt.store.runs.finish(
        run_id,
        status,
        # unmapped_stages: how many native stages the stage map lacks (its meaning since it
        # was recorded); unmapped_deals: the deals in them, the table's `unmapped` column.
        counts={
            name: r.as_dict()
            | {
                "unmapped_stages": len(r.unmapped_stages),
                "unmapped_deals": sum(r.unmapped_stages.values()),
            }
            for name, r in reports.items()
        },
        calls=rt.calls(),
        error=str(failure) if failure else None,
    )
    return reports, failure


def _table(reports: dict[str, PullReport], instances: list[str]) -> None:
    table = Table(title="pull")
    # An instance that could not be pulled says so: its zeros are no count of its deals.
    modes = {name: _mode(reports[name]) for name in instances}
    id_column(table, "instance", instances)  # never cut: "salesf…" at 80 columns
    id_column(table, "mode", modes.values())
    for column in ("fetched", "saved", "deleted", "skipped", "unmapped", "API calls"):
        table.add_column(column, justify="right", min_width=max(map(len, column.split())))
    for name in instances:
        r = reports[name]
        table.add_row(
            cell(name),
            modes[name],
            str(r.fetched),
            str(r.saved),
            str(r.deleted),
            str(len(r.errors)),
            str(sum(r.unmapped_stages.values())),
            str(sum(r.calls.values())),
        )
    console = plain_console()
    console.print(fitted(table, console))


def _mode(report: PullReport) -> str:
    if report.failure is not None:
        return "failed"
    return "full" if report.full else "incremental"
