"""Store.forget: what a retired instance leaves behind goes in one transaction; the entities
it shared stay with their other members, those it alone was in go with their bases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mapping.model import Ref
from sync.base_marks import LEFT_OUT
from sync.reconcile import base_to_json
from sync.schema import transaction
from sync.store import Link, LinkMethod, Store

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PD, SF = "pipedrive", "salesforce"


def _deal(deal_id: str) -> tuple[str, str, datetime, bool, dict[str, str]]:
    return (deal_id, f"fp-{deal_id}", AT, False, {"name": f"deal {deal_id}"})


def _stored(store: Store) -> None:
    """e1: a Salesforce and a Pipedrive deal; e2: a Pipedrive deal alone (its partner's link
    went, as a rolled-back copy's does); e3: Salesforce alone. Each with a base; e1's marks
    both its members."""
    store.save_deals(PD, [_deal("1"), _deal("2")], cursor="c-pd", flag=True)
    store.save_deals(SF, [_deal("006A"), _deal("006C")], cursor="c-sf")
    links = [
        Link("e1", SF, "006A", LinkMethod.EXTERNAL_ID),
        Link("e1", PD, "1", LinkMethod.EXTERNAL_ID),
        Link("e2", PD, "2", LinkMethod.CREATED),
        Link("e3", SF, "006C", LinkMethod.KEY),
    ]
    bases = {e: {"stage": "proposal"} for e in ("e1", "e2", "e3")}
    # each member kept its own stage when the others took the base's
    kept = {Ref(PD, "1"): "won", Ref(SF, "006A"): "lost"}
    bases["e1"] = base_to_json({"stage": "proposal", LEFT_OUT: {"stage": kept}})
    store.save_links_and_bases(links, bases)


def _state(store: Store) -> tuple[object, ...]:
    return (
        store.links(),
        store.bases(),
        store.deal_count(PD),
        store.deal_count(SF),
        store.cursor(PD),
        store.pending(),
        store.runs.recent(),
    )


def test_forgetting_an_instance_drops_the_entities_it_alone_was_in_with_their_bases(
    store: Store,
) -> None:
    _stored(store)

    run_id, held = store.forget(PD, "fingerprint")

    assert (held.deals, held.links, held.entities_kept, held.entities_dropped, held.bases) == (
        2, 2, 1, 1, 1,
    )  # fmt: skip
    assert (held.cursor, held.pending) == (1, 2)
    assert store.links() == {(SF, "006A"): "e1", (SF, "006C"): "e3"}
    assert store.bases().keys() == {"e1", "e3"}
    assert store.bases(["e1"])["e1"] == base_to_json(
        {"stage": "proposal", LEFT_OUT: {"stage": {Ref(SF, "006A"): "lost"}}}
    )  # a deal of another account given the name is no member that kept its stage
    assert (store.deal_count(PD), store.deal_count(SF)) == (0, 2)
    assert (store.cursor(PD), store.cursor(SF)) == (None, "c-sf")
    assert store.pending() == {}
    assert store.known_instances() == {SF}
    run = store.runs.get(run_id)
    assert run is not None and run.counts["instance"] == PD and run.counts["links"] == 2


def _refuse_entity_deletes(store: Store) -> None:
    """A database that fails the purge's last statements (as a full disk or a lost server
    would), after its deals and links were deleted within the transaction."""
    with transaction(store.engine) as conn:
        if store.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE DELETE ON entities "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
            return
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE DELETE ON entities FOR EACH ROW "
                "EXECUTE FUNCTION refuse()"
            )
        )


def test_a_forget_cut_short_leaves_the_store_as_it_was_and_records_no_run(store: Store) -> None:
    _stored(store)
    before = _state(store)
    _refuse_entity_deletes(store)

    with pytest.raises(DBAPIError, match="refused"):
        store.forget(PD, "fingerprint")

    assert _state(store) == before
