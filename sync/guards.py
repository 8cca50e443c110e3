"""Checks a plan must pass before anything is written: same config, fresh enough, small enough.

Each check is a pure function of the plan, the config's push settings and the clock; each
refusal is one line that says what is wrong and what to do. Nothing here touches a CRM.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sync.errors import CrmsyncError
from sync.plan import Plan
from sync.terminal import counted

__all__ = [
    "LimitsBreached",
    "PlanRefused",
    "QuestionInterrupted",
    "check_fresh",
    "check_limits",
    "needs_confirmation",
    "write_count",
    "writes_by_system",
]


class PlanRefused(CrmsyncError):
    """The plan no longer describes what may be written (other config, too old, not confirmed)."""

    exit_code = 2


class QuestionInterrupted(KeyboardInterrupt):
    """Ctrl-C at the confirmation question: an interrupt (the run is recorded interrupted),
    before anything was written."""


class LimitsBreached(CrmsyncError):
    """The plan writes more than push.max_changes / push.max_changes_per_system allow."""

    exit_code = 3


def writes_by_system(plan: Plan) -> Counter[str]:
    """Field changes, creates and propagated deletes, per target instance."""
    counts: Counter[str] = Counter(c.system for c in plan.changes)
    counts.update(str(c["system"]) for c in plan.creates)
    # A mass deletion in one CRM must meet the limits before it spreads to the others.
    counts.update(str(r["system"]) for d in plan.deleted if d["propagate"] for r in d["live"])
    return counts


def write_count(plan: Plan) -> int:
    return sum(writes_by_system(plan).values())


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds < 3600 else f"{seconds / 3600:.1f}h"


def check_fresh(
    plan: Plan, *, fingerprint: str, max_age: timedelta, now: datetime, source: str = "plan"
) -> None:
    """Refuse a plan made under another config, or older than push.plan_max_age."""
    if plan.config_fingerprint != fingerprint:
        raise PlanRefused(
            f"{source}: made with a different config or crmsync version (fingerprint "
            f"{plan.config_fingerprint[:12]}, now {fingerprint[:12]}); nothing written: "
            "run `crmsync reconcile --plan-out` again"
        )
    age = now - plan.created_at
    if age > max_age:
        raise PlanRefused(
            f"{source}: made {_age(age)} ago, older than push.plan_max_age ({_age(max_age)}); "
            "nothing written: make a fresh plan with `crmsync reconcile --plan-out`"
        )
    if age < -timedelta(minutes=5):
        raise PlanRefused(f"{source}: created in the future ({plan.created_at}); check the clock")


def check_limits(plan: Plan, *, max_changes: int, max_per_system: int | None) -> None:
    """Refuse oversized plans instead of writing part of them."""
    total = write_count(plan)
    if total > max_changes:
        raise LimitsBreached(
            f"plan writes {counted(total, 'change')}, more than push.max_changes "
            f"({max_changes}); nothing written: review the plan, then raise the limit in the "
            "config if it is right"
        )
    if max_per_system is None:
        return
    for system, count in sorted(writes_by_system(plan).items()):
        if count > max_per_system:
            raise LimitsBreached(
                f"plan writes {counted(count, 'change')} to {system}, more than "
                f"push.max_changes_per_system ({max_per_system}); nothing written: review the "
                "plan, then raise the limit in the config if it is right"
            )


def needs_confirmation(count: int, *, confirm_above: int, yes: bool, interactive: bool) -> bool:
    """A person at a terminal confirms large writes; scheduled (non-terminal) runs do not ask."""
    return interactive and not yes and count > confirm_above
