"""After `crmsync links split`, with `push.create_missing` on, each split-off deal is copied into
the CRM lacking it, and crmsync's copy is not taken for a same-key duplicate of the deal a
person said is another: the CRMs end up equal. Deals a person entered twice still are
duplicates. Driven through the CLI against the Salesforce and HubSpot sandboxes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connectors.sandbox.generator import generate
from sync.cli import main
from tests.sandbox_env import SandboxEnv, make_env

GRINGOTTS = "Gringotts GmbH"
TWINS = ("0065g0000000091AAA", "0065g0000000092AAA")  # one deal a person entered twice


def _dataset() -> dict[str, Any]:
    """Salesforce and HubSpot each hold a "Gringotts GmbH" deal of one owner and close month,
    linked by no id field (so matched by key), and Salesforce holds `TWINS`, one deal entered
    twice (same name, owner, close month), which HubSpot lacks."""
    dataset, _ = generate(4, 7)
    salesforce, hubspot = dataset["salesforce"], dataset["hubspot"]
    opportunity = salesforce["Opportunity"][0]  # the generator plants nothing on its first
    [deal] = [d for d in hubspot["deals"] if d["properties"]["salesforce_opportunity_id"]
              == opportunity["Id"]]  # fmt: skip
    opportunity.update(Name=GRINGOTTS, HubSpot_Deal_Id__c=None, Pipedrive_Deal_Id__c=None)
    deal["properties"].update(
        dealname=GRINGOTTS, salesforce_opportunity_id=None, pipedrive_deal_id=None
    )
    twins = []
    for twin_id in TWINS:
        twin = copy.deepcopy(opportunity)
        twin.update(Id=twin_id, Name="Ollivanders Ltd — Wand Fleet 2026")
        twin["attributes"]["url"] = twin["attributes"]["url"][:-18] + twin_id
        twins.append(twin)
    salesforce["Opportunity"] = [opportunity, *twins]
    hubspot["deals"] = [deal]
    return {"salesforce": salesforce, "hubspot": hubspot}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SandboxEnv]:
    store = f"sqlite:///{tmp_path / 'crmsync.db'}"
    started = make_env(
        tmp_path / "world",
        _dataset(),
        store,
        systems=("salesforce", "hubspot"),
        push={"create_missing": True},
    )
    try:
        yield started
    finally:
        started.sandbox.stop()


def _crmsync(env: SandboxEnv, *args: str, refused: bool = False) -> str:
    out = CliRunner().invoke(main, [*args, "--config", str(env.config)])
    # 3: unmatched deals above the limits; 1: a copy the CRM refused
    assert out.exit_code in ((1,) if refused else (0, 3)), out.output
    return out.stdout


def _reconcile(env: SandboxEnv, *, apply: bool, refused: bool = False) -> dict[str, Any]:
    args = ["--yes"] if apply else ["--dry-run"]
    out = _crmsync(env, "reconcile", *args, "--format", "json", refused=refused)
    plan: dict[str, Any] = json.loads(out)
    return plan


def _gringotts(env: SandboxEnv) -> dict[str, list[str]]:
    """Instance -> the ids of its live Gringotts deals, as the CRM holds them now."""
    dump = env.dump()
    return {
        "salesforce": sorted(
            o["Id"] for o in dump["salesforce"]["Opportunity"]
            if o["Name"] == GRINGOTTS and not o["IsDeleted"]
        ),
        "hubspot": sorted(
            d["id"] for d in dump["hubspot"]["deals"]
            if d["properties"]["dealname"] == GRINGOTTS and not d.get("archived")
        ),
    }  # fmt: skip


def _duplicates(plan: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return sorted((d["system"], sorted(d["ids"])) for d in plan["duplicates"])


def test_deals_split_apart_are_copied_and_their_copies_are_no_duplicates_of_them(
    env: SandboxEnv,
) -> None:
    twins = ("salesforce", sorted(TWINS))
    first = _reconcile(env, apply=True)
    assert _duplicates(first) == [twins]
    [sf_original], [hs_original] = _gringotts(env).values()
    pair = {("hubspot", hs_original), ("salesforce", sf_original)}
    [entity] = [e for e, members in _linked(env).items() if members == pair]  # by their key

    said = _crmsync(env, "links", "split", entity)
    assert "copies them into the CRMs lacking them" in said, said
    # As the user met it: the HubSpot deal is copied into Salesforce first, while HubSpot
    # refuses (once) the copy of the Salesforce deal.
    [into_hubspot] = [c["entity"] for c in _reconcile(env, apply=False)["creates"]
                      if c["system"] == "hubspot"]  # fmt: skip
    env.faults(["hubspot"], fail_ids=(into_hubspot,))
    _reconcile(env, apply=True, refused=True)
    assert [len(ids) for ids in _gringotts(env).values()] == [2, 1]
    env.faults(["hubspot"])
    plan = _reconcile(env, apply=True)

    assert _duplicates(plan) == [twins], "a copy was taken for a duplicate of its split-off deal"
    copied = [(c["system"], c["source"]["id"]) for c in plan["creates"]]
    assert copied == [("hubspot", sf_original)]
    sf, hs = _gringotts(env).values()
    assert len(sf) == len(hs) == 2, "the split-off Salesforce deal was never copied into HubSpot"
    again = _reconcile(env, apply=False)
    assert (again["changes"], again["creates"], again["conflicts"]) == ([], [], [])
    assert _duplicates(again) == [twins]  # still reported, and not copied while duplicated
    assert {(u["system"], u["id"]) for u in again["unmatched"]} == {
        ("salesforce", t) for t in TWINS
    }

    # Salesforce's copy of the HubSpot deal stays told apart from the Salesforce deal once
    # HubSpot is retired (its deals no longer read), and once the store forgets it.
    _retire_hubspot(env)
    assert _duplicates(_reconcile(env, apply=False)) == [twins]
    _crmsync(env, "forget", "hubspot", "--apply", "--yes")
    assert _duplicates(_reconcile(env, apply=False)) == [twins]


def _retire_hubspot(env: SandboxEnv) -> None:
    """As README "Retiring an instance" says: the instance and every key naming it go."""
    document = yaml.safe_load(env.config.read_text())
    del document["systems"]["hubspot"]
    document["systems"]["salesforce"]["external_ids"].pop("hubspot")
    document["push"]["targets"] = ["salesforce"]
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _linked(env: SandboxEnv) -> dict[str, set[tuple[str, str]]]:
    rows = json.loads(_crmsync(env, "links", "show", "--format", "json"))
    linked: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        linked.setdefault(row["entity"], set()).add((row["system"], row["id"]))
    return linked
