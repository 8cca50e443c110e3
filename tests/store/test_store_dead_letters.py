"""Dead letters in the store (SQLite and PostgreSQL): listed with the value last tried from the
journal, released by instance or record, failures still retried left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from mapping.model import Ref
from mapping.salesforce_ids import case_safe_id
from sync.apply_creates import create_change_id
from sync.dead_letters import check_selection, dead_letters
from sync.errors import UsageError
from sync.store import JournalEntry, JournalOp, JournalState, Store


def _refused(store: Store, run: str, instance: str, deal_id: str, field: str, to: str) -> None:
    """An apply's write the CRM refused, journaled then counted (dead at once: max 1 attempt)."""
    change = f"{run}-{instance}-{deal_id}-{field}"
    entry = JournalEntry(change, instance, deal_id, JournalOp.UPDATE, field, "old", to)
    store.journal.intend(run, "plan-" + run, [entry])
    store.journal.mark(run, [(change, JournalState.FAILED, {"error": "FIELD_CUSTOM_VALIDATION"})])
    store.failures.record(instance, deal_id, field, "FIELD_CUSTOM_VALIDATION", max_attempts=1)


def test_dead_letters_show_the_value_last_tried_and_leave_retried_failures_out(
    store: Store,
) -> None:
    _refused(store, "run-1", "hubspot", "91", "amount", "100")
    _refused(store, "run-2", "hubspot", "91", "amount", "250")  # a later plan, another value
    _refused(store, "run-2", "hubspot", "91", "stage", "won")
    store.failures.record("hubspot", "92", "amount", "UNABLE_TO_LOCK_ROW", max_attempts=5)
    store.failures.record("pipedrive", "7", None, "refused", max_attempts=1)  # no journal row

    letters = dead_letters(store)
    assert [(d.failure.instance, d.failure.deal_id, d.failure.field, d.tried) for d in letters] == [
        ("hubspot", "91", "amount", "250"),
        ("hubspot", "91", "stage", "won"),
        ("pipedrive", "7", "", None),
    ]
    assert letters[0].failure.attempts == 2
    everything = dead_letters(store, instance="hubspot", retrying=True)
    assert [(d.failure.deal_id, d.failure.dead) for d in everything] == [
        ("91", True),
        ("91", True),
        ("92", False),
    ]


def test_release_forgets_the_dead_letters_selected_and_nothing_else(store: Store) -> None:
    _refused(store, "run-1", "hubspot", "91", "amount", "100")
    _refused(store, "run-1", "hubspot", "91", "stage", "won")
    _refused(store, "run-1", "hubspot", "93", "amount", "5")
    _refused(store, "run-1", "pipedrive", "7", "amount", "5")
    store.failures.record("hubspot", "92", "amount", "UNABLE_TO_LOCK_ROW", max_attempts=5)

    assert store.failures.release({"hubspot": {"91", "404"}}) == {"hubspot": 2}
    left = {(f.instance, f.deal_id, f.field) for f in store.failures.records()}
    assert left == {
        ("hubspot", "93", "amount"),
        ("pipedrive", "7", "amount"),
        ("hubspot", "92", "amount"),
    }
    everything = store.failures.release({"hubspot": None, "salesforce": None})
    assert everything == {"hubspot": 1, "salesforce": 0}
    assert [(f.deal_id, f.dead) for f in store.failures.records(instance="hubspot")] == [
        ("92", False)
    ]
    again = store.failures.record("hubspot", "91", "amount", "still refused", max_attempts=2)
    assert (again.attempts, again.dead) == (1, False)  # counted from the start


def test_a_selection_naming_no_dead_letter_is_refused(store: Store) -> None:
    _refused(store, "run-1", "hubspot", "91", "amount", "100")
    store.failures.record("hubspot", "92", "amount", "UNABLE_TO_LOCK_ROW", max_attempts=5)
    known = ("salesforce", "hubspot")
    check_selection(store, known, "hubspot", ["91"])
    check_selection(store, known, "salesforce", [])
    with pytest.raises(UsageError, match=r"^unknown instance 'zoho': the config names hubspot"):
        check_selection(store, known, "zoho", [])
    with pytest.raises(UsageError, match=r"^no dead letter for hubspot record 404, 92; "):
        check_selection(store, known, "hubspot", ["92", "91", "404"])
    assert len(store.failures.records()) == 2


def test_a_salesforce_id_as_its_screens_show_it_selects_its_dead_letter(store: Store) -> None:
    """15 characters, or 18 in another case: the letter under the API's id. A copy's letter is
    under its entity id, which a marker may make look like a Salesforce id: taken as given."""
    api = case_safe_id("006Ab00000XyZ12")
    _refused(store, "run-1", "salesforce", api, "amount", "100")
    store.failures.record("salesforce", "Ab00000XyZ12345", None, "refused", max_attempts=1)
    known = ("salesforce",)
    typed = ["006Ab00000XyZ12", api.swapcase(), "Ab00000XyZ12345"]
    assert check_selection(store, known, "salesforce", typed, kind="salesforce") == sorted(
        [api, "Ab00000XyZ12345"]
    )
    with pytest.raises(
        UsageError, match=r"^no dead letter for salesforce record 006Ab00000XyZ12; "
    ):
        check_selection(store, known, "salesforce", ["006Ab00000XyZ12"], kind="hubspot")


