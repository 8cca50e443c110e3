"""The Salesforce connector creates a copy under the Account of its account's name: the names a
run expects are looked up together, each once, in as few `Name IN (...)` queries as keep each
request short enough for Salesforce (a URI and headers past 16,384 bytes are refused)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote_plus

import pytest

from connectors.base import NativeCreate
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_accounts import QUERY_BYTES, account_queries
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import dataset

FIELDS = {"StageName": "Proposal", "CloseDate": "2025-03-01"}
NAMES = [f"Company number {n} Holdings" for n in range(600)]


@pytest.fixture
def accounts_sandbox() -> Iterator[Sandbox]:
    data = dataset(deals=5, deleted=0)
    data["salesforce"]["Account"] = [
        {"attributes": {"type": "Account"}, "Id": f"001{n:015d}", "Name": name}
        for n, name in enumerate(NAMES)
    ]
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as running:
        yield running


def _copies(*accounts: str) -> list[NativeCreate]:
    return [
        NativeCreate(f"ent-{n}", {"Name": f"Copy {n}", **FIELDS}, account)
        for n, account in enumerate(accounts)
    ]


def _account_ids(sandbox: Sandbox, ids: list[str | None]) -> list[str | None]:
    em = sandbox.servers["salesforce"].emulator
    with em.lock:
        return [em.store.by_id[i].get("AccountId") if i else None for i in ids]


def test_the_names_a_run_expects_are_looked_up_together_each_once_in_short_queries(
    accounts_sandbox: Sandbox,
) -> None:
    queries = account_queries([*NAMES, " company NUMBER 7 holdings "])
    assert len(queries) > 1  # 600 names do not fit one request
    assert all(len(quote_plus(q)) <= QUERY_BYTES for q in queries)
    connector = SalesforceConnector(settings_for(accounts_sandbox))
    try:
        connector.expect_accounts(NAMES)
        first = connector.create_deals(_copies(" company NUMBER 7 holdings ", NAMES[599]))
        calls = connector.calls().get("find accounts")
        second = connector.create_deals(_copies(NAMES[3]))
        again = connector.calls().get("find accounts")
    finally:
        connector.close()
    assert calls == len(queries) and again == calls  # known names are not looked up again
    made = [r.id for r in (*first, *second)]
    assert _account_ids(accounts_sandbox, made) == [f"001{n:015d}" for n in (7, 599, 3)]
    assert [r.note for r in (*first, *second)] == [None, None, None]


def test_accounts_the_api_user_may_not_read_leave_each_copy_without_one_saying_why(
    accounts_sandbox: Sandbox,
) -> None:
    accounts_sandbox.servers["salesforce"].faults.set(
        Faults(rate_limit=10_000, hidden_sobjects=("Account",))
    )
    connector = SalesforceConnector(settings_for(accounts_sandbox))
    try:
        [made] = connector.create_deals(_copies(NAMES[1]))
    finally:
        connector.close()
    assert made.ok and _account_ids(accounts_sandbox, [made.id]) == [None]
    assert made.note is not None
    assert made.note.startswith("Accounts are not readable by the API user (INVALID_TYPE")
    assert made.note.endswith(": created without an Account")


def test_a_name_longer_than_an_account_can_bear_is_never_sent_and_its_copy_says_why(
    accounts_sandbox: Sandbox,
) -> None:
    """Account.Name holds 255 characters: a longer name names no Account, and sent in the
    lookup it made a query Salesforce refuses (a URI past 16,384 bytes), which failed every
    other copy of the run with it."""
    longest = "L" * 255
    em = accounts_sandbox.servers["salesforce"].emulator
    with em.lock:
        edge = em.store.add_account(longest)
    long = "日" * 3000
    queries = account_queries([NAMES[2], long, longest])
    assert len(queries) == 1 and long not in queries[0]
    assert len(quote_plus(queries[0])) <= QUERY_BYTES
    connector = SalesforceConnector(settings_for(accounts_sandbox))
    try:
        made = connector.create_deals(_copies(NAMES[2], long, f" {longest} "))
        calls = connector.calls().get("find accounts")
    finally:
        connector.close()
    assert calls == 1
    assert _account_ids(accounts_sandbox, [r.id for r in made]) == [
        f"001{2:015d}",
        None,
        edge,
    ]
    assert [r.note for r in made] == [
        None,
        f"no Account can be named {'日' * 40 + '...'!r} (over 255 characters): "
        "created without an Account",
        None,
    ]


def test_a_refused_copy_says_it_was_sent_without_an_account_and_why(
    accounts_sandbox: Sandbox,
) -> None:
    """Its error is the CRM's, then why it had no Account: not that it was created without
    one, which it was not."""
    accounts_sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, record_fail=1.0))
    em = accounts_sandbox.servers["salesforce"].emulator
    with em.lock:
        twins = sorted([f"001{3:015d}", em.store.add_account(NAMES[3].upper())])
    connector = SalesforceConnector(settings_for(accounts_sandbox))
    try:
        refused = connector.create_deals(_copies("Nobody Inc", NAMES[3]))
    finally:
        connector.close()
    assert [r.ok for r in refused] == [False, False]
    errors = [r.error or "" for r in refused]
    assert errors[0].endswith(" (no Account: none is named 'Nobody Inc')"), errors[0]
    several = f"2 Accounts are named {NAMES[3]!r} ({', '.join(twins)}): not guessed"
    assert errors[1].endswith(f" (no Account: {several})"), errors[1]
    assert not any("created" in e for e in errors)
