"""`rollback --apply` of a run that created copies deletes them again, unless someone changed a
copy since; the store forgets the deleted copies, so the next reconcile sees their deals as
missing again, exactly as before the run."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connectors.sandbox.faults import Faults
from sync.apply_report import ApplyReport
from sync.apply_run import guarded_apply
from sync.cli import main
from sync.rollback import rollback_plan
from sync.runtime import open_runtime
from sync.store_records import JournalOp
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World, refusing_after


def _cli(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config), "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _reconcile_and_apply(world: World) -> None:
    """A run that writes; exit 1 only for the creates the generated data makes impossible
    (an owner unknown in the target), which every such run reports the same way."""
    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    assert (
        out.exit_code == 0 or "no hubspot user" in out.output or "no pipedrive user" in out.output
    )


def _create_missing(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _live(world: World, system: str, deal_id: str) -> bool:
    return deal_id in _live_ids(world, system)


def _created_by(world: World, run_id: str) -> dict[tuple[str, str], str]:
    """(instance, id) -> entity of every copy the run created."""
    with open_runtime(str(world.config), connect=False) as rt:
        entries = rt.store.audit.entries(run_id=run_id)
    return {(e.instance, e.deal_id): e.after["link_id"] for e in entries if e.field is None}


def _run_id(world: World) -> str:
    """The latest reconcile that wrote (dry runs write nothing to roll back)."""
    runs = _cli(world, "runs")
    return next(r["id"] for r in runs if r["kind"] == "reconcile" and r["counts"].get("applied"))


def test_rollback_deletes_the_copies_a_run_created_unless_changed_since(
    small_world: World,
) -> None:
    world = small_world
    _create_missing(world)
    planned = {(c["system"], c["entity"]) for c in _cli(world, "reconcile", "--dry-run")["creates"]}
    _reconcile_and_apply(world)  # creates the deals missing in a CRM
    run_id = _run_id(world)
    created = _created_by(world, run_id)
    assert {system for system, _ in created} == {"salesforce", "hubspot", "pipedrive"}
    assert all(_live(world, *copy) for copy in created)
    edited = sorted(c for c in created if c[0] == "hubspot")[0]
    bump_amounts(world, "hubspot", [edited[1]], step=3)  # someone works on one copy
    gone = sorted(c for c in created if c[0] == "pipedrive")[0]
    _delete_by_hand(world, gone)  # and someone deletes another one

    shown = _cli(world, "rollback", run_id)
    assert {(d["system"], d["id"]) for d in shown["deletes"]} == set(created)
    assert shown["created_not_undone"] == [] and shown["already_done"] == []
    assert {c for c in created if not _live(world, *c)} == {gone}  # the dry run deleted nothing

    report = _cli(world, "rollback", run_id, "--apply")
    outcomes = {
        (r["system"], r["id"]): r["outcome"] for r in report["results"] if r["op"] == "delete"
    }
    expected = {edited: "drifted", gone: "already"}
    assert outcomes == {c: expected.get(c, "applied") for c in created}
    drifted = [r for r in report["results"] if r["op"] == "delete" and r["outcome"] == "drifted"]
    assert "amount is now" in drifted[0]["reason"]
    assert {c for c in created if _live(world, *c)} == {edited}
    members = world.members()
    linked = {(system, i) for ids in members.values() for system, i in ids.items()}
    assert linked & set(created) == {edited}

    # a second look says what the apply did: all but the drifted copy are done
    after = _cli(world, "rollback", run_id)
    done = set(after["already_done"])
    deletes = {(d["system"], d["id"]): d["change_id"] for d in shown["deletes"]}
    assert {copy for copy, change_id in deletes.items() if change_id in done} == set(created) - {
        edited
    }
    assert after["changes"] and {c["change_id"] for c in after["changes"]} <= done  # fields too

    again = _cli(world, "rollback", run_id, "--apply")  # resumes: nothing left to do
    assert {r["outcome"] for r in again["results"] if r["op"] == "delete"} <= {
        "done_before",
        "drifted",
    }

    # The state is as before the run: the next plan creates the deleted copies again.
    plan = _cli(world, "reconcile", "--dry-run")
    recreated = {(c["system"], c["entity"]) for c in plan["creates"]}
    assert recreated == planned - {(edited[0], created[edited])}
    _reconcile_and_apply(world)
    fresh = _created_by(world, _run_id(world))
    assert len(fresh) == len(created) - 1 and not fresh.keys() & created.keys()
    assert all(_live(world, *copy) for copy in fresh)


@pytest.mark.parametrize(
    "fault",
    [
        {"drop": 0.3},
        {"error5xx": 0.3},
        {"burst429": 3, "retry_after": 0},
    ],
    ids=["dropped-connections", "5xx", "429-burst"],
)
def test_rollback_deletes_converge_under_faults_without_touching_other_deals(
    small_world: World, fault: dict[str, Any]
) -> None:
    world = small_world
    _create_missing(world)
    _reconcile_and_apply(world)
    created = _created_by(world, _run_id(world))
    before = {s: _live_ids(world, s) for s in world.sandbox.servers}
    for server in world.sandbox.servers.values():
        server.faults.set(Faults(seed=7, **fault))
    run_id = _run_id(world)
    for attempt in range(6):  # an operator re-runs the rollback until nothing is left undone
        report = _rollback(world, run_id, attempt)
        if report.ok:
            break
    assert report.ok, report.failed
    for server in world.sandbox.servers.values():
        server.faults.set(Faults())
    after = {s: _live_ids(world, s) for s in world.sandbox.servers}
    assert {(s, i) for s in before for i in before[s] - after[s]} == set(created)
    assert all(after[s] <= before[s] for s in before)  # nothing created or resurrected


def _rollback(world: World, run_id: str, attempt: int, **options: Any) -> ApplyReport:
    """`rollback RUN_ID --apply`, with a short retry backoff (its schedule is not under test)."""
    options = {"backoff_base": 0.01, **options}
    with open_runtime(str(world.config), connector_options=options) as rt:
        rollback = rollback_plan(
            rt.store,
            run_id,
            fingerprint=rt.config.fingerprint(),
            now=datetime.now(UTC),
            aliases=rt.config.owner_aliases,
        )
        return guarded_apply(
            rt, rollback.plan, run_id=f"rollback-{attempt}", yes=True, check_plan=False,
            op=JournalOp.ROLLBACK, remember_bases=False, deletes=rollback.deletes,
        )  # fmt: skip


def _live_ids(world: World, system: str) -> set[str]:
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "salesforce":
            return {i for i, r in em.store.by_id.items() if not r.get("IsDeleted")}
        if system == "hubspot":
            return set(em.store.live)
        return {
            str(i)
            for i, d in em.store.deals.items()
            if not d.get("deleted") and d.get("status") != "deleted"
        }


def _delete_by_hand(world: World, copy: tuple[str, str]) -> None:
    system, deal_id = copy
    assert system == "pipedrive"
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        em.store.delete(int(deal_id))


def test_a_rollback_the_crm_stops_mid_deletes_audits_every_delete_once_after_the_rerun(
    small_world: World,
) -> None:
    """Pipedrive deletes one call per deal; when a call fails for good part-way, the deals
    deleted before it are in doubt, not failed: the rerun finds them gone and audits them."""
    world = small_world
    _create_missing(world)
    _reconcile_and_apply(world)
    run_id = _run_id(world)
    created = _created_by(world, run_id)
    with refusing_after(world, "pipedrive", "DELETE /api/v2/deals/{id}", 2):
        first = _rollback(world, run_id, 0, max_attempts=1)
    in_doubt = [r for r in first.results if r.op == "delete" and "in doubt" in (r.reason or "")]
    assert not first.ok and in_doubt
    assert _rollback(world, run_id, 1).ok
    with open_runtime(str(world.config), connect=False) as rt:
        audited = Counter(
            (e.instance, e.deal_id)
            for e in rt.store.audit.entries()
            if isinstance(e.after, dict) and e.after.get("deleted")
        )
    assert audited == dict.fromkeys(created, 1)
    assert not any(_live(world, *copy) for copy in created)