def test_many_dead_letters_each_show_their_own_value_last_tried(store: Store) -> None:
    ids = [str(1000 + n) for n in range(520)]  # more than one query's worth of ids
    entries = [
        JournalEntry(f"c{i}", "hubspot", i, JournalOp.UPDATE, "amount", "0", f"{i}.5") for i in ids
    ]
    store.journal.intend("run-1", "plan-1", entries)
    store.journal.mark("run-1", [(f"c{i}", JournalState.FAILED, {"error": "no"}) for i in ids])
    written = JournalEntry("x", "hubspot", "1", JournalOp.UPDATE, "amount", "0", "9")
    store.journal.intend("run-1", "plan-1", [written])
    store.journal.mark("run-1", [("x", JournalState.DONE, None)])  # no failure: not listed
    for i in ids:
        store.failures.record("hubspot", i, "amount", "no", max_attempts=1)
    letters = dead_letters(store)
    assert [(d.failure.deal_id, d.tried) for d in letters] == [(i, f"{i}.5") for i in ids]


def test_release_of_fields_forgets_only_their_dead_letters(store: Store) -> None:
    _refused(store, "run-1", "hubspot", "91", "amount", "100")
    _refused(store, "run-1", "hubspot", "91", "stage", "won")
    _refused(store, "run-1", "hubspot", "93", "amount", "5")
    _refused(store, "run-1", "hubspot", "93", "name", "Acme")

    assert store.failures.release({"hubspot": {"91"}}, fields=["amount"]) == {"hubspot": 1}
    assert store.failures.release({"hubspot": None}, fields=["name", "stage"]) == {"hubspot": 2}
    left = {(f.deal_id, f.field) for f in store.failures.records()}
    assert left == {("93", "amount")}
    known = ("hubspot",)
    check_selection(store, known, "hubspot", ["93"], ["amount", "name"])
    with pytest.raises(UsageError, match=r"^no dead letter for hubspot record 93 field name; "):
        check_selection(store, known, "hubspot", ["93"], ["name"])


def test_many_refused_copies_each_show_the_deal_they_copy(store: Store) -> None:
    entities = [f"E{n:04d}" for n in range(520)]  # more than one query's worth of ids
    creates = {create_change_id({"system": "hubspot", "entity": e}): e for e in entities}
    refused = [
        JournalEntry(cid, "hubspot", None, JournalOp.CREATE, None, None, _copy(e))
        for cid, e in creates.items()
    ]
    store.journal.intend("run-1", "plan-1", refused)
    store.journal.mark("run-1", [(cid, JournalState.FAILED, {"error": "no"}) for cid in creates])
    for e in entities:
        store.failures.record("hubspot", e, None, "no", max_attempts=1)
    store.failures.record("pipedrive", "E9999", None, "no", max_attempts=1)  # no journal row
    letters = dead_letters(store)
    assert [(d.failure.deal_id, d.tried, d.copy_of) for d in letters] == [
        *((e, None, Ref("salesforce", f"S{e}")) for e in entities),
        ("E9999", None, None),
    ]


def _copy(entity: str) -> dict[str, str]:
    """A create's journaled `after`: the deal it copies and its link marker."""
    return {"source": f"salesforce:S{entity}", "link_id": entity}


def test_settling_an_analysis_forgets_its_stale_failures_as_read_not_one_refused_again_since(
    store: Store,
) -> None:
    """A failure refused again after the analysis read it (its last try moved) is no longer the
    one found stale: it stays, as a pending flag set again since stays."""
    _refused(store, "run-1", "hubspot", "91", "amount", "100")
    _refused(store, "run-1", "hubspot", "92", "amount", "5")
    read = store.failures.records()
    store.failures.record("hubspot", "92", "amount", "FIELD_CUSTOM_VALIDATION", max_attempts=1)

    assert store.settle_pending({}, [], {"config_fingerprint": "f"}, read) == 1
    assert [(f.deal_id, f.attempts) for f in store.failures.records()] == [("92", 2)]
    assert store.reconcile_state() == {"config_fingerprint": "f"}


def test_the_last_refusals_are_read_from_the_journal_by_index(tmp_path: Path) -> None:
    """A reconcile reads the last refused value or copy of the letters it compared every night
    such letters stand: by index, never a scan of the journal, which grows with every write
    (SQLite's plan; PostgreSQL plans by its statistics)."""
    plans: list[str] = []
    with Store.open(f"sqlite:///{tmp_path / 'plans.db'}") as store:

        @event.listens_for(store.engine, "before_cursor_execute")
        def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "journal" in statement:
                found = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                plans.append(" / ".join(row[-1] for row in found))

        letter = store.failures.record("hubspot", "7", "amount", "refused", max_attempts=1)
        store.failures.last_tried([letter])
        store.failures.copies_tried({"hubspot": {"c1": "E1"}})
    assert len(plans) == 2
    for plan in plans:
        assert "SCAN journal" not in plan, plan
