"""What naming the deals' organizations costs: a full read lists the organizations (500 a page)
while the pages pay for themselves, else asks by ids (100 a call); the re-read before a write
reads no names (its checks compare no account)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import NativeUpdate
from connectors.pipedrive import PipedriveConnector
from connectors.sandbox.launcher import Sandbox, start_sandbox
from sync.connect import read_now
from tests.connectors import contract
from tests.pipedrive.conftest import FAST, mapping_context, settings_for

SHIFT = 100_000  # the dataset's organizations moved past EXTRA organizations of lower ids
EXTRA = 5_000  # ten list pages of organizations no deal names


def _live(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in data["pipedrive"]["deals"] if d["status"] != "deleted"]


def _org_names(data: dict[str, Any]) -> dict[int, str]:
    """Organization id -> name, of the organizations the live deals name (v1 records)."""
    return {
        int(d["org_id"]["value"]): str(d["org_id"]["name"])
        for d in _live(data)
        if isinstance(d.get("org_id"), dict)
    }


def _assert_named(deals: list[dict[str, Any]], names: dict[int, str]) -> None:
    assert deals
    for deal in deals:
        org = deal.get("org_id")
        assert org is None or deal["org_name"] == names[org], deal["id"]


def _org_calls(sandbox: Sandbox) -> int:
    stats = contract.stats(sandbox, "pipedrive")
    return sum(n for path, n in stats.items() if "/organizations" in path)


def test_a_full_read_names_every_organization_from_one_listing_page(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    names = _org_names(pd_data)
    assert len(names) > 300  # the ids path would take four calls
    contract.clear_stats(sandbox, "pipedrive")
    deals = list(connector.deals())
    _assert_named(deals, names)
    # the dataset's 456 organizations: one page of the listing, no `ids=` call, none by id
    assert contract.stats(sandbox, "pipedrive")["GET /api/v2/organizations"] == 1
    assert "GET /api/v2/organizations/{id}" not in contract.stats(sandbox, "pipedrive")
    assert "organization names" not in connector.calls()


def test_an_organization_the_listing_leaves_out_is_read_by_id_on_a_full_read(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    names = _org_names(pd_data)
    deleted = sorted(names)[len(names) // 2]
    em: Any = sandbox.servers["pipedrive"].emulator  # the Pipedrive emulator's store
    with em.lock:
        em.store.orgs.orgs[deleted]["active_flag"] = False  # deleted: the listing leaves it out
    contract.clear_stats(sandbox, "pipedrive")
    _assert_named(list(connector.deals()), names)
    stats = contract.stats(sandbox, "pipedrive")
    assert stats["GET /api/v2/organizations"] == 1
    assert stats["GET /api/v2/organizations/{id}"] == 1


@pytest.fixture
def crowded(pd_data: dict[str, Any]) -> Iterator[tuple[Sandbox, dict[str, Any]]]:
    """The dataset's organizations behind EXTRA of lower ids that no deal names."""
    data = copy.deepcopy(pd_data)
    pd = data["pipedrive"]
    for org in pd["organizations"]:
        org["id"] += SHIFT
    for deal in pd["deals"]:
        if isinstance(deal.get("org_id"), dict):
            deal["org_id"]["value"] += SHIFT
    pd["organizations"] += [{"id": n, "name": f"Unnamed by deals {n}"} for n in range(1, EXTRA)]
    with start_sandbox(data, systems=["pipedrive"], faults=FAST) as running:
        yield running, data


def test_an_account_with_far_more_organizations_than_its_deals_name_pays_about_the_ids_path(
    crowded: tuple[Sandbox, dict[str, Any]],
) -> None:
    sandbox, data = crowded
    names = _org_names(data)
    connector = PipedriveConnector(settings_for(sandbox))
    try:
        contract.clear_stats(sandbox, "pipedrive")
        _assert_named(list(connector.deals()), names)
        listed = connector.calls().get("list organization names", 0)
    finally:
        connector.close()
    ids_path = math.ceil(len(names) / 100)
    # at most two listing pages, which name none of them, then the ids path; never all ten
    assert listed <= 2
    assert _org_calls(sandbox) <= ids_path + 2


def test_the_re_read_before_a_write_reads_no_organization_names(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    live = _live(pd_data)
    ids = [str(d["id"]) for d in live[:250]]
    ctx = mapping_context(connector)
    contract.clear_stats(sandbox, "pipedrive")
    deals, unreadable = read_now(connector, ctx, ids)
    assert not unreadable and sorted(deals) == sorted(ids)
    assert _org_calls(sandbox) == 0
    by_id = {str(d["id"]): d for d in live}
    for deal_id, deal in deals.items():
        assert deal.name == by_id[deal_id]["title"]
        assert "account" not in deal.extra  # the checks before a write compare no account


def test_an_incremental_read_asks_for_its_few_organizations_by_ids_not_by_listing(
    connector: PipedriveConnector, sandbox: Sandbox, pd_data: dict[str, Any]
) -> None:
    changed = [d for d in _live(pd_data) if isinstance(d.get("org_id"), dict)][:5]
    since = datetime.now(UTC)
    time.sleep(0.01)
    connector.update_deals([NativeUpdate(str(d["id"]), {"probability": 42}) for d in changed])
    contract.clear_stats(sandbox, "pipedrive")
    deals = list(connector.deals(since))
    _assert_named(deals, _org_names(pd_data))
    assert sorted(d["id"] for d in deals) == sorted(d["id"] for d in changed)
    assert "list organization names" not in connector.calls()
    # one `ids=` call for the five, and the organizations changed since are not read here
    assert contract.stats(sandbox, "pipedrive")["GET /api/v2/organizations"] == 1
