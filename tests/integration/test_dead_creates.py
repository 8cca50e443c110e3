"""A copy the target CRM keeps refusing (`push.create_missing`) is a failed record like a refused
field change: counted in the dead-letter list, dead after `push.max_attempts` refusals, then not
sent again until `crmsync dead-letters retry` releases it. A copy that goes through clears its
failure; a copy left in doubt (its answer lost) was not refused and counts toward nothing.
Everything through the CLI, against the sandboxes over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from connectors.sandbox.faults import Faults
from sync.apply_creates import create_change_id
from sync.apply_run import guarded_apply
from sync.cli import main
from sync.runtime import open_runtime
from tests.fixtures_store import store_url_for
from tests.integration.conftest import World, build_world
from tests.integration.test_unconfirmed_creates import _apply, _cut_creates

TARGET = "pipedrive"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A small three-CRM sandbox, on each store dialect."""
    with store_url_for(request.param, tmp_path) as url:
        yield from build_world(tmp_path, url, deals=60, seed=3)


def _configure(world: World, max_attempts: int, **push: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, max_attempts=max_attempts, **push)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _cli(world: World, *args: str, code: int | None = 0) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    if code is not None:
        assert out.exit_code == code, (args, out.output, out.stderr)
    return out


def _reconcile(world: World) -> Result:
    """A nightly reconcile; exit 1 when some of its writes did not land (refused copies, owners
    the target lacks), which the tests read from the store and the CRMs instead."""
    out = _cli(world, "reconcile", "--yes", "--format", "json", code=None)
    assert out.exit_code in (0, 1), (out.output, out.stderr)
    return out


def _letters(world: World, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        _cli(world, "dead-letters", "--format", "json", *args).stdout
    )
    return rows


def _refused_copy(world: World, target: str = TARGET) -> dict[str, Any]:
    """A copy the first reconcile would create in the target, which the target now refuses
    (a validation rule, say) whenever it is sent."""
    out = _cli(world, "reconcile", "--dry-run", "--format", "json")
    plan = json.loads(out.stdout)
    create = next(c for c in plan["creates"] if c["system"] == target)
    world.sandbox.servers[target].faults.set(Faults(fail_ids=(create["entity"],)))
    return dict(create)


def _copied(world: World, entity: str) -> bool:
    return TARGET in world.members().get(entity, {})


def test_a_copy_refused_max_attempts_times_waits_for_its_release(
    any_store_world: World,
) -> None:
    world = any_store_world
    _configure(world, max_attempts=2)
    create = _refused_copy(world)
    entity, source = create["entity"], create["source"]

    _reconcile(world)
    [letter] = [r for r in _letters(world, "--retrying") if r["id"] == entity]
    assert (letter["system"], letter["field"]) == (TARGET, None)
    assert (letter["state"], letter["attempts"]) == ("retrying", 1)
    assert letter["reason"] == "Injected failure: deal rejected"  # the CRM's own words
    assert _letters(world) == []  # not dead yet

    _reconcile(world)
    [letter] = _letters(world)
    assert (letter["id"], letter["state"], letter["attempts"]) == (entity, "dead", 2)
    assert letter["copy_of"] == {"system": source["system"], "id": source["id"]}
    shown = _cli(world, "dead-letters").stdout
    assert f"copy of {source['system']} {source['id']}" in shown, shown

    world.sandbox.servers[TARGET].faults.set(Faults())  # the admin fixed the rule
    held = _reconcile(world)
    assert not _copied(world, entity)  # dead: not sent again, though it would go through now
    assert "dead-lettered, not sent again" in held.stderr, held.stderr
    [letter] = _letters(world)
    assert (letter["id"], letter["attempts"]) == (entity, 2)
    report = CliRunner().invoke(main, ["report", "--format", "json", "--config", str(world.config)])
    assert report.exit_code in (0, 3), report.output
    counted = json.loads(report.stdout)["cross_system"]["dead_letters"]
    assert [(d["system"], d["id"]) for d in counted] == [(TARGET, entity)]

    refused = _cli(
        world, "dead-letters", "retry", "--instance", TARGET, "--id", entity, "--field", "amount",
        code=2,
    )  # fmt: skip
    assert "no dead letter" in refused.output, refused.output
    out = _cli(world, "dead-letters", "retry", "--instance", TARGET, "--id", entity)
    assert out.stdout.startswith(f"{TARGET}: released 1 dead letter;"), out.stdout
    _reconcile(world)
    assert _copied(world, entity)
    assert [r for r in _letters(world, "--retrying") if r["id"] == entity] == []


def test_a_copy_that_goes_through_after_a_refusal_clears_its_failure(small_world: World) -> None:
    world = small_world
    _configure(world, max_attempts=3)
    entity = _refused_copy(world)["entity"]
    _reconcile(world)
    assert [(r["id"], r["attempts"]) for r in _letters(world, "--retrying")] == [(entity, 1)]

    world.sandbox.servers[TARGET].faults.set(Faults())
    _reconcile(world)
    assert _copied(world, entity)
    assert _letters(world, "--retrying") == []


