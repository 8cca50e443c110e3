"""An incremental reconcile looks only at what changed, and plans exactly what a full one would."""

from __future__ import annotations

from typing import Any

import yaml

from mapping.model import Ref
from sync.incremental import choose_scope
from sync.plan_json import plan_to_json
from sync.pull import pull
from sync.reconcile import ReconcileResult, analyze
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World


def _comparable(result: ReconcileResult) -> dict[str, Any]:
    document = plan_to_json(result.plan)
    for key in ("run_id", "created_at", "checksum"):
        document.pop(key, None)
    return document


def _pull_then_analyze(world: World, run_id: str) -> tuple[ReconcileResult, ReconcileResult]:
    """(a read-only full analysis, the incremental one), both over the same freshly pulled store."""
    with open_runtime(str(world.config)) as rt:
        reports = pull(rt.config, rt.store, rt.connectors, run_id=run_id)
        assert not any(r.failure for r in reports.values())
        contexts = {n: r.context for n, r in reports.items() if r.context is not None}
        full = analyze(rt.config, rt.store, run_id=run_id, contexts=contexts, remember=False)
        incremental = analyze(rt.config, rt.store, run_id=run_id, contexts=contexts)
    return full, incremental


def _settled_hubspot_deal(world: World) -> tuple[str, set[Ref]]:
    """A HubSpot deal whose entity is present everywhere and left settled by the last run."""
    with open_runtime(str(world.config), connect=False) as rt:
        links, pending = rt.store.links(), set(rt.store.pending())
    members: dict[str, set[Ref]] = {}
    for (instance, deal_id), entity in links.items():
        members.setdefault(entity, set()).add(Ref(instance, deal_id))
    for refs in sorted(members.values(), key=lambda r: sorted(map(str, r))):
        if len(refs) == 3 and not {(r.system, r.id) for r in refs} & pending:
            return next(r.id for r in refs if r.system == "hubspot"), refs
    raise AssertionError("the generated world has no settled three-system entity")


def test_one_changed_deal_is_planned_as_a_full_run_would_looking_only_at_its_entity(
    small_world: World,
) -> None:
    first = small_world.reconcile("r1")
    assert not first.scope.incremental  # first run: everything
    everything = len(first.deals)

    # A run without changes: only what the first run left unsettled is looked at.
    full, quiet = _pull_then_analyze(small_world, "r2")
    assert quiet.scope.incremental, quiet.scope.reason
    assert _comparable(quiet) == _comparable(full)
    unsettled = quiet.entities_diffed
    assert unsettled < full.entities_diffed and len(quiet.deals) < everything

    deal_id, members = _settled_hubspot_deal(small_world)
    bump_amounts(small_world, "hubspot", [deal_id])  # type: ignore[arg-type]

    full, changed = _pull_then_analyze(small_world, "r3")
    assert changed.scope.incremental
    assert _comparable(changed) == _comparable(full)  # (a) the same plan
    assert changed.entities_diffed == unsettled + 1  # (b) only the changed entity on top
    assert members <= set(changed.deals)
    amount_changes = [c for c in changed.plan.changes if c.field == "amount"]
    assert {Ref(c.system, c.id) for c in amount_changes} >= members - {Ref("hubspot", deal_id)}


def test_the_full_path_is_chosen_whenever_nothing_vouches_for_skipped_entities() -> None:
    state = {"config_fingerprint": "abc", "run_id": "r1"}
    assert choose_scope(state, fingerprint="abc", remember=True, full=False).incremental
    assert not choose_scope(state, fingerprint="abc", remember=False, full=False).incremental
    assert not choose_scope(state, fingerprint="abc", remember=True, full=True).incremental
    assert not choose_scope(None, fingerprint="abc", remember=True, full=False).incremental
    assert not choose_scope(state, fingerprint="new", remember=True, full=False).incremental


def test_a_full_pull_makes_the_next_analysis_full(small_world: World) -> None:
    small_world.reconcile("r1")
    with open_runtime(str(small_world.config)) as rt:
        assert rt.store.reconcile_state() is not None
        pull(rt.config, rt.store, rt.connectors, full=True, run_id="r2")
        assert rt.store.reconcile_state() is None
        again = analyze(rt.config, rt.store, run_id="r2")
    assert not again.scope.incremental


def test_a_copy_of_a_settled_deal_is_a_duplicate_in_a_nightly_run_as_in_a_full_one(
    small_world: World,
) -> None:
    """A person copies a deal whose entity is settled (same name, owner and close date, so the
    same match key): a full analysis reports the pair as duplicates and holds them. The nightly
    one must too, although the original is not flagged: it used to see only the copy, took it
    for a new deal and planned to create it in the other CRMs."""
    config = small_world.config
    config.write_text(config.read_text().replace("create_missing: false", "create_missing: true"))
    small_world.reconcile("r1")
    deal_id, _ = _settled_hubspot_deal(small_world)
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        original = hubspot.store.live[deal_id]["properties"]
        keep = ("dealname", "pipeline", "dealstage", "closedate", "amount", "hubspot_owner_id")
        copy_id = hubspot.store.create({name: original[name] for name in keep})["id"]

    full, nightly = _pull_then_analyze(small_world, "r2")
    assert nightly.scope.incremental
    assert _comparable(nightly) == _comparable(full)
    twins = [d["ids"] for d in nightly.plan.duplicates if d["system"] == "hubspot"]
    assert sorted((deal_id, copy_id)) in twins
    assert not [c for c in nightly.plan.creates if c["source"]["id"] == copy_id]


def _without_pipedrive(world: World) -> None:
    """The config no longer has the Pipedrive instance (its deals stay in the store)."""
    document = yaml.safe_load(world.config.read_text())
    del document["systems"]["pipedrive"]
    for system in document["systems"].values():
        system.get("external_ids", {}).pop("pipedrive", None)
    document["push"]["targets"] = [t for t in document["push"]["targets"] if t != "pipedrive"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def test_a_change_in_an_entity_with_a_deal_of_a_dropped_instance_is_planned_as_in_a_full_run(
    small_world: World,
) -> None:
    small_world.reconcile("r1")
    deal_id, members = _settled_hubspot_deal(small_world)  # linked to a Pipedrive deal too
    _without_pipedrive(small_world)
    assert not small_world.reconcile("r2").scope.incremental  # the config changed

    bump_amounts(small_world, "hubspot", [deal_id])
    full, changed = _pull_then_analyze(small_world, "r3")
    assert changed.scope.incremental
    assert _comparable(changed) == _comparable(full)
    assert {r.system for r in members if r in changed.deals} == {"hubspot", "salesforce"}
