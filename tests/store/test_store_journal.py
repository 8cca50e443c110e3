from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from sync.store import (
    AuditEntry,
    JournalEntry,
    JournalOp,
    JournalState,
    Link,
    LinkMethod,
    Store,
)


def _change(
    cid: str, deal_id: str | None = "101", op: JournalOp = JournalOp.UPDATE
) -> JournalEntry:
    field = None if op is JournalOp.CREATE else "stage"
    before = None if op is JournalOp.CREATE else "proposal"
    after = {"name": "New", "stage": "lead"} if op is JournalOp.CREATE else "won"
    return JournalEntry(cid, "hubspot", deal_id, op, field, before, after)


def test_interrupted_apply_resumes_only_what_is_not_done(store: Store) -> None:
    plan = "plan-1"
    changes = [_change("c1"), _change("c2", "102"), _change("c3", None, JournalOp.CREATE)]
    assert store.journal.intend("run-1", plan, changes) == [1, 2, 3]
    assert [r.entry for r in store.journal.pending(plan)] == changes
    assert {r.state for r in store.journal.pending(plan)} == {JournalState.INTENDED}

    marked = store.journal.mark(
        "run-1",
        [
            ("c1", JournalState.DONE, {"id": "101", "status": 200}),
            ("c2", JournalState.FAILED, {"id": "102", "error": "VALIDATION_ERROR"}),
        ],
    )
    assert marked == 2
    assert store.journal.done_ids(plan) == {"c1"}
    assert [(r.entry.plan_change_id, r.state) for r in store.journal.pending(plan)] == [
        ("c2", JournalState.FAILED),
        ("c3", JournalState.INTENDED),
    ]

    assert store.journal.intend("run-2", plan, [changes[1], changes[2]]) == [1, 2]
    pending = store.journal.pending(plan)
    assert [(r.run_id, r.entry.plan_change_id, r.attempt) for r in pending] == [
        ("run-2", "c2", 2),
        ("run-2", "c3", 2),
    ]
    store.journal.mark("run-2", [("c2", "done", None), ("c3", "skipped", {"reason": "gone"})])
    assert store.journal.pending(plan) == []
    assert store.journal.done_ids(plan) == {"c1", "c2"}
    assert store.journal.done_ids("other-plan") == set()


def test_other_plans_field_writes_in_doubt_are_found_until_a_later_attempt_settles_them(
    store: Store,
) -> None:
    store.journal.intend("run-1", "plan-a", [_change("a1"), _change("a2", "102")])
    store.journal.intend("run-1", "plan-a", [_change("a3", None, JournalOp.CREATE)])
    store.journal.mark("run-1", [("a1", JournalState.SENT, {"error": "503"})])
    store.journal.intend("run-2", "plan-b", [_change("b1", "103"), _change("b2", "104")])
    store.journal.mark("run-2", [("b2", JournalState.FAILED, {"error": "refused"})])
    doubt = store.journal.in_doubt_elsewhere("plan-c")
    assert [(r.run_id, r.entry.plan_change_id, r.state) for r in doubt] == [
        ("run-1", "a1", JournalState.SENT),
        ("run-1", "a2", JournalState.INTENDED),
        ("run-1", "a3", JournalState.INTENDED),
        ("run-2", "b1", JournalState.INTENDED),  # b2 failed: not in doubt
    ]
    assert [r.entry.plan_change_id for r in store.journal.in_doubt_elsewhere("plan-a")] == ["b1"]
    # a later attempt of the same plan change decides it
    store.journal.intend("run-3", "plan-a", [_change("a2", "102")])
    store.journal.mark("run-3", [("a2", JournalState.DONE, None)])
    store.journal.mark(
        "run-1",
        [("a1", JournalState.SKIPPED, {"not_written": True}), ("a3", JournalState.DONE, None)],
    )
    assert [r.entry.plan_change_id for r in store.journal.in_doubt_elsewhere("plan-c")] == ["b1"]


def test_other_plans_deletes_in_doubt_are_found_with_their_writes_and_creates(
    store: Store,
) -> None:
    delete = JournalEntry("d1", "pipedrive", "7", JournalOp.DELETE, None, {"name": "A"}, None)
    store.journal.intend("run-1", "plan-a", [delete, _change("a1")])
    store.journal.mark_in_doubt("run-1", ["d1", "a1"], "503")
    doubt = store.journal.in_doubt_elsewhere("plan-b")
    assert [(r.entry.plan_change_id, r.entry.op) for r in doubt] == [
        ("d1", JournalOp.DELETE),
        ("a1", JournalOp.UPDATE),
    ]
    store.journal.mark("run-1", [("d1", JournalState.SKIPPED, {"not_deleted": True})])
    assert [r.entry.plan_change_id for r in store.journal.in_doubt_elsewhere("plan-b")] == ["a1"]
    assert store.journal.deletes_in_doubt() == {}


def test_run_entries_come_back_in_order_with_results(store: Store) -> None:
    store.journal.intend("run-1", "p", [_change("a"), _change("b", "102")])
    store.journal.intend("run-1", "p", [_change("c", "103")])
    store.journal.mark("run-1", [("b", JournalState.DONE, {"ok": True}), ("c", "done", None)])
    done = store.journal.entries("run-1", states=[JournalState.DONE])
    assert [(r.seq, r.entry.plan_change_id, r.result) for r in done] == [
        (2, "b", {"ok": True}),
        (3, "c", None),
    ]
    every = store.journal.entries("run-1")
    assert [r.seq for r in every] == [1, 2, 3]
    assert every[0].entry == _change("a") and every[0].updated_at.tzinfo == UTC


