"""The connector contract, system-independent: call these from tests/<kind>/ with a live sandbox.

Each function takes a connector, the running `Sandbox` and an `Expectations` (what this system's
dataset and API imply) and asserts on results AND on the sandbox's request statistics, so a
connector that silently over-fetches or never makes a call fails too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import NOT_FOUND, Connector, DeletesDeals, NativeUpdate
from connectors.errors import AuthError, BudgetExhausted, ConnectorError
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox

__all__ = [
    "Expectations",
    "assert_auth_error_is_clear",
    "assert_batch_failures_are_reported",
    "assert_budget_stops_cleanly",
    "assert_delete_costs",
    "assert_delete_failures_are_reported",
    "assert_deleted_are_seen",
    "assert_deletes_leave_the_live_read",
    "assert_full_read_pages_exactly",
    "assert_incremental_returns_changed",
    "assert_missing_deletes_are_not_found",
    "assert_no_secret_in",
    "assert_transient_faults_are_retried",
    "assert_updates_round_trip",
    "connectors_made",
    "set_faults",
    "stats",
]


@dataclass(frozen=True)
class Expectations:
    system: str  # the sandbox system key: "salesforce" | "hubspot" | "pipedrive"
    deal_count: int  # live deals in the dataset
    page_size: int  # the API's maximum list page
    list_endpoint: str  # stats key of the list call, e.g. "GET /crm/objects/2026-09/deals"
    metadata_calls: int  # fixed calls a first full deals() makes besides the list pages
    secrets: tuple[str, ...] = ()
    more_endpoint: str | None = None  # next-page call when it differs (Salesforce query/{locator})


def stats(sandbox: Sandbox, system: str) -> dict[str, int]:
    requests: dict[str, int] = sandbox.servers[system].stats.snapshot()["requests"]
    return requests


def clear_stats(sandbox: Sandbox, system: str) -> None:
    sandbox.servers[system].stats.clear()


def set_faults(sandbox: Sandbox, system: str, faults: Faults) -> None:
    sandbox.servers[system].faults.set(faults)


def _ids(deals: Any) -> list[str]:
    return [str(d.get("id", d.get("Id"))) for d in deals]


def assert_full_read_pages_exactly(
    connector: Connector, sandbox: Sandbox, exp: Expectations
) -> None:
    """A full read returns every deal once, in ceil(N/page) list calls + the metadata calls."""
    clear_stats(sandbox, exp.system)
    ids = _ids(connector.deals())
    assert len(ids) == exp.deal_count
    assert len(set(ids)) == len(ids), "a deal was returned twice"
    pages = max(1, math.ceil(exp.deal_count / exp.page_size))
    seen = stats(sandbox, exp.system)
    listed = seen.get(exp.list_endpoint, 0) + seen.get(exp.more_endpoint or "", 0)
    assert listed == pages, seen
    assert sum(seen.values()) == pages + exp.metadata_calls, seen
    assert connector.cursor() is not None


def assert_incremental_returns_changed(
    connector: Connector, since: datetime, changed: set[str]
) -> None:
    ids = _ids(connector.deals(since))
    assert len(ids) == len(set(ids)), "a changed deal was returned twice"
    assert set(ids) == changed


def assert_deleted_are_seen(connector: Connector, since: datetime, deleted: set[str]) -> None:
    assert set(connector.deleted_deals(since)) == deleted


def assert_transient_faults_are_retried(
    connector: Connector, sandbox: Sandbox, exp: Expectations, faults: Faults
) -> None:
    """With 429s, 5xx and cut connections injected, a full read still returns every deal."""
    set_faults(sandbox, exp.system, faults)
    try:
        ids = _ids(connector.deals())
    finally:
        set_faults(sandbox, exp.system, Faults(rate_limit=faults.rate_limit))
    assert len(ids) == exp.deal_count
    assert len(set(ids)) == exp.deal_count
    statuses = sandbox.servers[exp.system].stats.snapshot()["statuses"]
    assert set(statuses) - {"200"}, f"no fault was injected: {statuses}"


def assert_no_secret_in(text: str, secrets: Sequence[str]) -> None:
    for secret in secrets:
        assert secret not in text, "a secret leaked into a message"


def assert_auth_error_is_clear(bad_connector: Connector, exp: Expectations) -> None:
    """A rejected credential raises AuthError naming system and operation, never the secret."""
    with pytest.raises(AuthError) as caught:
        bad_connector.check()
    error = caught.value
    assert error.system == bad_connector.system
    assert error.status == 401
    assert_no_secret_in(str(error), exp.secrets)
    assert_no_secret_in(repr(bad_connector), exp.secrets)
    with pytest.raises(AuthError):
        list(bad_connector.deals())


def assert_budget_stops_cleanly(budget_connector: Connector, budget: int) -> None:
    with pytest.raises(BudgetExhausted) as caught:
        list(budget_connector.deals())
    assert sum(budget_connector.calls().values()) == budget
    assert "budget" in str(caught.value)


def assert_batch_failures_are_reported(
    connector: Connector,
    sandbox: Sandbox,
    exp: Expectations,
    updates: Sequence[NativeUpdate],
    failing: set[str],
) -> None:
    """Per-record failures (fault fail_ids) come back one result per input, in input order."""
    set_faults(sandbox, exp.system, Faults(fail_ids=tuple(failing), rate_limit=10_000))
    try:
        results = connector.update_deals(updates)
    finally:
        set_faults(sandbox, exp.system, Faults(rate_limit=10_000))
    assert [r.id for r in results] == [u.id for u in updates]
    assert {r.id for r in results if not r.ok} == failing
    for result in results:
        assert result.ok or result.error, "a failed record carries the API's reason"


def assert_updates_round_trip(
    connector: Connector,
    updates: Sequence[NativeUpdate],
    value_of: Callable[[dict[str, Any], str], Any],
) -> None:
    """Written values are what a fresh read returns (`value_of(record, field)`)."""
    results = connector.update_deals(updates)
    assert all(r.ok for r in results), results
    fresh = {
        str(d.get("id", d.get("Id"))): d for d in connector.read_deals([u.id for u in updates])
    }
    for update in updates:
        for field, value in update.fields.items():
            assert value_of(fresh[update.id], field) == value, (update.id, field)


def _deleting(connector: Connector) -> DeletesDeals:
    assert isinstance(connector, DeletesDeals), "the connector does not implement DeletesDeals"
    return connector


def assert_deletes_leave_the_live_read(
    connector: Connector, since: datetime, ids: Sequence[str]
) -> None:
    """Deleted deals leave deals() and show up in deleted_deals(since); results in input order."""
    results = _deleting(connector).delete_deals(ids)
    assert [(r.id, r.ok, r.code) for r in results] == [(i, True, None) for i in ids]
    assert not set(ids) & set(_ids(connector.deals()))
    assert set(connector.deleted_deals(since)) == set(ids)


def assert_restored_deals_are_read_back(
    connector: Connector, ids: Sequence[str], restore: Callable[[str], None]
) -> None:
    """Deals deleted, then restored in the CRM (`restore`: its recycle bin's Undelete or
    Restore): an incremental read from before the restore returns exactly them, live again,
    a full read lists them, and deleted_deals from before the delete no longer does."""
    before_delete = datetime.now(UTC) - timedelta(seconds=1)
    _deleting(connector).delete_deals(ids)
    assert set(connector.deleted_deals(before_delete)) == set(ids)
    before_restore = datetime.now(UTC)
    time.sleep(0.01)  # the restores' stamps fall after it, whatever their resolution
    for deal_id in ids:
        restore(deal_id)
    changed = list(connector.deals(before_restore - timedelta(seconds=1)))
    assert set(_ids(changed)) == set(ids)
    assert set(ids) <= set(_ids(connector.deals()))
    assert not set(ids) & set(connector.deleted_deals(before_delete))


def assert_missing_deletes_are_not_found(
    connector: Connector, live: Sequence[str], missing: Sequence[str]
) -> None:
    """Unknown and already-deleted ids among live ones: NOT_FOUND for each, the rest deleted."""
    asked = [i for pair in zip(live, missing, strict=False) for i in pair]
    asked += list(live[len(missing) :]) + list(missing[len(live) :])
    results = _deleting(connector).delete_deals(asked)
    assert [r.id for r in results] == asked
    for result in results:
        if result.id in missing:
            assert (result.ok, result.code) == (False, NOT_FOUND), result
        else:
            assert result.ok, result
    assert not set(live) & set(_ids(connector.deals()))


def assert_delete_costs(
    connector: Connector,
    sandbox: Sandbox,
    exp: Expectations,
    ids: Sequence[str],
    calls: dict[str, int],
) -> None:
    """Deleting `ids` makes exactly `calls` (stats key -> count) and deletes every one."""
    clear_stats(sandbox, exp.system)
    results = _deleting(connector).delete_deals(ids)
    assert len(results) == len(ids) and all(r.ok for r in results), results
    assert stats(sandbox, exp.system) == calls


def assert_delete_failures_are_reported(
    connector: Connector,
    sandbox: Sandbox,
    exp: Expectations,
    ids: Sequence[str],
    refused: set[str],
    failed: set[str] | None = None,
) -> list[Any]:
    """Records the CRM refuses (fault fail_ids) are reported failed with the API's reason and
    stay live; the others are deleted. `failed` is what fails with them (default: just the
    refused; an all-or-nothing batch fails whole). Returns the results for further checks."""
    failed = refused if failed is None else failed
    set_faults(sandbox, exp.system, Faults(fail_ids=tuple(refused), rate_limit=10_000))
    try:
        results = _deleting(connector).delete_deals(ids)
    finally:
        set_faults(sandbox, exp.system, Faults(rate_limit=10_000))
    assert [r.id for r in results] == list(ids)
    assert {r.id for r in results if not r.ok} == failed
    for result in results:
        assert result.ok or (result.error and result.code not in (None, NOT_FOUND)), result
    left = set(_ids(connector.deals()))
    assert failed <= left and not (set(ids) - failed) & left
    return results


def assert_error_is_typed(exc: BaseException) -> None:
    assert isinstance(exc, ConnectorError)


@contextmanager
def connectors_made(build: Callable[..., Connector]) -> Iterator[Callable[..., Any]]:
    """A `make_connector(**settings overrides)` factory whose connectors are closed after."""
    made: list[Connector] = []

    def make(**overrides: Any) -> Any:
        connector = build(**overrides)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
