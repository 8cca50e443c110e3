"""A dead letter whose write the plan no longer holds (the CRMs came to agree by a person's edit,
the deal was deleted, the config no longer asks for it) is settled by the reconcile whose
analysis compared its entity: gone from `crmsync dead-letters`, counted in the run. An
incremental reconcile that did not look at the entity proves nothing about it, and leaves the
letter alone. Through the CLI, against the sandboxes over HTTP, on both store dialects."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.test_dead_creates import _copied, _refused_copy
from tests.integration.test_dead_letters_released import (
    _cli,
    _hubspot_amount,
    _letters,
    _reconcile,
    _refused_in_hubspot,
    _reported_dead,
    _set_pipedrive_value,
)


def _last_run(world: World) -> dict[str, Any]:
    runs: list[dict[str, Any]] = json.loads(_cli(world, "runs", "--format", "json").stdout)
    return runs[0]


@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_a_dead_letter_the_crms_came_to_agree_on_is_settled_by_the_next_reconcile(
    one_try_world: World, mode: str
) -> None:
    """A dry run settles it too: it writes to no CRM, but records what it learned about them
    (links, agreed values), and the CRMs' agreement is such a fact."""
    world = one_try_world
    hubspot, amount = _refused_in_hubspot(world)  # HubSpot still refuses any write of it
    assert [(r["id"], r["field"]) for r in _letters(world)] == [(hubspot, "amount")]

    # A person types the amount into HubSpot's own screens: the CRMs agree, nothing to write.
    Editors(world, seed=1).set_value("hubspot", hubspot, "amount", Decimal(amount))
    _cli(world, "reconcile", mode, "--format", "json")  # exit 0: no dead change planned

    assert _letters(world, "--retrying") == []
    run = _last_run(world)
    kind = "reconcile-dry-run" if mode == "--dry-run" else "reconcile"
    assert (run["kind"], run["status"]) == (kind, "ok")
    assert run["counts"]["dead_letters_settled"] == 1
    assert _reported_dead(world) == []


def test_a_dead_letter_is_of_the_value_refused_and_another_value_of_its_field_is_sent(
    one_try_world: World,
) -> None:
    """A refusal is of a value (a validation rule on amounts above some limit, say): once
    the source holds another value, the letter no longer stands for the write the plan holds,
    and the new value is tried afresh, not held back until a person releases the old one."""
    world = one_try_world
    hubspot, amount = _refused_in_hubspot(world)
    pipedrive = next(m for m in world.members().values() if m.get("hubspot") == hubspot)
    world.sandbox.servers["hubspot"].faults.set(Faults())  # the new value passes the rule
    _set_pipedrive_value(world, pipedrive["pipedrive"], amount + 1)  # a person corrects it
    _reconcile(world)  # exit 0: nothing dead planned
    assert _hubspot_amount(world, hubspot) == amount + 1
    assert _letters(world, "--retrying") == []
    assert _last_run(world)["counts"]["dead_letters_settled"] == 1


def test_a_dead_letter_whose_value_the_plan_still_writes_stays_dead(one_try_world: World) -> None:
    world = one_try_world
    hubspot, _ = _refused_in_hubspot(world)
    world.sandbox.servers["hubspot"].faults.set(Faults())
    _reconcile(world, code=1)  # the same value: dead, not sent until released
    assert [(r["id"], r["field"], r["state"]) for r in _letters(world)] == [
        (hubspot, "amount", "dead")
    ]
    assert _last_run(world)["counts"].get("dead_letters_settled", 0) == 0


def test_the_dead_letter_of_a_deal_deleted_since_is_settled_by_the_next_reconcile(
    one_try_world: World,
) -> None:
    world = one_try_world
    hubspot, _ = _refused_in_hubspot(world)
    Editors(world, seed=1).delete("hubspot", hubspot)  # a person deletes the deal in HubSpot
    _reconcile(world)
    assert _letters(world, "--retrying") == []
    assert _last_run(world)["counts"]["dead_letters_settled"] == 1


