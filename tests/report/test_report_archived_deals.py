"""Deals archived in Pipedrive are out of its pipeline and forecast views ("no longer actively
managed"), not deleted: the report leaves an archived open deal out of the open pipeline, and
keeps archived won and lost deals in the record of what was won and lost. Deals served by the
sandbox, pulled through the official client library (its archived list included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures import pipedrive_only

from connectors.sandbox.generator import generate
from mapping.pipedrive import PD_FIELD_HUBSPOT_ID
from tests.sandbox_env import hubspot_and_pipedrive, make_env, run_crmsync

DEALS = [  # (id, status, archived), all in stage 2 (Contact Made -> qualified)
    (1, "open", False),
    (2, "open", True),
    (3, "won", True),
    (4, "lost", False),
]


def _dataset() -> dict[str, Any]:
    same = {"value": 1000, "currency": "USD", "pipeline_id": 1, "stage_id": 2, "probability": None}
    return pipedrive_only(
        *(
            {**same, "id": i, "title": f"Deal {i}", "status": status, "is_archived": archived}
            for i, status, archived in DEALS
        )
    )


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("archived")
    env = make_env(folder, _dataset(), f"sqlite:///{folder}/store.db", systems=("pipedrive",))
    try:
        done = run_crmsync("report", "--config", str(env.config), "--format", "json", "--refresh")
        assert done.returncode in (0, 3), done.stderr
        yield json.loads(done.stdout)["systems"]["pipedrive"]["funnels"]["default"]
    finally:
        env.sandbox.stop()


def test_an_archived_open_deal_is_not_in_the_open_pipeline(funnel: dict[str, Any]) -> None:
    qualified = next(s for s in funnel["stages"] if s["key"] == "qualified")
    assert (funnel["open"], qualified["count"], qualified["amount"]) == (1, 1, {"USD": "1000"})


def test_archived_won_and_lost_deals_still_count_as_won_and_lost(funnel: dict[str, Any]) -> None:
    assert (funnel["deals"], funnel["won"], funnel["lost"]) == (3, 1, 1)
    assert funnel["win_rate"] == {"won": 1, "lost": 1, "rate": "0.5000"}


def test_an_archived_open_deal_matched_elsewhere_counts_as_matched_in_the_pairs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Pipedrive's Ironclad deal, open and archived, names its HubSpot copy: the pair is
    matched, and the HubSpot copy is not "only in hubspot" (nothing would copy it to
    Pipedrive, which holds it). In a world of two CRMs, the pair's matched deals are the
    matched entities, and its one-sided deals the plan's unmatched ones."""
    dataset = generate(4, 7)[0]
    [ironclad] = [d for d in dataset["pipedrive"]["deals"] if d["title"].startswith("Ironclad")]
    assert (ironclad["status"], ironclad[PD_FIELD_HUBSPOT_ID]) == ("open", "9100000014")
    ironclad["is_archived"] = True
    world = {"hubspot": dataset["hubspot"], "pipedrive": dataset["pipedrive"]}
    with hubspot_and_pipedrive(tmp_path_factory.mktemp("archived-pair"), world) as env:
        done = run_crmsync("report", "--config", str(env.config), "--format", "json", "--refresh")
    assert done.returncode in (0, 3), done.stderr
    cross = json.loads(done.stdout)["cross_system"]
    [pair] = cross["pairs"]
    unmatched = cross["unmatched_by_system"]
    assert (pair["matched"], pair["only_a"], pair["only_b"]) == (
        cross["entities"],
        unmatched.get("hubspot", 0),
        unmatched.get("pipedrive", 0),
    )
    assert pair["matched"] == 5
