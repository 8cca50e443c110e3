"""Every field crmsync compares or writes round-trips through every CRM's real connector: what a
person sets in one CRM is read by the next pull and spread; what crmsync writes into the others
is read back by the next pull as written, so the next run plans nothing for it. A field written
to one native field and read from another (HubSpot's probability once was) fails here.

The copies `push.create_missing` makes carry the link marker and the ids of their entity's
deals, and the next pull reads them back: the copies stay linked and nothing is created again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml

from mapping.codec import deal_from_json
from mapping.model import Deal
from sync.plan import Plan
from sync.runtime import open_runtime
from tests.integration.conftest import World, build_world
from tests.integration.crm_users import CURRENCIES, OPEN_STAGES, SYSTEMS, Editors
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _reconcile

FIELDS = ("name", "stage", "status", "amount", "currency", "close_date", "owner_email")
FIELDS += ("probability",)
# Fields that are written, and so read back, together.
TOGETHER = {"stage": ("stage", "status"), "status": ("status", "stage")}
TOGETHER |= {"amount": ("amount", "currency"), "currency": ("currency", "amount")}


@dataclass
class Synced:
    world: World
    entities: list[dict[str, str]]  # open in all three CRMs when the world first agreed


def _stored(world: World, system: str, deal_id: str) -> Deal:
    with open_runtime(str(world.config), connect=False) as rt:
        return deal_from_json(rt.store.get_deals(system, [deal_id])[deal_id])


def _canonical(deal: Deal, field: str) -> Any:
    if field == "amount":
        return deal.value.amount if deal.value else None
    if field == "currency":
        return deal.value.currency if deal.value else None
    value = getattr(deal, field)
    return getattr(value, "value", value)  # a status by its name


def converged(tmp_path_factory: pytest.TempPathFactory, name: str, deals: int) -> Iterator[World]:
    """A small three-CRM world (SQLite store) whose CRMs agree: one reconcile applied."""
    tmp = tmp_path_factory.mktemp(name)
    with closing(
        build_world(tmp, f"sqlite:///{tmp / 'crmsync.db'}", deals=deals, seed=3)
    ) as worlds:
        world = next(worlds)
        _reconcile(world, dry_run=False)
        yield world


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """A small three-CRM world all of whose CRMs agree, and its open three-CRM entities."""
    for world in converged(tmp_path_factory, "round-trip", deals=60):
        entities = []
        for ids in world.members().values():
            deals = [_stored(world, s, ids[s]) for s in SYSTEMS if s in ids]
            if len(deals) == len(SYSTEMS) and all(d.status.value == "open" for d in deals):
                entities.append(ids)
        assert len(entities) >= len(FIELDS) + 2 * len(SYSTEMS), "too few open three-CRM entities"
        yield Synced(world, entities)


def _entity(synced: Synced, field: str, system: str) -> dict[str, str]:
    """Its own entity per field; closing a deal (status) takes one per editing CRM."""
    if field == "status":
        return synced.entities[len(FIELDS) + SYSTEMS.index(system)]
    return synced.entities[FIELDS.index(field)]


def _new_value(editors: Editors, field: str, system: str, held: Deal) -> Any:
    """A value of `field` no CRM holds yet: it differs from what the entity agreed on."""
    turn = SYSTEMS.index(system) + 1
    current = _canonical(held, field)
    if field == "name":
        return f"{held.name.split(' @')[0]} @{system}"
    if field == "stage":
        return next(s for s in OPEN_STAGES[1:] if s != current)
    if field == "status":
        return "lost"
    if field == "amount":
        return Decimal("12345.67") * turn
    if field == "currency":
        return next(c for c in CURRENCIES if c != current)
    if field == "close_date":
        return date(2031, 1, 1) + timedelta(days=31 * turn)
    if field == "owner_email":
        return next(e for e in sorted(editors.owners) if e != current)
    return Decimal("0.33") + Decimal(turn) / 100  # probability


def _planned_for(plan: Plan, ids: dict[str, str], fields: tuple[str, ...]) -> list[str]:
    """The plan's changes and conflicts of `fields` in the deals `ids`."""
    refs = set(ids.items())
    writes = [
        f"{c.system} {c.field} -> {c.to_value}"
        for c in plan.changes
        if (c.system, c.id) in refs and c.field in fields
    ]
    conflicts = [
        f"conflict {c.field}: {c.values}"
        for c in plan.conflicts
        if c.field in fields and any((s, i) in refs for s, i, _ in c.values)
    ]
    return writes + conflicts


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("field", FIELDS)
def test_a_field_edited_in_one_crm_is_spread_read_back_and_settles(
    synced: Synced, field: str, system: str
) -> None:
    world = synced.world
    ids = _entity(synced, field, system)
    editors = Editors(world, seed=SYSTEMS.index(system))
    value = _new_value(editors, field, system, _stored(world, system, ids[system]))
    # A person's edit in `system`; a status is set by the stage (Pipedrive: its own field).
    editors.set_value(system, ids[system], "stage" if field == "status" else field, value)

    applied = _reconcile(world, dry_run=False)
    spread = _changes(applied, field)
    wanted = {(other, ids[other]): value for other in SYSTEMS if other != system}
    got = {ref: getattr(spread.get(ref), "value", spread.get(ref)) for ref in wanted}
    assert got == wanted, f"{system}'s own edit of {field} was not read as made"

    after = _reconcile(world, dry_run=True)
    read_back = {s: _canonical(_stored(world, s, i), field) for s, i in ids.items()}
    assert read_back == dict.fromkeys(SYSTEMS, value), f"{field} written is read back otherwise"
    planned = _planned_for(after, ids, TOGETHER.get(field, (field,)))
    assert not planned, "what crmsync wrote looked changed on the next pull"


