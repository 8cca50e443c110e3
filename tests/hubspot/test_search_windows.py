"""Incremental reads across HubSpot's search cap, and search's own rate limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import NativeUpdate
from connectors.credentials import HubSpotToken
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_paths import objects
from connectors.sandbox.faults import Faults
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.server import SandboxServer

TOKEN = "sandbox-hubspot-test-token"


@pytest.fixture
def capped(hs_data: dict[str, Any]) -> Iterator[SandboxServer]:
    # The real cap is 10,000; 60 exercises the same re-windowing on a small dataset.
    emulator = HubSpotEmulator(hs_data["hubspot"], TOKEN, search_cap=60, search_rate=(2, 0.5))
    server = SandboxServer(emulator, faults=Faults(rate_limit=10_000)).start()
    yield server
    server.stop()


def _connector(server: SandboxServer, **options: Any) -> HubSpotConnector:
    from connectors.base import ConnectorSettings

    return HubSpotConnector(
        ConnectorSettings(
            "hubspot",
            HubSpotToken(TOKEN),
            base_url=server.url,
            rate_limit=(10_000, 10.0),
            options={"backoff_base": 0.01, "search_cap": 60, "search_rate": (1000, 1.0), **options},
        )
    )


def _live_ids(hubspot: dict[str, Any]) -> list[str]:
    """The ids of the deals a full read of this HubSpot data returns, each once."""
    return [d["id"] for d in hubspot["deals"] if not d.get("archived")]


def _touch_all(connector: HubSpotConnector) -> list[str]:
    ids = [d["id"] for d in connector.deals()]
    results = connector.update_deals([NativeUpdate(i, {"description": "bulk"}) for i in ids])
    assert all(r.ok for r in results)
    return ids


def test_incremental_read_past_the_search_cap_rewindows_and_loses_nothing(capped):
    connector = _connector(capped)
    since = datetime.now(UTC) - timedelta(milliseconds=1)
    time.sleep(0.005)
    ids = _touch_all(connector)
    assert len(ids) > 2 * 60
    capped.stats.clear()
    changed = [d["id"] for d in connector.deals(since)]
    assert sorted(changed) == sorted(ids)
    assert len(changed) == len(set(changed))
    stats = capped.stats.snapshot()
    assert stats["statuses"] == {"200": stats["total"]}  # never paged into the cap's 400
    assert stats["requests"]["POST /crm/objects/2026-09/deals/search"] >= 2


def test_paging_past_the_search_cap_is_refused(capped):
    connector = _connector(capped)
    from connectors.errors import ApiError

    with pytest.raises(ApiError) as caught:
        connector._call(
            "search",
            connector._unwrapped("POST", objects("deals") + "/search"),
            {"limit": 10, "after": "60"},
        )
    assert caught.value.status == 400 and "60" in caught.value.message


def test_many_deals_modified_in_one_instant_fall_back_to_a_scan(hs_data):
    data = {**hs_data["hubspot"]}
    stamp = "2026-01-01T00:00:00.000Z"
    data["deals"] = [
        {**d, "properties": {**d["properties"], "hs_lastmodifieddate": stamp}}
        for d in data["deals"]
    ]
    server = SandboxServer(
        HubSpotEmulator(data, TOKEN, search_cap=60), faults=Faults(rate_limit=10_000)
    ).start()
    try:
        connector = _connector(server)
        since = datetime(2025, 12, 31, tzinfo=UTC)
        got = [d["id"] for d in connector.deals(since)]
        assert sorted(got) == sorted(_live_ids(data))
    finally:
        server.stop()


def test_search_pacing_keeps_under_the_search_rate_limit(capped, hs_data):
    capped.faults.set(Faults(enforce_rate_limit=True, rate_limit=10_000))
    connector = _connector(capped, search_rate=(2, 0.55))
    since = datetime(2000, 1, 1, tzinfo=UTC)
    got = [d["id"] for d in connector.deals(since)]
    assert sorted(got) == sorted(_live_ids(hs_data["hubspot"]))
    statuses = capped.stats.snapshot()["statuses"]
    assert "429" not in statuses


def test_search_429_without_pacing_is_retried(capped, hs_data):
    capped.faults.set(Faults(enforce_rate_limit=True, rate_limit=10_000))
    connector = _connector(capped)  # paces at 1000/s: bounces off the 2 per 0.5 s limit
    ids = [d["id"] for d in connector.deals(datetime(2000, 1, 1, tzinfo=UTC))]
    assert sorted(ids) == sorted(_live_ids(hs_data["hubspot"]))  # no page lost to a 429
    assert capped.stats.snapshot()["statuses"].get("429", 0) >= 1


def test_a_deal_changed_between_search_pages_does_not_make_the_read_skip_another():
    """Search pages are offsets into a live result list: a deal already read that changes
    moves to the end, every later deal moves up one, and the next offset would skip one."""
    from connectors.sandbox.generator import generate

    dataset, _ = generate(300, seed=7)  # over one 200-deal search page
    emulator = HubSpotEmulator(dataset["hubspot"], TOKEN)
    server = SandboxServer(emulator, faults=Faults(rate_limit=10_000)).start()
    try:
        connector = _connector(server, search_cap=10_000)
        since = datetime.now(UTC) - timedelta(milliseconds=1)
        time.sleep(0.005)
        ids = _touch_all(connector)
        assert len(ids) > 200  # more than one search page
        reading = connector.deals(since)
        got = [next(reading)["id"]]
        connector.update_deals([NativeUpdate(got[0], {"description": "again"})])
        got += [d["id"] for d in reading]
        assert set(got) == set(ids)
    finally:
        server.stop()


def _rename_every_company(server: SandboxServer) -> dict[str, str]:
    emulator: Any = server.emulator
    with emulator.lock:
        companies = list(emulator.store.companies)
        for company in companies:
            emulator.store.rename_company(company, f"Renamed {company}")
    return {c: f"Renamed {c}" for c in companies}


def test_companies_renamed_past_the_search_cap_are_all_read(capped):
    """More companies renamed since the cursor than one search may return: the companies
    search re-windows as the deals' does, and reads each once."""
    connector = _connector(capped)
    since = datetime.now(UTC) - timedelta(milliseconds=1)
    time.sleep(0.005)
    renamed = _rename_every_company(capped)
    assert len(renamed) > 2 * 60
    capped.stats.clear()
    assert connector.changed_accounts(since) == renamed
    stats = capped.stats.snapshot()
    assert stats["statuses"] == {"200": stats["total"]}  # never paged into the cap's 400
    assert stats["requests"]["POST /crm/objects/2026-09/companies/search"] >= 2
    assert connector.calls()["search companies"] == stats["total"]


def test_companies_changed_in_one_instant_past_the_search_cap_are_scanned(capped):
    """A bulk import stamps more companies with one instant than a search can return: they are
    read from the companies list instead, each once."""
    connector = _connector(capped)
    since = datetime.now(UTC) - timedelta(seconds=1)
    renamed = _rename_every_company(capped)
    emulator: Any = capped.emulator
    with emulator.lock:
        stamp = emulator.store.companies[next(iter(renamed))]["properties"]["hs_lastmodifieddate"]
        for company in renamed:
            emulator.store.companies[company]["properties"]["hs_lastmodifieddate"] = stamp
        emulator.store.version += 1
    capped.stats.clear()
    assert connector.changed_accounts(since) == renamed
    assert capped.stats.snapshot()["requests"]["GET /crm/objects/2026-09/companies"] >= 1
