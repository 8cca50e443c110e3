"""Two Salesforce orgs beside one HubSpot portal, through the CLI: after an acquisition each org
keeps its own picklist, owners and record ids, and every sf_us id is an sf_emea id of another
deal, so anything keyed by kind or by bare record id would show here."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.generator import generate_full
from tests.integration.two_orgs import TwoOrgs, two_orgs
from tests.sandbox_env import run_crmsync, served

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def orgs(tmp_path: Path) -> Any:
    with two_orgs(tmp_path, f"sqlite:///{tmp_path / 'store.db'}") as world:
        yield world


def _plan(world: TwoOrgs, *extra: str) -> dict[str, Any]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--format", "json", *extra
    )
    assert done.returncode == 0, done.stderr
    plan: dict[str, Any] = json.loads(done.stdout)
    return plan


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_two_salesforce_orgs_reconcile_into_each_org_by_its_own_ids_and_settle(
    orgs: TwoOrgs, tmp_path: Path
) -> None:
    config = str(orgs.config)
    pulled = run_crmsync("pull", "--config", config, "--format", "jsonl")
    assert pulled.returncode == 0, pulled.stderr
    ids: dict[str, set[str]] = {"sf_emea": set(), "sf_us": set(), "hubspot": set()}
    for line in pulled.stdout.splitlines():
        deal = json.loads(line)
        ids[deal["system"]].add(deal["id"])
    assert set(orgs.planted["copies"]) | set(orgs.planted["us_only"]) == ids["sf_us"]
    assert ids["sf_us"] <= ids["sf_emea"]  # the same ids, other deals: nothing mixed them up

    plan_file = tmp_path / "plan.json"
    plan = _plan(orgs, "--plan-out", str(plan_file))
    # each amount a person raised in sf_us goes to that deal's sf_emea copy, not to the
    # sf_emea deal that happens to carry the same id; sf_us itself is not written
    edited = {orgs.planted["copies"][us_id] for us_id in orgs.planted["edited"]}
    from_us = {
        c["id"] for c in plan["changes"] if c["system"] == "sf_emea" and "sf_us" in c["reason"]
    }
    assert from_us == edited
    assert not [c for c in plan["changes"] if c["system"] == "sf_us"]
    assert plan["summary"]["unmatched"]["sf_us"] == len(orgs.planted["us_only"])

    applied = run_crmsync("apply", str(plan_file), "--config", config, "--yes")
    assert applied.returncode == 0, applied.stderr
    emea = orgs.opportunities("sf_emea")
    us = orgs.opportunities("sf_us")
    for us_id in orgs.planted["edited"]:
        emea_amount = emea[orgs.planted["copies"][us_id]]["Amount"]
        assert Decimal(str(emea_amount)) == Decimal(str(us[us_id]["Amount"]))
    assert _plan(orgs)["summary"]["changes"] == 0

    # a person moves a deal on in sf_us, in sf_us's own picklist: sf_emea gets it in its own
    us_id = next(
        i
        for i, o in us.items()
        if i in orgs.planted["copies"] and o["StageName"] == "Discovery" and i in emea
    )
    orgs.edit("sf_us", us_id, {"StageName": "Quote Sent"})
    emea_id = orgs.planted["copies"][us_id]
    spread = run_crmsync("reconcile", "--config", config, "--yes")
    assert spread.returncode == 0, spread.stderr
    after = orgs.opportunities("sf_emea")
    assert after[emea_id]["StageName"] in ("Value Proposition", "Proposal/Price Quote")
    assert after[us_id] == emea[us_id]  # the sf_emea deal with that id is untouched
    assert _plan(orgs)["summary"]["changes"] == 0


def _unreadable_stage(us: dict[str, Any]) -> None:
    opp = us["Opportunity"][0]
    opp.update(StageName="Legacy Import", IsClosed="n/a")


def test_a_record_one_org_cannot_map_is_reported_under_that_org(tmp_path: Path) -> None:
    with two_orgs(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", edit_us=_unreadable_stage
    ) as orgs:
        bad = next(iter(orgs.opportunities("sf_us")))
        pulled = run_crmsync("pull", "--config", str(orgs.config))
        plan = _plan(orgs)
    assert pulled.returncode == 0, pulled.stderr
    assert [(e["system"], e["id"]) for e in plan["errors"]] == [("sf_us", bad)]
    assert f"skipped sf_us record {bad}: status: IsClosed" in pulled.stderr


def test_two_salesforce_sandboxes_served_in_one_folder_are_both_trusted(tmp_path: Path) -> None:
    """One `crmsync sandbox serve` per org, their configs side by side: the second server's CA
    must not replace the one the first org's config trusts."""
    datasets = {}
    for org, seed in (("emea", 3), ("us", 4)):
        datasets[org] = tmp_path / f"{org}.json"
        datasets[org].write_text(json.dumps(generate_full(40, seed).dataset))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        served(tmp_path, datasets["emea"], store, systems=("salesforce",), name="emea") as emea,
        served(tmp_path, datasets["us"], store, systems=("salesforce",), name="us") as us,
    ):
        for config, _ in (emea, us):
            checked = run_crmsync("check", "--config", str(config))
            assert checked.returncode == 0, checked.stdout + checked.stderr
