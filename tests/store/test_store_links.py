from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mapping.model import Ref
from sync import schema as t
from sync.diff import LEFT_OUT
from sync.link_review import apart, join, split
from sync.reconcile import base_from_json, base_to_json
from sync.schema import transaction
from sync.store import Link, LinkMethod, SecretInPayload, Store
from sync.store_records import AuditEntry
from sync.unmapped_stage import UnmappedStage

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SF, HS = "salesforce", "hubspot"
NEEDS_ANALYSIS = UnmappedStage("default", "Needs Analysis")


def test_links_round_trip_and_resolve_by_deal(store: Store) -> None:
    saved = store.save_links(
        [
            Link("e1", "salesforce", "006A", LinkMethod.EXTERNAL_ID, None, AT, True),
            Link("e1", "hubspot", "101", LinkMethod.FUZZY, 0.93, AT, False),
            Link("e2", "pipedrive", "7", LinkMethod.CREATED),
        ]
    )
    assert saved == 3
    assert store.links() == {
        ("salesforce", "006A"): "e1",
        ("hubspot", "101"): "e1",
        ("pipedrive", "7"): "e2",
    }
    e1 = store.link_records(["e1"])
    assert e1 == [
        Link("e1", "hubspot", "101", LinkMethod.FUZZY, 0.93, AT, False),
        Link("e1", "salesforce", "006A", LinkMethod.EXTERNAL_ID, None, AT, True),
    ]
    (created,) = store.link_records(["e2"])
    assert created.matched_at is not None and created.matched_at.tzinfo == UTC


def test_a_deal_has_one_link_and_relinking_replaces_it(store: Store) -> None:
    store.save_links([Link("e1", "hubspot", "101", LinkMethod.KEY)])
    store.save_links([Link("e9", "hubspot", "101", LinkMethod.MANUAL, confirmed=True)])
    assert store.links() == {("hubspot", "101"): "e9"}
    (link,) = store.link_records()
    assert (link.method, link.confirmed) == (LinkMethod.MANUAL, True)
    assert store.unlink("hubspot", "101") is True
    assert store.unlink("hubspot", "101") is False
    assert store.links() == {}


def test_bases_round_trip_and_replace(store: Store) -> None:
    store.save_links([Link("e1", "hubspot", "101", LinkMethod.KEY)])
    saved = store.save_bases({"e1": {"stage": "proposal"}, "e2": {"stage": "won", "amount": "5"}})
    assert saved == 2
    assert store.bases() == {"e1": {"stage": "proposal"}, "e2": {"stage": "won", "amount": "5"}}
    assert store.save_bases({"e1": {"stage": "negotiation"}}) == 1
    assert store.bases() == {"e1": {"stage": "negotiation"}, "e2": {"stage": "won", "amount": "5"}}
    assert store.bases(["e2", "e404"]) == {"e2": {"stage": "won", "amount": "5"}}
    assert store.bases([]) == {}


def test_a_base_marking_an_unmapped_native_stage_round_trips(store: Store) -> None:
    """The mark sits in the base's JSON payload (no column of its own): a base stored before
    such marks, and one with them, read back alike on SQLite and PostgreSQL."""
    marked = {"stage": "proposal", LEFT_OUT: {"stage": {Ref(SF, "006A"): NEEDS_ANALYSIS}}}
    store.save_bases({"e1": base_to_json(marked), "e2": {"stage": "proposal"}})
    stored = store.bases()
    assert base_from_json(stored["e1"], "e1") == marked
    assert base_from_json(stored["e2"], "e2") == {"stage": "proposal"}