def test_copies_left_in_doubt_count_toward_no_dead_letter(small_world: World) -> None:
    """Their answers cut: they may exist, so they were not refused, even with one try allowed."""
    world = small_world
    _configure(world, max_attempts=1, targets=["hubspot"])
    plan, _, _ = _cut_creates(world)
    copies = {c["entity"] for c in plan.creates if c["system"] == "hubspot"}
    assert not [r for r in _letters(world, "--retrying") if r["id"] in copies]
    out = _reconcile(world)  # the copies are still in doubt (HubSpot's search lags): held
    assert "dead-lettered" not in out.stderr, out.stderr
    assert not [r for r in _letters(world, "--retrying") if r["id"] in copies]


def test_refused_copies_made_by_a_cut_apply_clear_their_failures_once_settled(
    small_world: World,
) -> None:
    """Refused once; then sent again by an apply whose answers were cut (in doubt); the next
    night's apply, of another plan, finds them made: they went through, so no failures."""
    world = small_world
    _configure(world, max_attempts=3, targets=["hubspot"])
    out = _cli(world, "reconcile", "--dry-run", "--format", "json")
    entities = {c["entity"] for c in json.loads(out.stdout)["creates"]}
    hubspot = world.sandbox.servers["hubspot"].faults
    hubspot.set(Faults(fail_ids=tuple(sorted(entities))))
    _reconcile(world)
    assert {(r["id"], r["attempts"]) for r in _letters(world, "--retrying")} == {
        (e, 1) for e in entities
    }

    planned = world.reconcile("cut")
    # Copies under no company: with every answer cut, a company search before the creates
    # would fail, and the creates not be sent at all (not in doubt).
    unfiled = {"by": "none", "name": None, "id": None}
    plan = replace(
        planned.plan, creates=tuple({**c, "account": unfiled} for c in planned.plan.creates)
    )
    hubspot.set(Faults(drop=1.0))  # every answer cut: what was sent is in doubt
    try:
        with open_runtime(str(world.config), connector_options={"backoff_base": 0.01}) as rt:
            cut = guarded_apply(rt, plan, run_id="cut", yes=True, contexts=planned.contexts)
    finally:
        hubspot.set(Faults())
    assert {r.entity for r in cut.results if r.field is None} == entities
    assert all((r.reason or "").startswith("in doubt") for r in cut.results if r.field is None)
    assert {(r["id"], r["attempts"]) for r in _letters(world, "--retrying")} == {
        (e, 1) for e in entities
    }  # not refused: counted toward nothing

    _apply(world, world.reconcile("next").plan, "next", later=True)
    assert all("hubspot" in world.members().get(e, {}) for e in entities)
    assert _letters(world, "--retrying") == []


def test_a_copy_whose_owner_is_deactivated_before_its_apply_is_dead_after_max_attempts(
    any_store_world: World,
) -> None:
    """A saved plan's copy the target cannot map when it is applied (its owner deactivated in
    Salesforce since the plan) fails before any call, and counts like a copy the CRM refuses:
    it was retried on every apply, for good, and never became a dead letter."""
    world = any_store_world
    _configure(world, max_attempts=2, targets=["salesforce"])
    saved = world.config.parent / "plan.json"
    out = _cli(world, "reconcile", "--dry-run", "--plan-out", str(saved), "--format", "json")
    create = next(c for c in json.loads(out.stdout)["creates"] if c["system"] == "salesforce")
    entity, source, email = create["entity"], create["source"], create["values"]["owner_email"]
    salesforce = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:  # an admin deactivates the user who left
        [user] = [u for u in salesforce.store.tables["User"] if u["Email"].lower() == email]
        user["IsActive"] = False

    _cli(world, "apply", str(saved), "--yes", code=1)
    [letter] = [r for r in _letters(world, "--retrying") if r["id"] == entity]
    assert (letter["system"], letter["field"]) == ("salesforce", None)
    assert (letter["state"], letter["attempts"]) == ("retrying", 1)
    assert "deactivated" in letter["reason"] and email in letter["reason"], letter

    _cli(world, "apply", str(saved), "--yes", code=1)
    [letter] = [r for r in _letters(world) if r["id"] == entity]
    assert (letter["state"], letter["attempts"]) == ("dead", 2)
    assert letter["copy_of"] == {"system": source["system"], "id": source["id"]}

    with salesforce.lock:  # reactivated: the copy would map now, but it is dead
        user["IsActive"] = True
    held = _cli(world, "apply", str(saved), "--yes", "--format", "json", code=1)
    cid = create_change_id({"system": "salesforce", "entity": entity})
    [result] = [r for r in json.loads(held.stdout)["results"] if r["change_id"] == cid]
    assert result["outcome"] == "dead", result
    assert "salesforce" not in world.members().get(entity, {})
