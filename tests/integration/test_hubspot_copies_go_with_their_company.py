"""HubSpot copies with their companies, what only HubSpot's tests cover: a token that may not
read companies, the dry run on a name two companies bear, and a company search HubSpot refuses.
The scenarios HubSpot shares with Salesforce are in test_copies_go_under_their_account.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import World
from tests.integration.copies import (
    add_hubspot_companies,
    apply_plan,
    create_of,
    emulator,
    hubspot_copy_companies,
    one_copy_from_pipedrive,
    plan_of,
    result_of,
)
from tests.sandbox_env import run_crmsync


def test_a_token_that_may_not_read_companies_makes_the_copies_without_one_saying_why(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, "hubspot", "Scoped Out Inc")
    add_hubspot_companies(world, "Scoped Out Inc")
    create_of(plan_of(world, saved), create)
    emulator(world, "hubspot").companies_scope = False  # no crm.objects.companies.read
    applied = apply_plan(world, saved)
    assert hubspot_copy_companies(world, create["entity"]) == {}
    result = result_of(applied, world, create["entity"], "hubspot")
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        "HubSpot companies are not readable: grant crm.objects.companies.read to the app: "
        "created without a company"
    )


def test_the_dry_run_says_a_name_two_companies_bear_will_have_none(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    create, saved = one_copy_from_pipedrive(world, tmp_path, "hubspot", "Krusty Twins Ltd")
    twins = sorted(add_hubspot_companies(world, "Krusty Twins Ltd", "KRUSTY TWINS LTD"))
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(saved)
    )
    assert table.returncode == 0, table.stderr
    planned = create_of(json.loads(saved.read_text()), create)
    assert planned["account"]["found"] == twins
    shown = " ".join(table.stdout.split())
    said = f"company Krusty Twins Ltd: 2 are named so ({', '.join(twins)}): none will be chosen"
    assert said in shown


def test_a_dry_run_whose_company_search_is_refused_still_plans_and_says_so(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full pull lists deals (no search): only the dry run's company lookup is refused."""
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    create, saved = one_copy_from_pipedrive(world, tmp_path, "hubspot", "Refused Corp")
    refusal = "There was a problem with the request."
    emulator(world, "hubspot").search_refusal = refusal
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--full", "--plan-out", str(saved)
    )
    assert table.returncode == 0, table.stderr
    planned = create_of(json.loads(saved.read_text()), create)
    why = planned["account"]["not_looked_up"]
    assert why.startswith("hubspot: find companies: ") and refusal in why
    assert "found" not in planned["account"]
    shown = " ".join(table.stdout.split())
    assert f"company Refused Corp: not looked up: {why}" in shown