def test_copies_carry_their_links_which_the_next_pull_reads_back(small_world: World) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    made = _reconcile(small_world, dry_run=False)
    assert {c["system"] for c in made.creates} == set(SYSTEMS), "a CRM got no copy to check"
    copies = {(c["entity"], c["system"]): small_world.members()[c["entity"]] for c in made.creates}

    after = _reconcile(small_world, dry_run=True)  # pulls the copies
    assert not after.creates, "a copy made was not found by the next pull"
    members = small_world.members()
    for create in made.creates:
        entity, source = create["entity"], create["source"]
        made_id = copies[entity, create["system"]][create["system"]]
        assert members[entity][create["system"]] == made_id, "the copy lost its entity"
        copy = _stored(small_world, create["system"], made_id)
        assert copy.link_id == entity, f"{copy.ref}: link marker not read back"
        assert copy.external_ids.get(source["system"]) == source["id"], copy.ref
        assert not _planned_for(after, members[entity], FIELDS), entity


@pytest.mark.parametrize("system", ["salesforce", "pipedrive"])
def test_a_probability_cleared_elsewhere_is_not_put_back_from_a_hubspot_stage(
    synced: Synced, system: str
) -> None:
    """A HubSpot deal without a forecast reads its stage's probability: clearing the forecast
    there cannot be read back as cleared, so it is reported instead of written, and the next
    run does not take the stage's probability for an edit made in HubSpot."""
    world = synced.world
    ids = synced.entities[len(FIELDS) + len(SYSTEMS) + SYSTEMS.index(system)]
    Editors(world, seed=0).set_value(system, ids[system], "probability", None)

    applied = _reconcile(world, dry_run=False)
    after = _reconcile(world, dry_run=True)
    assert not _planned_for(after, ids, ("probability",)), "the cleared probability came back"

    other = next(s for s in SYSTEMS if s not in (system, "hubspot"))
    assert _changes(applied, "probability") == {(other, ids[other]): None}
    reported = {(e["system"], e["field"]) for e in after.errors if e["id"] in ids.values()}
    assert ("hubspot", "probability") in reported
    assert _stored(world, system, ids[system]).probability is None
    assert _stored(world, other, ids[other]).probability is None
