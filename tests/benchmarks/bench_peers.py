"""Peers on the same sandbox and data: the full read a user would write with each official
client library, beside crmsync's full pull of the same system (which also maps and stores).

Independent extractors were checked and cannot be pointed at a local URL (see PEER_EXTRACTORS);
that evidence is part of the results rather than a silent omission.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from sync.pull import pull
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import World

__all__ = ["PEER_EXTRACTORS", "peer_rows"]

# Checked with `pip download --no-deps` into /tmp (never the project venv), code read:
PEER_EXTRACTORS = {
    "tap-salesforce 2.8.1 (singer-io)": "login URL hard-coded to login/test.salesforce.com "
    "(tap_salesforce/salesforce/__init__.py Salesforce.login); instance_url only from the "
    "OAuth token response: no base-URL option",
    "tap-hubspot 4.5.0 (singer-io)": "BASE_URL = 'https://api.hubapi.com' module constant "
    "(tap_hubspot/__init__.py): no base-URL option",
    "tap-pipedrive 2.1.0 (singer-io)": "BASE_URL = 'https://api.pipedrive.com' module constant "
    "(tap_pipedrive/config.py): no base-URL option",
    "airbyte-source-pipedrive 2.3.7": "manifest url_base 'https://api.pipedrive.com/v1' fixed "
    "(source_pipedrive/manifest.yaml): no base-URL option",
}

SF_FIELDS = (
    "Id, Name, StageName, Amount, CloseDate, OwnerId, Probability, IsClosed, IsWon, "
    "CreatedDate, LastModifiedDate, SystemModstamp"
)
HS_PROPERTIES = ["dealname", "dealstage", "pipeline", "amount", "closedate", "hubspot_owner_id"]


def _salesforce_query_all(world: World) -> int:
    from simple_salesforce import Salesforce

    session = requests.Session()
    session.verify = str(world.sandbox.ca_file)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
    sf = Salesforce(
        instance_url=world.sandbox.urls["salesforce"],
        session_id=world.sandbox.tokens["salesforce"],
        session=session,
    )
    return sum(1 for _ in sf.query_all_iter(f"SELECT {SF_FIELDS} FROM Opportunity"))


def _hubspot_get_all(world: World) -> int:
    from hubspot import HubSpot

    sandbox = world.sandbox
    client = HubSpot(access_token=sandbox.tokens["hubspot"], host=sandbox.urls["hubspot"])
    return len(client.crm.deals.get_all(properties=HS_PROPERTIES))


def _pipedrive_pages(world: World) -> int:
    from pipedrive.client import Client

    client = Client(domain=world.sandbox.urls["pipedrive"])
    client.set_api_token(world.sandbox.tokens["pipedrive"])
    start, count = 0, 0
    while True:
        body = client.deals.get_all_deals(params={"start": start, "limit": 500})
        count += len(body.get("data") or [])
        page = (body.get("additional_data") or {}).get("pagination") or {}
        if not page.get("more_items_in_collection"):
            return count
        start = page["next_start"]


PEERS: dict[str, tuple[str, Callable[[World], int]]] = {
    "salesforce": ("simple-salesforce query_all_iter", _salesforce_query_all),
    "hubspot": ("hubspot-api-client crm.deals.get_all", _hubspot_get_all),
    "pipedrive": ("pipedrive-python-lib get_all_deals pages of 500", _pipedrive_pages),
}


def peer_rows(world: World, deals: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for system, (name, loop) in PEERS.items():
        world.clear_stats()
        started = time.perf_counter()
        records = loop(world)
        rows.append(_row(world, deals, system, name, records, time.perf_counter() - started))
        with open_runtime(str(world.config), systems=[system]) as rt:
            world.clear_stats()
            started = time.perf_counter()
            report = pull(rt.config, rt.store, rt.connectors, full=True)[system]
            seconds = time.perf_counter() - started
        rows.append(_row(world, deals, system, "crmsync pull --full", report.fetched, seconds))
    for extractor, why in PEER_EXTRACTORS.items():
        rows.append({"bench": "peers", "peer": extractor, "usable": False, "evidence": why})
    return rows


def _row(
    world: World, deals: int, system: str, peer: str, records: int, seconds: float
) -> dict[str, Any]:
    return {
        "bench": "peers",
        "deals": deals,
        "system": system,
        "peer": peer,
        "records": records,
        "calls": world.stats()[system]["total"],
        "seconds": round(seconds, 2),
    }
