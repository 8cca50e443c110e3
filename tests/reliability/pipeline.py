"""One life of a crmsync deployment, phase by phase, with a fault injected into one phase.

Phases: `pull_full` (first reconcile plan), `apply` (its writes, creates included), outside
edits by people, `pull_incremental` (second plan, from the cursors) and its apply, then
`rollback` of that second apply. A phase run under a fault either completes, or fails with a
typed error / reports what it could not do; then the fault is lifted and the phase is run
again (a rerun, as an operator or the scheduler would), which must finish the job. The
outcome records each plan, each report and the final dumps, for comparison with a fault-free
life of the same dataset.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from connectors.base import NativeUpdate
from connectors.errors import ConnectorError
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID
from sync.apply import apply_plan
from sync.apply_report import ApplyReport, Outcome
from sync.errors import CrmsyncError
from sync.plan import Plan
from sync.pull import PullFailed
from sync.reconcile import ReconcileResult, plan_run
from sync.rollback import rollback_plan
from sync.store_records import JournalOp
from tests.sandbox_env import SandboxEnv, deal_records

PHASES = ("pull_full", "apply", "pull_incremental", "rollback")

# Every fault the sandbox injects, at a strength that bites on a ~100-call run.
FAULTS: dict[str, dict[str, Any]] = {
    "429_burst": {"burst429": 4, "rate429": 0.15, "retry_after": 0},
    "5xx": {"error5xx": 0.2},
    "dropped_connection": {"drop": 0.15},
    "expired_session": {"expire_after": 4},
    "daily_limit_403": {"daily_limit": 2},
    "record_failures_207": {"record_fail": 0.35},
    "latency_spikes": {"latency_spike_rate": 0.3, "latency_spike_ms": 120},
}

T = TypeVar("T")
_SUCCESS = (Outcome.APPLIED, Outcome.ALREADY, Outcome.DONE_BEFORE)
# Outside edits between the two reconciles, on the first deals of one system: edits of linked
# deals in several systems within one second would make the `newest` policy race the clock.
_EDITS = {"salesforce": ("CloseDate", "2031-03-01")}


@dataclass
class Life:
    plans: dict[str, Plan] = field(default_factory=dict)
    # (phase, attempt) -> what the faulty attempt left undone, per the run's own report
    unprocessed: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # phase -> the typed error's line
    retried: set[str] = field(default_factory=set)
    final: dict[str, Any] = field(default_factory=dict)


def _plain_plan(plan: Plan) -> set[tuple[str, str, str, str]]:
    return {(c.system, c.id, c.field, repr(c.to_value)) for c in plan.changes}


def plan_signature(plan: Plan) -> tuple[set[tuple[str, str, str, str]], int]:
    return _plain_plan(plan), len(plan.creates)


class _Phases:
    def __init__(self, env: SandboxEnv, fault: str | None, phase: str | None, seed: int) -> None:
        self.env, self.fault, self.phase, self.seed = env, fault, phase, seed
        self.life = Life()

    def run(self, name: str, action: Callable[[], T], done: Callable[[T], bool]) -> T:
        """`action` under the fault (if it is this phase's); rerun without it until `done`."""
        faulty = self.fault is not None and name == self.phase
        if faulty:
            self.env.faults(**FAULTS[self.fault or ""], seed=self.seed)
        try:
            outcome: T | None = action()
        except (ConnectorError, CrmsyncError, PullFailed) as exc:
            assert faulty, f"{name} failed without a fault: {exc}"
            self.life.errors[name] = str(exc)
            outcome = None
        finally:
            self.env.faults()
        if outcome is not None and done(outcome):
            return outcome
        # The rerun is judged by the end state, compared with a fault-free life: a change that
        # fails without faults too (say, a create whose owner is unknown there) fails in both.
        self.life.retried.add(name)
        return action()


def _apply_done(report: ApplyReport) -> bool:
    return report.ok


def _check_report_lists_the_undone(life: Life, name: str, plan: Plan, report: ApplyReport) -> None:
    """Every change the apply did not land is in the report's failed list, with system + id."""
    results = {(r.system, r.id, r.field) for r in report.results if r.field is not None}
    assert {(c.system, c.id, c.field) for c in plan.changes} <= results
    undone = {(r.system, r.id) for r in report.results if r.outcome not in _SUCCESS}
    listed = {(r.system, r.id) for r in report.failed} | {(r.system, r.id) for r in report.drifted}
    assert undone == listed, f"{name}: undone but not reported: {undone - listed}"
    for r in report.failed:
        assert r.system and (r.id or r.entity) and r.reason, r
    life.unprocessed[name] = undone


def live(
    env: SandboxEnv, *, fault: str | None = None, phase: str | None = None, seed: int = 0
) -> Life:
    """Run the whole life; `fault` is injected during `phase` only."""
    steps = _Phases(env, fault, phase, seed)
    life = steps.life

    def plan(run_id: str, full: bool) -> Callable[[], ReconcileResult]:
        def action() -> ReconcileResult:
            with env.runtime() as rt:
                return plan_run(rt.config, rt.store, rt.connectors, run_id=run_id, full=full)

        return action

    def apply(name: str, the_plan: Plan, run_id: str, **kw: Any) -> Callable[[], ApplyReport]:
        attempt = iter(range(100))

        def action() -> ApplyReport:
            n = next(attempt)
            # An apply run again is a later one: past HubSpot's search lag, which holds creates
            # left in doubt (the emulator's search has none).
            later = {"lookup_lag_s": 0} if n else {}
            with env.runtime(**later) as rt:
                report = apply_plan(rt, the_plan, run_id=f"{run_id}-{n}", **kw)
            if not report.ok:
                _check_report_lists_the_undone(life, name, the_plan, report)
            return report

        return action

    first = steps.run("pull_full", plan("plan-1", True), lambda r: True).plan
    life.plans["plan-1"] = first
    steps.run("apply", apply("apply", first, "apply-1"), _apply_done)
    _edit_outside(env)
    second = steps.run("pull_incremental", plan("plan-2", False), lambda r: True).plan
    life.plans["plan-2"] = second
    steps.run("apply-2", apply("apply-2", second, "apply-2"), _apply_done)
    with env.runtime() as rt:
        back = rollback_plan(
            rt.store,
            "apply-2-0",
            fingerprint=rt.config.fingerprint(),
            now=datetime.now(UTC),
            aliases=rt.config.owner_aliases,
        ).plan
    life.plans["rollback"] = back
    steps.run(
        "rollback",
        apply("rollback", back, "rollback-1", op=JournalOp.ROLLBACK, remember_bases=False),
        _apply_done,
    )
    life.final = env.dump()
    return life


def _edit_outside(env: SandboxEnv) -> None:
    """People edit a few deals in each CRM between the two reconciles."""
    with env.runtime() as rt:
        for system, (native, value) in _EDITS.items():
            connector = rt.connectors[system]
            ids = [str(_id(system, d)) for d in deal_records(env.dump())[system][:3]]
            results = connector.update_deals([NativeUpdate(i, {native: value}) for i in ids])
            assert all(r.ok for r in results), results


def _id(system: str, record: Mapping[str, Any]) -> Any:
    return record["Id"] if system == "salesforce" else record["id"]


_MARKERS = {
    "salesforce": "Crmsync_Id__c",
    "hubspot": "crmsync_id",
    "pipedrive": PD_FIELD_CRMSYNC_ID,
}


def _marker(system: str, record: Mapping[str, Any]) -> Any:
    body = record.get("properties", record) if system == "hubspot" else record
    return body.get(_MARKERS[system])


def duplicates(dump: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Link markers held by more than one deal of a system: one entity created twice."""
    out: dict[str, list[Any]] = {}
    for system, records in deal_records(dump).items():
        seen = Counter(m for m in (_marker(system, r) for r in records) if m)
        out[system] = sorted(m for m, n in seen.items() if n > 1)
    return out


# Fields holding a deal id of a system: its own id fields, and the cross-system link fields.
_ID_FIELDS = {
    "Id": "salesforce", "hs_object_id": "hubspot",
    "HubSpot_Deal_Id__c": "hubspot", "Pipedrive_Deal_Id__c": "pipedrive",
    "salesforce_opportunity_id": "salesforce", "pipedrive_deal_id": "pipedrive",
    PD_FIELD_SALESFORCE_ID: "salesforce", PD_FIELD_HUBSPOT_ID: "hubspot",
}  # fmt: skip


def comparable(dump: Mapping[str, Any], original: Mapping[str, Any]) -> dict[str, Any]:
    """Deal records with the ids of records crmsync created renamed after their link marker.

    A create retried in a later run gets a later id than in a fault-free run; which id the CRM
    hands out is not crmsync's to decide, the content and the links between records are.
    """
    known = {s: {str(_id(s, r)) for r in rs} for s, rs in deal_records(original).items()}
    rename: dict[tuple[str, str], str] = {}
    for system, records in deal_records(dump).items():
        for r in records:
            if str(_id(system, r)) not in known[system]:
                rename[(system, str(_id(system, r)))] = f"created:{_marker(system, r)}"

    def walk(value: Any, system: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                target = system if key == "id" else _ID_FIELDS.get(key)
                if target and not isinstance(item, (dict, list)):
                    out[key] = rename.get((target, str(item)), item)
                else:
                    out[key] = walk(item, system)
            return out
        if isinstance(value, list):
            return [walk(v, system) for v in value]
        return value

    return {
        system: sorted(
            (walk(r, system) for r in records),
            key=lambda r: json.dumps(r, default=str, sort_keys=True),
        )
        for system, records in deal_records(dump).items()
    }
