"""A guarded apply: the checks and the lock every command that writes goes through.

Plan checks (config fingerprint, age, size limits, confirmation on a terminal) run before any
connector is opened, so a refused plan costs no API call and writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import click

from mapping import MappingContext
from mapping.model import Ref
from sync.apply import apply_plan
from sync.apply_deletes import Delete, propagated, written_to
from sync.apply_report import ApplyReport
from sync.connect import open_connector
from sync.guards import (
    PlanRefused,
    QuestionInterrupted,
    Writes,
    check_fresh,
    check_limits,
    needs_confirmation,
    plan_writes,
)
from sync.link_review import corrected_since
from sync.locks import job_lock
from sync.plan import Plan
from sync.runtime import Runtime, progress_reporter
from sync.store_records import JournalOp

__all__ = ["PUSH_LOCK", "confirmed", "connect_targets", "guarded_apply"]

# One lock for every command that writes to the CRMs, so two never interleave their writes.
PUSH_LOCK = "push"


def connect_targets(rt: Runtime, plan: Plan, deletes: Sequence[Delete] = ()) -> None:
    """Open connectors for the plan's target instances only (refusing unknown ones)."""
    for name in sorted(written_to(plan, deletes)):
        if name not in rt.config.systems:
            raise PlanRefused(_not_configured(plan, name, rt.config.path.name))
        if name not in rt.connectors:
            rt.connectors[name] = open_connector(rt.config, name)


def _not_configured(plan: Plan, name: str, config: str) -> str:
    """A rollback of a run that wrote to an instance retired since (README "Retiring an
    instance") is the one plan that can name one: it is undone whole or not at all."""
    rolled = plan.summary.get("rollback_of")
    if rolled:
        return (
            f"run {rolled} wrote to {name}, which is not in {config} any more; nothing written: "
            f"add systems.{name} back to undo the run"
        )
    return f"plan writes to {name!r}, which is not in {config}; nothing written"


def _check_matching(rt: Runtime, plan: Plan, source: str) -> None:
    """Refuse a plan whose deals a person split or joined since it was made (`crmsync links`):
    its changes and copies follow matches that no longer hold."""
    refs = {Ref(c.system, c.id) for c in plan.changes}
    refs.update(Ref(c["source"]["system"], c["source"]["id"]) for c in plan.creates)
    refs.update(Ref(r["system"], r["id"]) for d in plan.deleted for r in d["live"])
    corrected = corrected_since(rt.store, refs, plan.created_at)
    if corrected:
        shown = ", ".join(corrected[:3]) + (
            f" and {len(corrected) - 3} more" * (len(corrected) > 3)
        )
        raise PlanRefused(
            f"{source}: matching was corrected by hand since it was made ({shown}); nothing "
            "written: make a fresh plan with `crmsync reconcile --plan-out`"
        )


def confirmed(question: str) -> bool:
    """The person's answer; the end of input answers no. Ctrl-C is an interrupt, as anywhere
    else (click's Abort printed "Aborted!" and the run was recorded failed, without a word)."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            return False
        raise QuestionInterrupted from None


def guarded_apply(
    rt: Runtime,
    plan: Plan,
    *,
    run_id: str,
    yes: bool,
    check_plan: bool = True,
    contexts: Mapping[str, MappingContext] | None = None,
    batch_size: int | None = None,
    op: JournalOp = JournalOp.UPDATE,
    remember_bases: bool = True,
    source: str = "plan",
    deletes: Sequence[Delete] = (),
) -> ApplyReport:
    push = rt.config.push
    if check_plan:
        check_fresh(
            plan,
            fingerprint=rt.config.fingerprint(),
            max_age=push.plan_max_age,
            now=datetime.now(UTC),
            source=source,
        )
        _check_matching(rt, plan, source)
    check_limits(plan, max_changes=push.max_changes, max_per_system=push.max_changes_per_system)
    writes = plan_writes(plan) + Writes(deletes=len(deletes))  # a rollback's are not in it
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    asks = needs_confirmation(
        writes.total, confirm_above=push.confirm_above, yes=yes, interactive=interactive
    )
    if asks and not confirmed(f"Write {writes} to the CRMs?"):
        raise PlanRefused(
            f"not confirmed: {writes}, more than push.confirm_above "
            f"({push.confirm_above}); nothing written (pass --yes to skip the question)"
        )
    deletes = (*deletes, *propagated(rt.store, plan, rt.config.owner_aliases))
    connect_targets(rt, plan, deletes)
    with job_lock(rt.store, PUSH_LOCK), progress_reporter(list(rt.connectors)) as progress:
        return apply_plan(
            rt, plan, run_id=run_id, contexts=contexts, progress=progress,
            batch_size=batch_size, op=op, remember_bases=remember_bases, deletes=deletes,
            saved=check_plan,
        )  # fmt: skip
