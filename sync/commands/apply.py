"""`crmsync apply PLAN`: write exactly a saved plan, after checking it is still the right one.

`execute_apply` is the part `reconcile` (without --dry-run) and `rollback --apply` share:
guards -> lock -> run record -> apply -> report -> exit code.
"""

from __future__ import annotations

from pathlib import Path
from signal import SIGTERM
from typing import Any

import click

from sync.apply_report import ApplyReport, Outcome, next_runs, render_apply_report
from sync.apply_run import guarded_apply
from sync.commands import config_option
from sync.errors import CrmsyncError, run_error
from sync.guards import PlanRefused, QuestionInterrupted
from sync.journal_counts import journal_totals
from sync.locks import reconcile_lock
from sync.plan import Plan, PlanError
from sync.plan_json import plan_from_json
from sync.reconcile_run import CTRL_C, CTRL_C_UNWRITTEN
from sync.runtime import Runtime, open_runtime
from sync.shutdown import stop_on_signals, stop_requested
from sync.store_records import RunKind, RunStatus

__all__ = ["ApplyIncomplete", "command", "execute_apply", "load_plan", "recorded_apply"]

# SIGTERM (systemd, Kubernetes) finishes the current batch; the rest waits for a rerun.
SIGTERM_STOP = "stopped between batches (SIGTERM): run it again to finish; the journal resumes it"


class ApplyIncomplete(CrmsyncError):
    """Some changes were refused by a CRM (or not attempted); the rest were applied."""

    exit_code = 1


def load_plan(path: Path) -> Plan:
    try:
        with path.open("rb") as file:
            text = file.read(65536)
            # A plan is a JSON object; anything else (/dev/zero, a binary) is refused from its
            # first bytes, not read to its end.
            if text.lstrip().startswith(b"{"):
                text += file.read()
    except OSError as exc:
        raise PlanRefused(f"plan {path}: cannot read it ({exc.strerror})") from None
    try:
        return plan_from_json(text, str(path))
    except PlanError as exc:
        raise PlanRefused(str(exc)) from None


def execute_apply(rt: Runtime, plan: Plan, *, run_id: str, fmt: str, **options: Any) -> ApplyReport:
    """`guarded_apply`, then the report on stdout (the caller finishes the run record)."""
    report = guarded_apply(rt, plan, run_id=run_id, **options)
    render_apply_report(report, fmt)
    return report


def recorded_apply(
    rt: Runtime, plan: Plan, job: str, kind: RunKind, fingerprint: str, **options: Any
) -> ApplyReport:
    """`execute_apply` under a run record of its own, finished however the apply ends (Ctrl-C:
    interrupted); then the command's exit as the report says (the report, when it is 0)."""
    run_id = rt.store.runs.start(job, kind, fingerprint)
    report = None
    try:
        report = execute_apply(rt, plan, run_id=run_id, **options)
    except KeyboardInterrupt as exc:
        why = CTRL_C_UNWRITTEN if isinstance(exc, QuestionInterrupted) else CTRL_C
        counts = {"plan": plan.run_id, "totals": journal_totals(rt.store.journal.entries(run_id))}
        rt.store.runs.finish(
            run_id, RunStatus.INTERRUPTED, counts=counts, calls=rt.calls(), error=why
        )
        raise
    except Exception as exc:
        finish(rt, run_id, None, run_error(exc))
        raise
    finish(rt, run_id, report, None)
    raise_if_failed(report)
    return report


def finish(rt: Runtime, run_id: str, report: ApplyReport | None, error: str | None) -> None:
    """Close the run record with the apply's counts (`crmsync runs` shows them)."""
    if report is None:
        rt.store.runs.finish(run_id, RunStatus.FAILED, calls=rt.calls(), error=error)
        return
    totals = report.totals()
    written = totals[Outcome.APPLIED] + totals[Outcome.ALREADY]
    status = RunStatus.OK if report.ok else RunStatus.PARTIAL if written else RunStatus.FAILED
    counts: dict[str, Any] = {
        "plan": report.plan_id,
        "totals": totals,
        "by_system": report.counts(),
        **report.account_notes(),
    }
    if report.settled:  # what earlier runs left in doubt, settled before this apply wrote
        counts["settled"] = [s.as_json() for s in report.settled]
    failed = report.failed
    message = f"{len(failed)} change(s) not applied, e.g. {failed[0].line()}" if failed else None
    if failed and stop_requested():
        status, message = RunStatus.INTERRUPTED, SIGTERM_STOP
    rt.store.runs.finish(run_id, status, counts=counts, calls=rt.calls(), error=message)


def raise_if_failed(report: ApplyReport) -> None:
    failed = report.failed
    if failed:
        raise ApplyIncomplete(
            f"{len(failed)} of {len(report.results)} change(s) not applied "
            f"(e.g. {failed[0].line()}); {next_runs(failed)}"
        )


@click.command("apply")
@click.argument("plan_path", type=click.Path(path_type=Path))
@config_option
@click.option("--yes", is_flag=True, help="Do not ask before writing many changes.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--batch-size", type=click.IntRange(1), default=None,
    help="Records per write call (default: each API's maximum).",
)  # fmt: skip
def command(config_path: str, plan_path: Path, yes: bool, fmt: str, batch_size: int | None) -> None:
    """Apply a saved plan (refused when stale or made under another config)."""
    plan = load_plan(plan_path)
    with (
        open_runtime(config_path, connect=False) as rt,
        stop_on_signals(signals=(SIGTERM,)),
        reconcile_lock(rt.store),
    ):
        recorded_apply(
            rt, plan, "apply", RunKind.APPLY, rt.config.fingerprint(),
            yes=yes, fmt=fmt, batch_size=batch_size, source=f"plan {plan_path}",
        )  # fmt: skip
