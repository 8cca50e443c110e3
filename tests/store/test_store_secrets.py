from __future__ import annotations

import pytest

from sync.store import AuditEntry, JournalEntry, JournalOp, SecretInPayload, Store

TOKEN = "pat-na1-0f3c9e2a-secret-value"


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "1", "credentials": {"user": "x"}},
        {"id": "1", "token": TOKEN},
        {"id": "1", "extra": {"HubSpot-Access-Token": TOKEN}},
        {"id": "1", "extra": {"notes": [{"api_key": TOKEN}]}},
        {"id": "1", "sessionId": TOKEN},
    ],
)
def test_deal_payload_naming_a_credential_is_refused_and_nothing_is_written(
    store: Store, payload: dict[str, object]
) -> None:
    rows = [("0", "fp", None, False, {"id": "0"}), ("1", "fp", None, False, payload)]
    with pytest.raises(SecretInPayload) as caught:
        store.save_deals("hubspot", rows, cursor="c1")
    assert "deal hubspot/1" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert store.deal_count("hubspot") == 0
    assert store.cursor("hubspot") is None


def test_ordinary_deal_keys_are_accepted(store: Store) -> None:
    payload = {"id": "1", "owner_email": "a@b.c", "external_ids": {"salesforce": "006"}}
    store.save_deals("hubspot", [("1", "fp", None, False, payload)])
    assert list(store.iter_deals("hubspot")) == [payload]


def test_every_json_column_is_guarded(store: Store) -> None:
    run_id = store.runs.start("nightly", "apply")
    with pytest.raises(SecretInPayload):
        store.runs.finish(run_id, "ok", calls={"hubspot": {"access_token": TOKEN}})
    with pytest.raises(SecretInPayload):
        store.save_bases({"e1": {"stage": "won", "password": TOKEN}})
    change = JournalEntry("c1", "hubspot", "1", JournalOp.UPDATE, "stage", "a", {"token": TOKEN})
    with pytest.raises(SecretInPayload):
        store.journal.intend(run_id, "plan", [change])
    ok = JournalEntry("c2", "hubspot", "1", JournalOp.UPDATE, "stage", "a", "b")
    store.journal.intend(run_id, "plan", [ok])
    with pytest.raises(SecretInPayload):
        store.journal.mark(run_id, [("c2", "done", {"headers": {"Authorization": TOKEN}})])
    with pytest.raises(SecretInPayload):
        store.audit.append([AuditEntry(run_id, "hubspot", "1", "x", None, {"secret": 1}, "r")])
    assert store.bases() == {}
    assert [r.entry.plan_change_id for r in store.journal.pending("plan")] == ["c2"]
    assert store.audit.entries() == []
