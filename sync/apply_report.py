"""What an apply did, change by change: the outcome types and their JSON / summary forms."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from sync.terminal import cell, counted, plain_console

__all__ = [
    "NOTES_KEPT",
    "ApplyReport",
    "ChangeResult",
    "Outcome",
    "Settled",
    "next_runs",
    "render_apply_report",
]


class Outcome(StrEnum):
    APPLIED = "applied"  # written in this run
    ALREADY = "already"  # the target already held the planned value (e.g. resumed after a kill)
    DONE_BEFORE = "done_before"  # an earlier run of the same plan wrote it
    DRIFTED = "drifted"  # the target changed since the plan: skipped, not overwritten
    FAILED = "failed"  # the CRM refused it (or the call failed): retried on later runs
    DEAD = "dead"  # failed push.max_attempts times: dead-lettered, no longer sent
    # Not attempted: a stop (SIGTERM) or a call of its instance that failed for good ended the
    # batches first. Nothing was sent, so it counts toward no dead letter; the next run sends it.
    NOT_SENT = "not_sent"


_FAILING = (Outcome.FAILED, Outcome.DEAD, Outcome.NOT_SENT)  # not landed: later runs


@dataclass(frozen=True, slots=True)
class ChangeResult:
    change_id: str
    system: str
    id: str | None  # None for a create that did not get a record
    field: str | None  # None for a create
    outcome: Outcome
    reason: str | None = None  # the CRM's own reason (failed) or what moved (drifted)
    entity: str | None = None
    op: str | None = None  # "delete"; None: "create" without a field, else "update"

    @property
    def kind(self) -> str:
        return self.op or ("create" if self.field is None else "update")

    def line(self) -> str:
        """`hubspot 9100000728 amount: <reason>`; a create that got no record names its entity."""
        where = self.id or (f"entity {self.entity}" if self.entity else "(new record)")
        return f"{self.system} {where} {self.field or self.kind}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "system": self.system,
            "id": self.id,
            "field": self.field,
            "op": self.kind,
            "outcome": self.outcome.value,
            "reason": self.reason,
        }


# The most account notes a run record keeps (a migration may note thousands).
NOTES_KEPT = 500
_DONE_AS = {"write": "written", "create": "created", "delete": "deleted"}


@dataclass(frozen=True, slots=True)
class Settled:
    """Changes of one kind that an earlier run left in doubt in one instance, settled by this
    apply's reading of the records: `done` had landed (audited under `run_id`), `not_done` had
    not (marked so, free to be planned again)."""

    instance: str
    run_id: str  # the run that left them in doubt
    kind: str  # "write" | "create" | "delete"
    done: int
    not_done: int

    def line(self) -> str:
        verb = _DONE_AS[self.kind]
        count = self.done + self.not_done
        return (
            f"{self.instance}: settled {counted(count, self.kind)} left in doubt by "
            f"run {self.run_id}: {self.done} {verb} (audited under that run), "
            f"{self.not_done} not {verb} (free to be planned again)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "system": self.instance,
            "run_id": self.run_id,
            "op": self.kind,
            "done": self.done,
            "not_done": self.not_done,
        }


@dataclass(frozen=True, slots=True)
class ApplyReport:
    run_id: str
    plan_id: str
    results: tuple[ChangeResult, ...]
    calls: dict[str, dict[str, int]]
    settled: tuple[Settled, ...] = ()  # what earlier runs left in doubt, settled first

    @classmethod
    def of(
        cls,
        run_id: str,
        plan_id: str,
        results: Iterable[ChangeResult],
        calls: dict[str, dict[str, int]] | None = None,
        settled: Iterable[Settled] = (),
    ) -> ApplyReport:
        ordered = sorted(results, key=lambda r: (r.system, r.id or "", r.field or ""))
        return cls(run_id, plan_id, tuple(ordered), dict(calls or {}), tuple(settled))

    def counts(self) -> dict[str, dict[str, int]]:
        """system -> outcome -> number of changes (every outcome present, zeros included)."""
        by_system: dict[str, Counter[str]] = {}
        for r in self.results:
            by_system.setdefault(r.system, Counter())[r.outcome.value] += 1
        return {
            system: {o.value: counter.get(o.value, 0) for o in Outcome}
            for system, counter in sorted(by_system.items())
        }

    def account_notes(self) -> dict[str, Any]:
        """The run record's note of each copy created otherwise than under its account of
        that name (none or several of it, made under create_org_id; a lookup found otherwise
        than the plan): `{"account_notes": [...]}`, at most NOTES_KEPT of them, and
        `account_notes_left_off` beyond. Stored with the run, as a nightly's stderr is not."""
        noted = [
            {"system": r.system, "id": r.id, "entity": r.entity, "note": r.reason}
            for r in self.results
            if r.outcome is Outcome.APPLIED and r.kind == "create" and r.reason
        ]
        if not noted:
            return {}
        kept: dict[str, Any] = {"account_notes": noted[:NOTES_KEPT]}
        if len(noted) > NOTES_KEPT:
            kept["account_notes_left_off"] = len(noted) - NOTES_KEPT
        return kept

    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter(r.outcome.value for r in self.results)
        return {o.value: totals.get(o.value, 0) for o in Outcome}

    @property
    def failed(self) -> tuple[ChangeResult, ...]:
        """What did not land in this run (refused, dead-lettered, not sent); not the drifted
        ones, which were skipped on purpose."""
        return tuple(r for r in self.results if r.outcome in _FAILING)

    @property
    def drifted(self) -> tuple[ChangeResult, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.DRIFTED)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan_id": self.plan_id,
            "totals": self.totals(),
            "by_system": self.counts(),
            "results": [r.as_json() for r in self.results],
            "calls": self.calls,
            "settled": [s.as_json() for s in self.settled],
        }


