"""Checks a plan must pass before anything is written: same config, fresh enough, small enough.

Each check is a pure function of the plan, the config's push settings and the clock; each
refusal is one line that says what is wrong and what to do. Nothing here touches a CRM.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.errors import CrmsyncError
from sync.plan import Plan
from sync.terminal import counted

__all__ = [
    "LimitsBreached",
    "PlanRefused",
    "QuestionInterrupted",
    "Writes",
    "check_fresh",
    "check_limits",
    "needs_confirmation",
    "over_limits",
    "plan_writes",
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


@dataclass(frozen=True, slots=True)
class Writes:
    """What a plan writes to the CRMs, by kind: every kind counts against push.max_changes."""

    changes: int = 0  # field changes
    creates: int = 0  # copies push.create_missing makes
    deletes: int = 0  # propagated deletes, or a rollback's

    @property
    def total(self) -> int:
        return self.changes + self.creates + self.deletes

    def __add__(self, other: Writes) -> Writes:
        return Writes(
            self.changes + other.changes, self.creates + other.creates, self.deletes + other.deletes
        )

    def __str__(self) -> str:
        """`3 changes` of field changes alone; else what the total is made of: a migration's
        plan of 104 changes and 5492 creates was refused for "5596 changes", unexplained."""
        if not self.creates and not self.deletes:
            return counted(self.changes, "change")
        kinds = (
            (self.changes, "field change"), (self.creates, "create"), (self.deletes, "delete")
        )  # fmt: skip
        parts = ", ".join(counted(n, noun) for n, noun in kinds if n)
        return f"{counted(self.total, 'change')} ({parts})"


def writes_by_system(plan: Plan) -> dict[str, Writes]:
    """Field changes, creates and propagated deletes, per target instance."""
    changes = Counter(c.system for c in plan.changes)
    creates = Counter(str(c["system"]) for c in plan.creates)
    # A mass deletion in one CRM must meet the limits before it spreads to the others.
    deletes = Counter(str(r["system"]) for d in plan.deleted if d["propagate"] for r in d["live"])
    return {
        system: Writes(changes[system], creates[system], deletes[system])
        for system in sorted(changes.keys() | creates.keys() | deletes.keys())
    }


def plan_writes(plan: Plan) -> Writes:
    return sum(writes_by_system(plan).values(), Writes())


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


def over_limits(plan: Plan, *, max_changes: int, max_per_system: int | None) -> str | None:
    """What of the plan is above push.max_changes / push.max_changes_per_system, in words."""
    total = plan_writes(plan)
    if total.total > max_changes:
        return f"plan writes {total}, more than push.max_changes ({max_changes})"
    if max_per_system is None:
        return None
    for system, writes in writes_by_system(plan).items():
        if writes.total > max_per_system:
            return (
                f"plan writes {writes} to {system}, more than push.max_changes_per_system "
                f"({max_per_system})"
            )
    return None


def check_limits(plan: Plan, *, max_changes: int, max_per_system: int | None) -> None:
    """Refuse oversized plans instead of writing part of them."""
    breach = over_limits(plan, max_changes=max_changes, max_per_system=max_per_system)
    if breach:
        raise LimitsBreached(
            f"{breach}; nothing written: review the plan, then raise the limit in the config "
            "if it is right"
        )


def needs_confirmation(count: int, *, confirm_above: int, yes: bool, interactive: bool) -> bool:
    """A person at a terminal confirms large writes; scheduled (non-terminal) runs do not ask."""
    return interactive and not yes and count > confirm_above
