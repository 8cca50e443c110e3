"""What each CRM takes as a deal's move to another pipeline, through the connectors' write path
against the sandboxes, as the real APIs answer: a HubSpot `pipeline` only with a `dealstage` of
it, a Pipedrive `stage_id` of the `pipeline_id` given, a Salesforce `RecordTypeId` only with a
`StageName` its sales process allows (and none of a deactivated record type; none at all puts
the Opportunity back among those without a record type). crmsync's own moves always send such
a pair (tests/mapping/test_pipeline_moves.py); these are the refusals a hand-made write meets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import NativeUpdate
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.record_types import RECORD_TYPE, renewal_world

# Seed 3, 60 deals: an open new-business deal in negotiation in all three CRMs, and an open
# renewal of record type Renewal in Salesforce.
NEW_BUSINESS = {"salesforce": "0065g000000000KAAQ", "hubspot": "9100000140", "pipedrive": "22"}
RENEWAL = "0065g000000000VAAQ"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from renewal_world(tmp_path)


@pytest.fixture
def retired_world(tmp_path: Path) -> Iterator[World]:
    yield from renewal_world(tmp_path, active=False)


def _write(world: World, system: str, deal_id: str, fields: dict[str, Any]) -> tuple[bool, str]:
    with open_runtime(str(world.config)) as rt:
        [result] = rt.connectors[system].update_deals([NativeUpdate(deal_id, fields)])
    return result.ok, result.error or ""


def _read(world: World, system: str, deal_id: str) -> dict[str, Any]:
    with open_runtime(str(world.config)) as rt:
        [record] = rt.connectors[system].read_deals([deal_id])
    return dict(record.get("properties") or record)


def test_hubspot_takes_a_pipeline_only_with_a_stage_of_it(world: World) -> None:
    deal = NEW_BUSINESS["hubspot"]

    refused = _write(world, "hubspot", deal, {"pipeline": "renewals"})
    moved = _write(world, "hubspot", deal, {"pipeline": "renewals", "dealstage": "75210933"})

    assert refused[0] is False and "not a valid deal stage of pipeline 'renewals'" in refused[1]
    assert moved == (True, "")
    assert (
        _read(world, "hubspot", deal)["pipeline"],
        _read(world, "hubspot", deal)["dealstage"],
    ) == (
        "renewals",
        "75210933",
    )


def test_pipedrive_takes_a_stage_of_the_pipeline_given(world: World) -> None:
    deal = NEW_BUSINESS["pipedrive"]

    refused = _write(world, "pipedrive", deal, {"pipeline_id": 2, "stage_id": 3})
    moved = _write(world, "pipedrive", deal, {"pipeline_id": 2, "stage_id": 8})

    assert refused[0] is False
    assert moved == (True, "")
    after = _read(world, "pipedrive", deal)
    assert (after["pipeline_id"], after["stage_id"]) == (2, 8)


def test_salesforce_takes_a_record_type_only_with_a_stage_of_its_process(world: World) -> None:
    deal = NEW_BUSINESS["salesforce"]

    refused = _write(
        world, "salesforce", deal, {"RecordTypeId": RECORD_TYPE, "StageName": "Negotiation/Review"}
    )
    moved = _write(
        world, "salesforce", deal, {"RecordTypeId": RECORD_TYPE, "StageName": "Renewal Quoted"}
    )
    back = _write(world, "salesforce", RENEWAL, {"RecordTypeId": None, "StageName": "Prospecting"})

    assert refused[0] is False and "restricted picklist" in refused[1]
    assert moved == (True, "") and back == (True, "")
    assert _read(world, "salesforce", deal)["RecordTypeId"] == RECORD_TYPE
    assert _read(world, "salesforce", RENEWAL)["RecordTypeId"] is None


def test_salesforce_gives_no_deal_a_deactivated_record_type(retired_world: World) -> None:
    ok, why = _write(
        retired_world,
        "salesforce",
        NEW_BUSINESS["salesforce"],
        {"RecordTypeId": RECORD_TYPE, "StageName": "Renewal Quoted"},
    )

    assert ok is False and "Record Type ID" in why
