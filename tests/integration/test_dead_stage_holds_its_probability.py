"""Salesforce sets an Opportunity's probability from its stage: a stage change dead-lettered
there holds back the probability change of the same deal, which written alone would leave the
deal with the probability of a stage it does not hold."""

from __future__ import annotations

from typing import Any

from connectors.sandbox.faults import Faults
from sync.apply import apply_plan
from sync.apply_report import ChangeResult, Outcome
from sync.runtime import open_runtime
from tests.integration.conftest import World

# Native stages of `qualified` the copies are moved to; `proposal` in Pipedrive and Salesforce.
QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
PROPOSAL_IN_PIPEDRIVE = 4
PROPOSAL_IN_SALESFORCE = "Proposal/Price Quote"  # stage_write (init), over Value Proposition


def _reconcile(world: World, run_id: str) -> dict[tuple[str | None, str | None], ChangeResult]:
    """Plan and apply, as `reconcile` does: its results for Salesforce, by (deal id, field)."""
    result = world.reconcile(run_id)
    with open_runtime(str(world.config)) as rt:
        report = apply_plan(rt, result.plan, run_id=run_id, contexts=result.contexts)
    return {(r.id, r.field): r for r in report.results if r.system == "salesforce"}


def _set(world: World, system: str, deal_id: str, values: dict[str, Any]) -> None:
    """A person edits the deal in the CRM's own screens (no API call)."""
    em: Any = world.sandbox.servers[system].emulator
    with em.lock:
        if system == "salesforce":
            em.store.apply(em.store.check_update(deal_id, values))
        elif system == "hubspot":
            em.store.update(deal_id, values)
        else:
            em.store.update(int(deal_id), values)


def _salesforce(world: World, deal_id: str) -> tuple[str, Any]:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        record = em.store.by_id[deal_id]
        return record["StageName"], record["Probability"]


def test_a_dead_lettered_salesforce_stage_change_holds_back_its_probability_change(
    small_world: World,
) -> None:
    world = small_world
    text = world.config.read_text()
    world.config.write_text(text.replace("push:\n", "push:\n  max_attempts: 1\n"))
    _reconcile(world, "run-1")  # the first sync: bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    sf = ids["salesforce"]
    _set(world, "salesforce", sf, {"StageName": QUALIFIED["salesforce"]})
    _set(
        world, "hubspot", ids["hubspot"], {"pipeline": "default", "dealstage": QUALIFIED["hubspot"]}
    )
    _set(world, "pipedrive", ids["pipedrive"], {"stage_id": int(QUALIFIED["pipedrive"])})
    _reconcile(world, "run-2")  # all three moved alike: agreed, nothing to write
    held = _salesforce(world, sf)
    # A validation rule refuses the stage crmsync writes; a probability alone it lets through.
    world.sandbox.servers["salesforce"].faults.set(Faults(fail_ids=(PROPOSAL_IN_SALESFORCE,)))

    _set(world, "pipedrive", ids["pipedrive"], {"stage_id": PROPOSAL_IN_PIPEDRIVE})
    first = _reconcile(world, "run-3")
    assert first[sf, "stage"].outcome is Outcome.DEAD, first
    assert (sf, "probability") not in first, first  # the stage alone was planned

    _set(world, "pipedrive", ids["pipedrive"], {"probability": 60})  # the same deal, later
    for run in ("run-4", "run-5"):  # and the night after: still held, nothing half-written
        again = _reconcile(world, run)
        assert again[sf, "stage"].outcome is Outcome.DEAD, again
        probability = again[sf, "probability"]
        assert probability.outcome is Outcome.DEAD, again
        assert (probability.reason or "").startswith("goes with the stage, which is dead-lettered")
        assert _salesforce(world, sf) == held
