"""A record another transaction holds is a passing refusal, not the record's fault.

Salesforce answers a write of a record (or of one whose parent Account) another save, flow or
bulk load has locked with UNABLE_TO_LOCK_ROW in that record's SaveResult, inside a 200 answer
whose other records were written; the same write goes through once the lock is released
(Salesforce's "Record Locking Cheat Sheet": locks wait up to 10 seconds, then this error, and a
retry is the remedy). Sandbox fault `locked_ids` locks records for their first
`locked_writes` writes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import NativeCreate, NativeUpdate
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from tests.connectors import contract

COLLECTION = "{} /services/data/{{version}}/composite/sobjects"
NEW = {"Name": "Copy", "StageName": "Proposal", "CloseDate": "2025-03-01", "Amount": 10}


def _ids(connector: SalesforceConnector, count: int) -> list[str]:
    return [d["Id"] for _, d in zip(range(count), connector.deals(), strict=False)]


def _lock(sandbox: Sandbox, keys: list[str], writes: int = 1) -> None:
    faults = Faults(locked_ids=tuple(keys), locked_writes=writes, rate_limit=10_000)
    contract.set_faults(sandbox, "salesforce", faults)
    contract.clear_stats(sandbox, "salesforce")


@pytest.fixture
def connector(make_connector: Callable[..., SalesforceConnector]) -> SalesforceConnector:
    return make_connector(options={"backoff_base": 0.01, "lock_wait": 0.01})


def test_a_locked_record_of_an_update_batch_is_sent_again_alone_and_written(
    connector: SalesforceConnector, sandbox: Sandbox
) -> None:
    ids = _ids(connector, 250)
    _lock(sandbox, [ids[5], ids[230]])
    results = connector.update_deals([NativeUpdate(i, {"Amount": 4321}) for i in ids])
    assert [r.ok for r in results] == [True] * 250
    assert {d["Amount"] for d in connector.read_deals([ids[5], ids[230]])} == {4321}
    # two batches of 200 and 50, each followed by one call holding only its locked record
    assert contract.stats(sandbox, "salesforce")[COLLECTION.format("PATCH")] == 4


def test_a_record_still_locked_after_the_retries_fails_alone_with_salesforces_code(
    connector: SalesforceConnector, sandbox: Sandbox
) -> None:
    ids = _ids(connector, 3)
    _lock(sandbox, [ids[1]], writes=100)
    results = connector.update_deals([NativeUpdate(i, {"NextStep": "late"}) for i in ids])
    assert [(r.ok, r.code) for r in results] == [
        (True, None),
        (False, "UNABLE_TO_LOCK_ROW"),
        (True, None),
    ]
    assert contract.stats(sandbox, "salesforce")[COLLECTION.format("PATCH")] == 3


def test_a_locked_record_of_a_delete_batch_is_deleted_on_the_repeat(
    connector: SalesforceConnector, sandbox: Sandbox
) -> None:
    ids = _ids(connector, 4)
    _lock(sandbox, [ids[2]])
    results = connector.delete_deals(ids)
    assert [r.ok for r in results] == [True] * 4
    assert connector.read_deals(ids) == []


def test_a_locked_create_is_created_once_on_the_repeat(
    make_connector: Callable[..., SalesforceConnector], sandbox: Sandbox
) -> None:
    connector = make_connector(options={"backoff_base": 0.01, "lock_wait": 0.01})
    _lock(sandbox, ["ent-locked"])
    creates = [NativeCreate("ent-free", NEW), NativeCreate("ent-locked", NEW)]
    results = connector.create_deals(creates)
    assert [r.ok for r in results] == [True, True]
    found = connector.find_created(["ent-free", "ent-locked"])
    assert found == {"ent-free": results[0].id, "ent-locked": results[1].id}
    link = "Crmsync_Id__c"
    marks = [d[link] for d in connector.deals() if d.get(link) in ("ent-free", "ent-locked")]
    assert sorted(marks) == ["ent-free", "ent-locked"]  # each created once