def test_an_incremental_reconcile_leaves_the_letter_of_an_entity_it_did_not_look_at(
    one_try_world: World,
) -> None:
    """A letter an earlier run left on an entity settled since (the CRMs agree on it, nothing
    flags it): an incremental reconcile neither loads nor diffs the entity, so it cannot tell
    the letter is stale; a full one compares it, and settles it."""
    world = one_try_world
    _reconcile(world)  # the first sync
    _reconcile(world)  # what it left open is looked at again, and settled
    with open_runtime(str(world.config), connect=False) as rt:
        flagged = set(rt.store.pending())
        ids = next(
            m for m in world.members().values() if len(m) == 3 and not flagged & set(m.items())
        )
        rt.store.failures.record(
            "hubspot", ids["hubspot"], "amount", "left by an earlier run", max_attempts=1
        )
    letter = ("hubspot", ids["hubspot"], "amount")

    _reconcile(world)  # incremental: nothing changed
    assert _last_run(world)["counts"].get("dead_letters_settled", 0) == 0
    assert letter in {(r["system"], r["id"], r["field"]) for r in _letters(world)}

    _cli(world, "reconcile", "--yes", "--full", "--format", "json")
    assert letter not in {(r["system"], r["id"], r["field"]) for r in _letters(world)}
    assert _last_run(world)["counts"]["dead_letters_settled"] >= 1


def test_a_dead_copy_the_config_no_longer_asks_for_is_settled(one_try_world: World) -> None:
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    entity = _refused_copy(world)["entity"]
    _reconcile(world, code=1)
    assert [(r["system"], r["id"], r["field"]) for r in _letters(world)] == [
        ("pipedrive", entity, None)
    ]

    document["push"]["create_missing"] = False  # copies are no longer made
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    world.sandbox.servers["pipedrive"].faults.set(Faults())
    _reconcile(world)
    assert entity not in {r["id"] for r in _letters(world, "--retrying")}


def test_a_dead_copy_whose_source_was_corrected_since_is_tried_afresh(one_try_world: World) -> None:
    """A copy refused for what it held (a rule on amounts, say) is another copy once a person
    corrects its deal: the letter goes, and the corrected copy is sent; unchanged, it stays
    dead."""
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    create = _refused_copy(world)
    entity, source = create["entity"], create["source"]
    _reconcile(world, code=1)
    world.sandbox.servers["pipedrive"].faults.set(Faults())
    _reconcile(world, code=1)  # the same copy: dead, not sent
    assert not _copied(world, entity)

    amount = Decimal(create["values"]["amount"] or 0) + 1
    Editors(world, seed=1).set_value(source["system"], source["id"], "amount", amount)
    _reconcile(world)
    assert _copied(world, entity)
    assert entity not in {r["id"] for r in _letters(world, "--retrying")}
    assert _last_run(world)["counts"]["dead_letters_settled"] == 1


def _creates(world: World, target: str = "pipedrive") -> list[dict[str, Any]]:
    plan = json.loads(_cli(world, "reconcile", "--dry-run", "--format", "json").stdout)
    return [c for c in plan["creates"] if c["system"] == target]


