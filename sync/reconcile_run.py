"""One reconcile run as `crmsync reconcile` and the scheduler both perform it.

Plan (pull, match, diff), save the plan where asked, apply it unless it is a dry run, and
record the run with its counts and API calls. The CLI and `crmsync schedule` share this, so a
scheduled reconcile is exactly the command users know.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from config import Config
from mapping.model import Deal, Ref
from sync.errors import LimitsExceeded, run_error
from sync.guards import QuestionInterrupted, over_limits
from sync.journal_counts import journal_totals
from sync.locks import Budget
from sync.outfile import write_atomically
from sync.plan import Plan
from sync.plan_accounts import look_up_accounts
from sync.plan_json import plan_to_json
from sync.reconcile import ReconcileResult, plan_run
from sync.runtime import Bars, Runtime
from sync.shutdown import Stopped, stop_signal
from sync.store_records import RunStatus

__all__ = [
    "CTRL_C",
    "CTRL_C_UNWRITTEN",
    "PLAN_COUNTS",
    "ReconcileOutcome",
    "limits_breached",
    "run_reconcile",
    "verdict",
    "write_plan",
]

CTRL_C = "interrupted (Ctrl-C): the next run resumes from the journal"
# before its apply began (a dry run: always; at the confirmation question) there is no journal
# to resume
CTRL_C_UNWRITTEN = "interrupted (Ctrl-C) before writing to any CRM: run it again"
# The plan's reader left as it was shown (`reconcile | head`): an apply then never began.
READER_LEFT = "the output's reader left (broken pipe) before the apply: nothing was written"
_log = logging.getLogger("crmsync.reconcile")
PLAN_COUNTS = ("changes", "creates", "conflicts", "unmatched", "ambiguous", "duplicates", "errors")


@dataclass
class ReconcileOutcome:
    run_id: str
    result: ReconcileResult
    plan_json: dict[str, Any]
    status: RunStatus
    counts: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.status is RunStatus.OK else 1


def write_plan(plan_json: dict[str, Any], path: Path, *, what: str = "--plan-out") -> None:
    """Atomically: a reader never sees half a plan. `what` names the path in an error."""
    write_atomically(path, json.dumps(plan_json, indent=2, ensure_ascii=False) + "\n", what=what)


def _warn_over_limits(config: Config, plan: Plan) -> None:
    """A dry run is what ops review before applying: it says that `crmsync apply` refuses the
    plan (exit 3), rather than the apply being the first to tell."""
    push = config.push
    breach = over_limits(
        plan, max_changes=push.max_changes, max_per_system=push.max_changes_per_system
    )
    if breach:
        _log.warning(
            "%s: crmsync apply refuses it; review the plan, then raise the limit in the config "
            "if it is right",
            breach,
        )


def limits_breached(config: Config, counts: dict[str, Any]) -> str | None:
    """What of `limits.max_conflicts` / `limits.max_unmatched` the counts exceed, or None."""
    limits = config.limits
    breached = []
    if limits.max_conflicts is not None and counts["conflicts"] > limits.max_conflicts:
        breached.append(f"{counts['conflicts']} conflicts (limit {limits.max_conflicts})")
    if limits.max_unmatched is not None and counts["unmatched"] > limits.max_unmatched:
        breached.append(f"{counts['unmatched']} unmatched deals (limit {limits.max_unmatched})")
    return "reconcile limits exceeded: " + "; ".join(breached) if breached else None


def verdict(config: Config, outcome: ReconcileOutcome) -> tuple[int, str]:
    """(exit code, line) a reconcile ends with: changes it failed to apply (1) outrank breached
    limits (3), and the line then says both."""
    breach = limits_breached(config, outcome.counts)
    if breach is None:
        return outcome.exit_code, outcome.detail
    if not outcome.exit_code:
        return LimitsExceeded.exit_code, breach
    return outcome.exit_code, "; ".join(filter(None, (outcome.detail, breach)))


def run_reconcile(
    rt: Runtime,
    *,
    job: str = "reconcile",
    dry_run: bool,
    full: bool = False,
    yes: bool = False,
    plan_out: Path | None = None,
    progress: Bars | None = None,
    stop: threading.Event | None = None,
    show: Callable[[dict[str, Any], dict[Ref, Deal]], None] | None = None,
    pull_wait: Budget | None = None,
) -> ReconcileOutcome:
    """`show` gets the plan before anything is applied (the CLI prints it there). A pull of
    one of the instances that another process runs is waited for up to what is left of
    `pull_wait` (the command's --wait; None: DEFAULT_WAIT, for a caller without one)."""
    kind = "reconcile-dry-run" if dry_run else "reconcile"
    run_id = rt.store.runs.start(job, kind, rt.config.fingerprint())
    counts: dict[str, Any] = {}
    applying = False
    try:
        result = plan_run(rt.config, rt.store, rt.connectors, run_id=run_id, full=full,
                          progress=progress, pull_wait=pull_wait,
                          phase=progress.phase if progress is not None else None)  # fmt: skip
        if dry_run:  # the review learns which account each copy finds (an apply looks then)
            result = replace(result, plan=look_up_accounts(result.plan, rt.connectors))
        plan_json = plan_to_json(result.plan)
        counts = {key: len(plan_json[key]) for key in PLAN_COUNTS}
        counts["mapping_errors"] = result.mapping_errors[:500]
        counts["dead_letters_settled"] = result.letters_settled
        if plan_out is not None:
            write_plan(plan_json, plan_out)
        if show is not None:
            show(plan_json, result.deals)
        if dry_run:
            _warn_over_limits(rt.config, result.plan)
        outcome = ReconcileOutcome(run_id, result, plan_json, RunStatus.OK, counts)
        if not dry_run:
            applying = True
            _apply(rt, outcome, yes=yes, stop=stop)
    except KeyboardInterrupt as exc:  # Ctrl-C aborts at once; the journal resumes an apply
        wrote = applying and not isinstance(exc, QuestionInterrupted)
        written = rt.store.journal.entries(run_id) if wrote else []
        if written:
            counts["applied"] = journal_totals(written)
        why = CTRL_C if wrote else CTRL_C_UNWRITTEN
        rt.store.runs.finish(
            run_id, RunStatus.INTERRUPTED, counts=counts, calls=rt.calls(), error=why
        )
        raise
    except Stopped as exc:  # SIGTERM while waiting for another process's pull, or in the pull
        rt.store.runs.finish(
            run_id, RunStatus.INTERRUPTED, counts=counts, calls=rt.calls(), error=str(exc)
        )
        raise
    except Exception as exc:
        status, why = RunStatus.FAILED, run_error(exc)
        if isinstance(exc, BrokenPipeError) and not applying:
            # The reader left as the plan was shown (`| head`): a dry run did its work, and
            # an apply never began.
            status, why = (RunStatus.OK, "") if dry_run else (RunStatus.INTERRUPTED, READER_LEFT)
        rt.store.runs.finish(run_id, status, counts=counts, calls=rt.calls(), error=why or None)
        raise
    # A breach of the limits is no failure of the run (it exits 3, its plan made or applied),
    # but `crmsync runs` says so, where the nightly's exit code is seen by no one.
    said = (outcome.detail, limits_breached(rt.config, outcome.counts))
    rt.store.runs.finish(
        run_id,
        outcome.status,
        counts=outcome.counts,
        calls=rt.calls(),
        error="; ".join(filter(None, said)) or None,
    )
    return outcome


def _apply(
    rt: Runtime, outcome: ReconcileOutcome, *, yes: bool, stop: threading.Event | None
) -> None:
    if stop is not None and stop.is_set():
        outcome.status = RunStatus.INTERRUPTED
        outcome.detail = (
            f"stopped before applying ({stop_signal()}): nothing was written; next run re-plans"
        )
        return
    from sync.apply import apply_from_reconcile  # the apply engine: imported only when writing
    from sync.apply_report import next_runs

    report = apply_from_reconcile(rt, outcome.result, run_id=outcome.run_id, yes=yes)
    outcome.counts["applied"] = report.totals()
    outcome.counts.update(report.account_notes())
    if report.settled:  # what earlier runs left in doubt, settled before this apply wrote
        outcome.counts["settled"] = [s.as_json() for s in report.settled]
    if report.ok:
        return
    done = report.totals()
    landed = done["applied"] + done["already"]
    outcome.status = RunStatus.PARTIAL if landed else RunStatus.FAILED
    outcome.detail = (
        f"{len(report.failed)} change(s) not applied (e.g. {report.failed[0].line()}); "
        f"{next_runs(report.failed)}"
    )
    if stop is not None and stop.is_set():
        outcome.status = RunStatus.INTERRUPTED
        outcome.detail = (
            f"stopped between apply batches ({stop_signal()}): the journal resumes the rest"
        )
