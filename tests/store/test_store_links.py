from __future__ import annotations

from datetime import UTC, datetime

from sync.store import Link, LinkMethod, Store

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


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
    assert store.save_bases({"e1": {"stage": "proposal"}, "e2": {"stage": "won", "amount": "5"}})
    store.save_bases({"e1": {"stage": "negotiation"}})
    assert store.bases() == {"e1": {"stage": "negotiation"}, "e2": {"stage": "won", "amount": "5"}}
    assert store.bases(["e2", "e404"]) == {"e2": {"stage": "won", "amount": "5"}}
    assert store.bases([]) == {}


def test_every_way_the_matcher_links_a_deal_can_be_stored(store: Store) -> None:
    # The matcher and the store share one LinkMethod; a method the store could not hold
    # (it once lacked link_id) would fail the run after matching.
    links = [Link(f"E{i}", "hubspot", str(i), method) for i, method in enumerate(LinkMethod)]
    assert store.save_links(links) == len(links)
    stored = {(r.deal_id, r.method) for r in store.link_records()}
    assert stored == {(str(i), method) for i, method in enumerate(LinkMethod)}
