"""The HubSpot connector speaks HubSpot's date-versioned API 2026-09: v1-v3 go unsupported in
September 2027, and so does 2026-03 (18 months after its release), while 2026-09 is supported
to about March 2028. Asserted on the sandbox's request statistics (keyed "METHOD /path")."""

from __future__ import annotations

from typing import Any

from connectors.hubspot import HubSpotConnector
from connectors.sandbox.launcher import Sandbox

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
