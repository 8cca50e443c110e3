"""The HubSpot connector speaks HubSpot's date-versioned API 2026-09: v1-v3 go unsupported in
September 2027, and so does 2026-03 (18 months after its release), while 2026-09 is supported
to about March 2028. Asserted on the sandbox's request statistics (keyed "METHOD /path")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import NativeCreate, NativeUpdate
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.launcher import Sandbox
from tests.hubspot.conftest import settings_for
from tests.json_server import json_server

VERSION = "2026-09"


def _requests(sandbox: Sandbox) -> dict[str, int]:
    requests: dict[str, int] = sandbox.servers["hubspot"].stats.snapshot()["requests"]
    return requests


def _undated(requests: dict[str, Any]) -> list[str]:
    return [key for key in requests if "/v3/" in key or "/v4/" in key]


def test_account_details_pipelines_and_owners_are_read_on_2026_09(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    assert connector.portal_timezone()
    assert connector.pipelines()
    assert connector.owners()
    requests = _requests(sandbox)
    assert requests == {
        f"GET /account-info/{VERSION}/details": 1,
        f"GET /crm/pipelines/{VERSION}/deals": 1,
        f"GET /crm/owners/{VERSION}": 2,  # active owners, then archived ones (one page each)
    }


def test_every_deal_and_company_read_is_made_on_2026_09(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    store = sandbox.servers["hubspot"].emulator.store
    since = datetime.now(UTC) - timedelta(seconds=1)
    deal_id = str(store.order[2])
    store.update(deal_id, {"dealname": "Changed since"})
    connector.check()
    assert connector.companies_readable()
    assert len(list(connector.deals())) == len(store.live)
    assert [d["id"] for d in connector.deals(since)] == [deal_id]
    assert [d["id"] for d in connector.read_deals([deal_id])] == [deal_id]
    assert list(connector.deleted_deals(since)) == []
    assert connector.changed_accounts(since) == {}
    assert connector.find_created(["no-such-link"]) == {}
    requests = _requests(sandbox)
    assert _undated(requests) == []
    assert {
        f"GET /crm/objects/{VERSION}/deals",
        f"POST /crm/objects/{VERSION}/deals/search",
        f"POST /crm/objects/{VERSION}/deals/batch/read",
        f"POST /crm/objects/{VERSION}/companies/search",
        f"POST /crm/objects/{VERSION}/companies/batch/read",
        f"POST /crm/associations/{VERSION}/{{fromObjectType}}/{{toObjectType}}/batch/read",
    } <= set(requests)


def test_updates_creates_and_deletes_are_written_on_2026_09(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    store = sandbox.servers["hubspot"].emulator.store
    deal_id = str(store.order[0])
    [updated] = connector.update_deals([NativeUpdate(deal_id, {"dealname": "Dated"})])
    create = {"dealname": "New", "dealstage": "appointmentscheduled", "pipeline": "default"}
    [created] = connector.create_deals([NativeCreate("dated-1", create)])
    [deleted] = connector.delete_deals([str(created.id)])
    assert updated.ok and created.ok and deleted.ok
    assert store.live[deal_id]["properties"]["dealname"] == "Dated"
    assert str(created.id) in store.archived
    assert _requests(sandbox) == {
        f"POST /crm/objects/{VERSION}/deals/batch/update": 1,
        f"POST /crm/objects/{VERSION}/deals/batch/create": 1,
        f"POST /crm/objects/{VERSION}/deals/batch/read": 1,  # the archive's read first
        f"POST /crm/objects/{VERSION}/deals/batch/archive": 1,
    }


def test_a_dated_call_names_hubspot_api_client_as_its_user_agent_as_the_sdks_calls_did(
    sandbox: Sandbox,
) -> None:
    """HubSpot tells integrations apart (and support traces their calls) by User-Agent."""
    with json_server({"results": []}) as (url, seen):
        connector = HubSpotConnector(settings_for(sandbox, base_url=url))
        connector.pipelines()
        connector.close()
    [headers] = seen
    assert headers["User-Agent"] == "hubspot-api-client-python; 12.0.0"