def test_links_and_bases_saved_together_create_each_entity_once(store: Store) -> None:
    store.save_links([Link("e1", HS, "101", LinkMethod.KEY, matched_at=AT)])
    with transaction(store.engine, write=False) as conn:
        (first,) = conn.execute(select(t.entities.c.created_at)).scalars()
    links = [Link("e1", SF, "006A", LinkMethod.EXTERNAL_ID), Link("e2", SF, "006B", LinkMethod.KEY)]
    bases = {"e1": {"stage": "won"}, "e3": {"stage": "lost"}}
    assert store.save_links_and_bases(links, bases) == 2
    assert store.links() == {(HS, "101"): "e1", (SF, "006A"): "e1", (SF, "006B"): "e2"}
    assert store.bases() == bases
    with transaction(store.engine, write=False) as conn:
        query = select(t.entities.c.id, t.entities.c.created_at).order_by(t.entities.c.id)
        entities = {row.id: row.created_at for row in conn.execute(query)}
    assert sorted(entities) == ["e1", "e2", "e3"] and entities["e1"] == first


def test_a_secret_in_a_base_saves_none_of_the_links_given_with_it(store: Store) -> None:
    links = [Link("e1", SF, "006A", LinkMethod.KEY)]
    with pytest.raises(SecretInPayload):
        store.save_links_and_bases(links, {"e1": {"stage": "won", "api_token": "x"}})
    assert store.links() == {} and store.bases() == {}


def test_every_way_the_matcher_links_a_deal_can_be_stored(store: Store) -> None:
    # The matcher and the store share one LinkMethod; a method the store could not hold
    # (it once lacked link_id) would fail the run after matching.
    links = [Link(f"E{i}", "hubspot", str(i), method) for i, method in enumerate(LinkMethod)]
    assert store.save_links(links) == len(links)
    stored = {(r.deal_id, r.method) for r in store.link_records()}
    assert stored == {(str(i), method) for i, method in enumerate(LinkMethod)}


def test_a_split_keeps_a_copy_with_its_source_when_the_copy_is_linked_by_its_marker(
    store: Store,
) -> None:
    """A copy is linked by its marker, not as created, when a run saw it before the apply that
    sent it recorded it (a create left in doubt); the create's audit still names its source."""
    entity = "E1"
    for system, deal_id, marker in (
        ("salesforce", "006A", None),
        ("hubspot", "1", None),
        ("pipedrive", "5", entity),
    ):
        payload = {"system": system, "id": deal_id, "name": "Renewal", "link_id": marker}
        store.save_deals(system, [(deal_id, "v1", AT, False, payload)])
    store.save_links(
        [
            Link(entity, "salesforce", "006A", LinkMethod.KEY),
            Link(entity, "hubspot", "1", LinkMethod.KEY),
            Link(entity, "pipedrive", "5", LinkMethod.LINK_ID, confirmed=True),
        ]
    )
    after = {"source": "hubspot:1", "link_id": entity}
    store.audit.append([AuditEntry("r1", "pipedrive", "5", None, None, after, "created")])
    done = split(store, [entity])
    source, copy = Ref("hubspot", "1"), Ref("pipedrive", "5")
    assert done[entity].kept == (source, copy)
    assert store.links() == {("hubspot", "1"): entity, ("pipedrive", "5"): entity}
    assert apart(store) == {
        frozenset((Ref("salesforce", "006A"), source)),
        frozenset((Ref("salesforce", "006A"), copy)),
    }


def test_splits_and_joins_are_stamped_by_the_store_clock(store_url: str) -> None:
    """Every row a store writes carries its clock's time (a test's or a replay's clock too)."""
    clock = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    with Store.open(store_url, clock=lambda: clock) as store:
        for system, deal_id in (("salesforce", "006A"), ("hubspot", "1")):
            payload = {"system": system, "id": deal_id, "name": "Renewal"}
            store.save_deals(system, [(deal_id, "v1", AT, False, payload)])
        entity = join(store, [Ref("salesforce", "006A"), Ref("hubspot", "1")], {SF, HS}, "c")
        assert {r.matched_at for r in store.link_records()} == {clock}
        split(store, [entity])
        with store.engine.connect() as conn:
            stamps = set(conn.scalars(select(t.split_pairs.c.split_at)))
        assert stamps == {clock}