def test_audit_is_appended_and_read_back_oldest_first(store: Store) -> None:
    at = datetime(2026, 5, 5, 5, 5, tzinfo=UTC)
    store.audit.append(
        [
            AuditEntry(
                "run-1", "hubspot", "101", "stage", "proposal", "won", "salesforce wins", at
            ),
            AuditEntry("run-1", "pipedrive", "7", "amount", "10", "12.5", "changed in hubspot"),
            AuditEntry("run-2", "hubspot", "101", "stage", "won", "proposal", "rollback\nof run-1"),
        ]
    )
    first = store.audit.entries(run_id="run-1")
    assert [(e.instance, e.field, e.before, e.after) for e in first] == [
        ("hubspot", "stage", "proposal", "won"),
        ("pipedrive", "amount", "10", "12.5"),
    ]
    assert first[0].at == at and first[1].at is not None
    history = store.audit.entries(instance="hubspot", deal_id="101")
    assert [e.reason for e in history] == ["salesforce wins", "rollback of run-1"]
    assert len(store.audit.entries(limit=1)) == 1


def test_failures_count_attempts_and_die_at_the_limit(store: Store) -> None:
    first = store.failures.record("hubspot", "101", "amount", "429", max_attempts=3)
    assert (first.attempts, first.dead) == (1, False)
    store.failures.record("hubspot", "101", "amount", "500", max_attempts=3)
    third = store.failures.record(
        "hubspot", "101", "amount", "bad value\nsecond line", max_attempts=3
    )
    assert (third.attempts, third.dead, third.reason) == (3, True, "bad value second line")
    assert third.first_seen <= third.last_seen
    store.failures.record("pipedrive", "7", None, "record gone", max_attempts=3)
    assert [f.deal_id for f in store.failures.records(dead=True)] == ["101"]
    assert [f.field for f in store.failures.records(instance="pipedrive")] == [""]
    assert store.failures.clear("hubspot", "101", "amount") is True
    assert store.failures.clear("hubspot", "101", "amount") is False
    assert [f.instance for f in store.failures.records()] == ["pipedrive"]


def test_a_write_recorded_done_has_its_audit_entry_or_neither_is_stored(store: Store) -> None:
    """One transaction: a process killed (or failing) between the two left a write done in the
    journal, so never in doubt, and missing from the audit, so out of `rollback`'s reach."""
    store.journal.intend("run-1", "plan-1", [_change("c1"), _change("c2", "102")])
    entry = AuditEntry("run-1", "hubspot", "101", "stage", "proposal", "won", "newest")
    store.journal.mark("run-1", [("c1", JournalState.DONE, {"id": "101"})], audit=[entry])
    assert store.journal.done_ids("plan-1") == {"c1"}
    assert [(e.deal_id, e.after) for e in store.audit.entries(run_id="run-1")] == [("101", "won")]

    broken = AuditEntry("run-1", None, "102", "stage", "proposal", "won", "")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        store.journal.mark("run-1", [("c2", JournalState.DONE, {"id": "102"})], audit=[broken])
    assert store.journal.done_ids("plan-1") == {"c1"}  # c2 still in doubt
    assert len(store.audit.entries(run_id="run-1")) == 1


def test_a_create_recorded_done_has_its_link_and_audit_entry_or_none_is_stored(
    store: Store,
) -> None:
    """One transaction: a process killed between the mark and the link left a copy recorded
    as created (never in doubt, never looked for again) with no link to its entity."""
    creates = [_change("c1", None, JournalOp.CREATE), _change("c2", None, JournalOp.CREATE)]
    store.journal.intend("run-1", "plan-1", creates)
    link = Link("E1", "hubspot", "201", LinkMethod.CREATED, confirmed=True)
    entry = AuditEntry("run-1", "hubspot", "201", None, None, {"created": True}, "create")
    store.journal.mark("run-1", [("c1", JournalState.DONE, {"id": "201"})], [entry], [link])
    assert store.journal.done_ids("plan-1") == {"c1"}
    assert [(k.entity_id, k.deal_id) for k in store.link_records(["E1"])] == [("E1", "201")]
    assert [e.deal_id for e in store.audit.entries(run_id="run-1")] == ["201"]

    broken = Link("E2", None, "202", LinkMethod.CREATED, confirmed=True)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        store.journal.mark("run-1", [("c2", JournalState.DONE, {"id": "202"})], [], [broken])
    assert store.journal.done_ids("plan-1") == {"c1"}  # c2 still in doubt: looked for again
    assert store.link_records(["E2"]) == []


def test_in_doubt_changes_of_several_runs_are_settled_in_one_transaction(store: Store) -> None:
    store.journal.intend("run-1", "plan-1", [_change("c1")])
    store.journal.intend("run-2", "plan-2", [_change("c2", "102")])
    entry = AuditEntry("run-1", "hubspot", "101", "stage", "proposal", "won", "settled")
    store.journal.mark_runs(
        {
            "run-1": [("c1", JournalState.DONE, {"settled_by": "run-3"})],
            "run-2": [("c2", JournalState.SKIPPED, {"settled_by": "run-3"})],
        },
        audit=[entry],
    )
    assert store.journal.done_ids("plan-1") == {"c1"}
    assert store.journal.pending("plan-2") == []  # skipped is settled
    assert [e.run_id for e in store.audit.entries(run_id="run-1")] == ["run-1"]