def next_runs(failed: Iterable[ChangeResult]) -> str:
    """What later runs do with changes not applied: the refused ones are retried, the
    dead-lettered ones wait for a person to release them."""
    outcomes = Counter(r.outcome for r in failed)
    dead, retried = outcomes[Outcome.DEAD], sum(outcomes.values()) - outcomes[Outcome.DEAD]
    release = "`crmsync dead-letters retry` releases them once the cause is fixed in the CRM"
    if not dead:
        return "they are retried on the next run"
    if not retried:
        return f"they are dead-lettered, not sent again: {release}"
    return f"{dead} of them dead-lettered, not sent again ({release}); the others are retried"


def render_apply_report(report: ApplyReport, fmt: str, console: Console | None = None) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
        return
    console = console or plain_console()
    for settled in report.settled:
        console.print(settled.line(), markup=False, highlight=False, soft_wrap=True)
    if not report.results:
        console.print(f"apply {report.run_id} (plan {report.plan_id}): nothing to write")
        return
    table = Table(title=f"apply {report.run_id} (plan {report.plan_id})")
    table.add_column("system", no_wrap=True)  # the headers wrap instead: a name must not be cut
    for outcome in Outcome:
        table.add_column(outcome.value.replace("_", " "), justify="right")
    for system, counts in report.counts().items():
        table.add_row(system, *(str(counts[o.value]) for o in Outcome))
    console.print(table)
    noted = [r for r in report.results if r.outcome is Outcome.APPLIED and r.reason]
    if noted:  # written otherwise than planned (a copy filed under create_org_id)
        notes = Table(title="applied, with a note")
        for column in ("system", "id", "note"):
            notes.add_column(column, overflow="fold")
        for r in noted:
            notes.add_row(cell(r.system), cell(r.id or "-"), cell(r.reason or ""))
        console.print(notes)
    shown = [r for r in report.results if r.outcome is Outcome.DRIFTED or r.outcome in _FAILING]
    if shown:
        detail = Table(title="not applied")
        for column in ("system", "id", "field", "outcome", "reason"):
            detail.add_column(column, overflow="fold")
        for r in shown:
            detail.add_row(
                *map(cell, (r.system, r.id or "-", r.field or f"({r.kind})", r.outcome.value)),
                cell(r.reason or ""),
            )
        console.print(detail)