def test_a_dead_copy_stays_dead_when_only_the_reason_for_its_values_changed(
    one_try_world: World,
) -> None:
    """A copy of an entity whose members disagree takes the values the policies decided
    (`decided`, beside its values); once crmsync has made the members agree, the same copy
    is planned without `decided`: the same content, so the same dead letter."""
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    planned = _creates(world)  # a dry run: the links it found are stored
    members = world.members()
    create = next(c for c in planned if len(members.get(c["entity"], {})) == 2)
    [other] = set(members[create["entity"]]) - {create["source"]["system"]}
    amount = Decimal(create["values"]["amount"] or 100) + 5
    Editors(world, seed=1).set_value(other, members[create["entity"]][other], "amount", amount)
    [create] = [c for c in _creates(world) if c["entity"] == create["entity"]]
    assert create.get("decided"), create  # the policies chose between the members' amounts
    entity = create["entity"]
    world.sandbox.servers["pipedrive"].faults.set(Faults(fail_ids=(entity,)))
    _reconcile(world, code=1)  # the members made to agree; the copy refused: dead
    [same] = [c for c in _creates(world) if c["entity"] == entity]
    assert "decided" not in same and same["values"] == create["values"]

    world.sandbox.servers["pipedrive"].faults.set(Faults())
    _reconcile(world, code=1)  # still the copy refused: not sent until released
    assert not _copied(world, entity)
    assert [r["state"] for r in _letters(world) if r["id"] == entity] == ["dead"]


def test_a_dead_copy_held_back_by_a_duplicate_of_its_deal_keeps_its_letter(
    one_try_world: World,
) -> None:
    """A copy is not planned while its deal has a same-key twin in its CRM (a duplicate is
    reported, never guessed): a hold, not the CRMs agreeing, so its letter stays."""
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["create_missing"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    create = _refused_copy(world)
    entity, source, values = create["entity"], create["source"], create["values"]
    _reconcile(world, code=1)
    assert [r["state"] for r in _letters(world) if r["id"] == entity] == ["dead"]

    close = date.fromisoformat(values["close_date"])
    Editors(world, seed=1)._create(source["system"], values["name"], values["owner_email"], close)
    assert entity not in {c["entity"] for c in _creates(world)}  # held: a duplicate
    assert [r["state"] for r in _letters(world) if r["id"] == entity] == ["dead"]
    assert _last_run(world)["counts"].get("dead_letters_settled", 0) == 0


def test_a_dead_copy_refused_for_its_organization_is_tried_afresh_once_its_account_is_corrected(
    one_try_world: World,
) -> None:
    """A Pipedrive copy goes to the organization of its account's name, made when none is: a
    name Pipedrive refuses to make an organization of refuses the copy. The account is part of
    what the copy is: once a person corrects it in Salesforce the letter goes, and the copy is
    made under the corrected name; uncorrected, it stays dead though the refusal is lifted."""
    world = one_try_world
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["pipedrive"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    create = next(
        c
        for c in _creates(world)
        if c["source"]["system"] == "salesforce" and c["organization"]["by"] == "account"
    )
    entity = create["entity"]
    salesforce = world.sandbox.servers["salesforce"].emulator
    with salesforce.lock:
        account = salesforce.store.by_id[create["source"]["id"]]["AccountId"]
        salesforce.store.rename_account(account, "Refused Holdings")
    world.sandbox.servers["pipedrive"].faults.set(Faults(fail_ids=("Refused Holdings",)))
    _reconcile(world, code=1)
    [letter] = [r for r in _letters(world) if r["id"] == entity]
    assert letter["reason"] == (
        "organization 'Refused Holdings' could not be made: Injected failure: organization rejected"
    )
    world.sandbox.servers["pipedrive"].faults.set(Faults())  # the refusal lifted
    _reconcile(world, code=1)  # the same copy, of the same account: dead, not sent
    assert not _copied(world, entity)
    assert _last_run(world)["counts"].get("dead_letters_settled", 0) == 0

    with salesforce.lock:  # a person corrects the account's name in Salesforce
        salesforce.store.rename_account(account, "Corrected Holdings")
    _reconcile(world)
    assert _copied(world, entity)
    pipedrive = world.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:
        copy = pipedrive.store.deals[int(world.members()[entity]["pipedrive"])]
    assert copy["org_id"]["name"] == "Corrected Holdings"
    assert entity not in {r["id"] for r in _letters(world, "--retrying")}
    assert _last_run(world)["counts"]["dead_letters_settled"] >= 1
