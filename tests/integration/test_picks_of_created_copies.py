"""A copy `push.create_missing` makes into an entity that already has a base, from a deal lacking
a value, holds whatever its CRM picks for it (Pipedrive: the API token's user as owner; HubSpot:
its stage's probability). That pick is no edit made there: the next run does not spread it over
the other CRMs. A person's later edit of that field in the copy is one, and spreads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml

from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.test_fresh_copies_have_a_base import _changes
from tests.integration.test_partial_targets import _reconcile


def _configure(world: World, **push: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(push)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _entity_lacking(world: World, system: str, holders: set[str]) -> tuple[str, dict[str, str]]:
    """An entity held by exactly `holders` (so a copy into `system` is made from the first of
    them by name), with its members."""
    for entity, ids in world.members().items():
        if set(ids) == holders and system not in ids:
            return entity, ids
    raise AssertionError(f"the generated world has no entity held by {sorted(holders)} alone")


def _copied_without(world: World, entity: str, system: str, field: str) -> str:
    """With create_missing on, a reconcile copies `entity` into `system` without a value of
    `field` (its source lacks one); the copy's id."""
    _configure(world, create_missing=True)
    copied = _reconcile(world, dry_run=False)
    create = next(c for c in copied.creates if c["entity"] == entity)
    assert create["system"] == system and create["values"][field] is None
    return world.members()[entity][system]


def test_an_owner_the_target_picked_for_a_copy_of_an_ownerless_deal_is_not_spread_as_an_edit(
    small_world: World,
) -> None:
    _reconcile(small_world, dry_run=False)  # converged: the HubSpot+Salesforce deal has a base
    entity, ids = _entity_lacking(small_world, "pipedrive", {"hubspot", "salesforce"})
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:  # someone clears the owner in HubSpot; Salesforce requires one
        hubspot.store.update(ids["hubspot"], {"hubspot_owner_id": ""})
    cleared = _reconcile(small_world, dry_run=False)
    assert not _changes(cleared, "owner_email"), "Salesforce cannot hold no owner: left out"

    copy = _copied_without(small_world, entity, "pipedrive", "owner_email")
    pipedrive: Any = small_world.sandbox.servers["pipedrive"].emulator
    assert pipedrive.store.deals[int(copy)]["user_id"], "Pipedrive gives every deal an owner"

    after = _reconcile(small_world, dry_run=True)
    owners = _changes(after, "owner_email")
    assert not {("hubspot", ids["hubspot"]), ("salesforce", ids["salesforce"])} & set(owners), (
        "Pipedrive's own pick of an owner spread as an edit made there"
    )
    assert ("pipedrive", copy) not in owners

    editors = Editors(small_world, seed=1)  # a person gives the copy an owner of their choice
    picked = str(pipedrive.store.deals[int(copy)]["user_id"]["id"])
    owner = next(o for o in sorted(editors.owners) if editors.owners[o]["pipedrive"] != picked)
    editors.set_value("pipedrive", copy, "owner_email", owner)
    edited = _changes(_reconcile(small_world, dry_run=True), "owner_email")
    assert edited.get(("hubspot", ids["hubspot"])) == owner, "the edit of the copy did not spread"


def test_a_probability_the_target_picked_for_a_copy_is_not_spread_as_an_edit(
    small_world: World,
) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["policies"]["fields"]["probability"] = {
        "priority": ["pipedrive", "salesforce", "hubspot"]
    }
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    _reconcile(small_world, dry_run=False)  # converged: the Pipedrive+Salesforce deal has a base
    entity, ids = _entity_lacking(small_world, "hubspot", {"pipedrive", "salesforce"})
    pipedrive: Any = small_world.sandbox.servers["pipedrive"].emulator
    with pipedrive.lock:  # someone clears the probability in Pipedrive; it spreads
        pipedrive.store.update(int(ids["pipedrive"]), {"probability": None})
    cleared = _changes(_reconcile(small_world, dry_run=False), "probability")
    assert cleared.get(("salesforce", ids["salesforce"]), "kept") is None

    copy = _copied_without(small_world, entity, "hubspot", "probability")
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    assert hubspot.store.live[copy]["properties"].get("hs_deal_stage_probability") is not None

    after = _changes(_reconcile(small_world, dry_run=True), "probability")
    assert not {("pipedrive", ids["pipedrive"]), ("salesforce", ids["salesforce"])} & set(after), (
        "HubSpot's stage probability spread as an edit made there"
    )
    assert ("hubspot", copy) not in after

    # A person moves the copy on, and HubSpot gives it the new stage's probability (the one
    # crmsync reads there): an edit made in HubSpot, which spreads.
    Editors(small_world, seed=1).set_value("hubspot", copy, "stage", "negotiation")
    moved = Decimal(hubspot.store.live[copy]["properties"]["hs_deal_stage_probability"])
    edited = _changes(_reconcile(small_world, dry_run=True), "probability")
    assert edited.get(("pipedrive", ids["pipedrive"])) == moved, edited
