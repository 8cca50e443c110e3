"""`crmsync links`: inferred links are unconfirmed, explicit ones confirmed; a person splits a
wrong match (never matched again, incremental runs planning as full ones do) and joins deals by
hand (one entity from then on)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from mapping.model import Ref
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID
from sync.cli import main
from sync.reconcile_run import ReconcileOutcome, run_reconcile
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.fixtures_store import store_url_for
from tests.integration.conftest import World, build_world
from tests.integration.test_incremental_reconcile import (
    _comparable,
    _pull_then_analyze,
    _without_pipedrive,
)


def _links(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, ["links", *args, "--config", str(world.config)])
    assert out.exit_code == 0, out.output
    return out


def _shown(world: World, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_links(world, "show", "--format", "json", *args).stdout)
    return rows


def _entity_of(world: World) -> dict[Ref, str]:
    return {Ref(r["system"], r["id"]): r["entity"] for r in _shown(world)}


def test_people_split_a_wrong_match_and_join_deals_by_hand(world: World) -> None:
    world.reconcile("links-r1")
    rows = _shown(world)
    assert {r["method"] for r in rows} >= {"key", "external_id"}
    for r in rows:  # the CRMs' own id fields are their word; a key match is an inference
        assert r["confirmed"] == (r["method"] in ("external_id", "link_id", "created", "manual"))
    doubtful = _shown(world, "--unconfirmed")
    assert doubtful and {r["entity"] for r in doubtful} < {r["entity"] for r in rows}
    entity = doubtful[0]["entity"]
    pair = sorted(Ref(r["system"], r["id"]) for r in doubtful if r["entity"] == entity)

    _links(world, "split", entity)
    assert not set(pair) & set(_entity_of(world))
    runs = CliRunner().invoke(main, ["runs", "--config", str(world.config), "--format", "json"])
    latest = json.loads(runs.stdout)[0]  # the correction is in the run history
    assert (latest["kind"], latest["status"]) == ("links", "ok")
    assert latest["counts"]["entities"] == {entity: [f"{r.system}:{r.id}" for r in pair]}
    full, incremental = _pull_then_analyze(world, "links-r2")
    assert incremental.scope.incremental
    assert _comparable(incremental) == _comparable(full)
    unmatched = {Ref(u["system"], u["id"]) for u in incremental.plan.unmatched}
    assert set(pair) <= unmatched, "split deals matched again by their key"

    _links(world, "join", *(f"{r.system}:{r.id}" for r in pair))
    world.reconcile("links-r3")
    joined = _entity_of(world)
    assert joined[pair[0]] == joined[pair[1]]
    rows = _shown(world, "--entity", joined[pair[0]])
    assert [(r["method"], r["confirmed"]) for r in rows] == [("manual", True)] * len(pair)
    _, after = _pull_then_analyze(world, "links-r4")
    assert not set(pair) & {Ref(u["system"], u["id"]) for u in after.plan.unmatched}


def test_confirm_marks_an_inferred_match_checked(world: World) -> None:
    world.reconcile("links-c1")
    entity = _shown(world, "--unconfirmed")[0]["entity"]
    _links(world, "confirm", entity)
    assert {r["confirmed"] for r in _shown(world, "--entity", entity)} == {True}
    assert entity not in {r["entity"] for r in _shown(world, "--unconfirmed")}


def test_corrections_that_cannot_be_made_change_nothing(world: World) -> None:
    world.reconcile("links-e1")
    before = _shown(world)
    linked = before[0]
    runner = CliRunner()
    cases = [
        (["join", f"{linked['system']}:{linked['id']}", "pipedrive:999999"], "already"),
        (["join", "hubspot:no-such-deal", "pipedrive:1"], "not in the store"),
        (["join", "hubspot:1", "hubspot:2"], "one deal per instance"),
        (["join", "hubspot"], "not INSTANCE:ID"),
        (["split", "E-no-such-entity"], "no links for entity E-no-such-entity"),
        (["confirm", "E-no-such-entity"], "no links for entity E-no-such-entity"),
    ]
    for args, message in cases:
        out = runner.invoke(main, ["links", *args, "--config", str(world.config)])
        assert out.exit_code == 2, (args, out.output)
        assert message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert _shown(world) == before


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A small three-CRM sandbox and a store of each dialect, fresh for each test."""
    with store_url_for(request.param, tmp_path) as url:
        yield from build_world(tmp_path, url, deals=60, seed=3)


def _configure(world: World, **push: Any) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(push)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _run(world: World, *, dry_run: bool) -> ReconcileOutcome:
    with open_runtime(str(world.config)) as rt:
        return run_reconcile(rt, dry_run=dry_run, yes=True)


def _in_pipedrive(world: World, hubspot_id: str) -> list[str]:
    """Ids of the live Pipedrive deals linked to that HubSpot deal, as the CRM holds them now
    (not by title: the Salesforce deal took the HubSpot deal's name while the two were joined,
    and is copied into Pipedrive on its own once split)."""
    url = world.sandbox.servers["pipedrive"].url
    deals = requests.get(f"{url}/__sandbox/dump", timeout=10).json()["pipedrive"]["deals"]
    return sorted(
        str(d["id"]) for d in deals if d.get(PD_FIELD_HUBSPOT_ID) == hubspot_id and not d["deleted"]
    )


def test_a_split_keeps_crmsyncs_copies_with_the_deal_they_were_copied_from(
    fresh_world: World,
) -> None:
    """A person joins two deals by mistake; crmsync copies the entity into the CRM lacking
    it (from the HubSpot deal); the person splits the entity. The copy is that HubSpot deal's
    copy: it stays with it, the Salesforce deal goes, and no run copies the HubSpot deal into
    Pipedrive again or copies the copy."""
    world = fresh_world
    _configure(world, create_missing=True)
    first = _run(world, dry_run=True).result
    held = {r for a in first.matched.ambiguous for r in (a.ref, *a.candidates)}
    held |= {Ref(d.instance, i) for d in first.matched.duplicates for i in d.ids}
    alone = {
        system: [r for r in refs if r not in held]
        for system, refs in first.matched.unmatched.items()
    }
    sf, hs = alone["salesforce"][0], alone["hubspot"][0]
    _links(world, "join", f"{sf.system}:{sf.id}", f"{hs.system}:{hs.id}")
    _run(world, dry_run=False)  # copies the joined entity into Pipedrive
    entity = _entity_of(world)[hs]
    [copy] = [r for r, e in _entity_of(world).items() if e == entity and r.system == "pipedrive"]
    assert _in_pipedrive(world, hs.id) == [copy.id]

    out = _links(world, "split", entity)
    assert f"pipedrive:{copy.id}" in out.stdout
    full, incremental = _pull_then_analyze(world, "copies-split")
    assert incremental.scope.incremental and _comparable(incremental) == _comparable(full)
    _run(world, dry_run=False)
    plan = _run(world, dry_run=True).result.plan
    linked = _entity_of(world)
    assert linked[copy] == linked[hs], "crmsync's copy was split from the deal it copies"
    assert linked.get(sf) != linked[hs]
    assert _in_pipedrive(world, hs.id) == [copy.id], "the HubSpot deal was copied again"
    copied_from = {(c["source"]["system"], c["source"]["id"]) for c in plan.creates}
    assert ("pipedrive", copy.id) not in copied_from


def test_splitting_a_deal_from_nothing_but_its_own_copies_is_refused(fresh_world: World) -> None:
    world = fresh_world
    _configure(world, create_missing=True)
    _run(world, dry_run=False)  # copies each deal found in one CRM only into the other two
    _run(world, dry_run=True)
    rows = _shown(world)
    copies = {r["entity"] for r in rows if r["method"] == "created"}
    entity = next(
        e
        for e in sorted(copies)
        if sum(r["entity"] == e and r["method"] != "created" for r in rows) == 1
    )
    out = CliRunner().invoke(main, ["links", "split", entity, "--config", str(world.config)])
    assert out.exit_code == 2, out.output
    assert "crmsync's copies" in out.stderr and "nothing else" in out.stderr
    assert _shown(world) == rows


def _writes(world: World) -> int:
    """Write requests the three sandboxes have served so far."""
    verbs = ("POST", "PATCH", "PUT", "DELETE")
    return sum(
        n
        for stats in world.stats().values()
        for request, n in stats["requests"].items()
        if request.split()[0] in verbs and "search" not in request and "batch/read" not in request
    )


def test_a_plan_made_before_a_split_or_a_join_of_its_deals_is_refused_without_writing(
    fresh_world: World, tmp_path: Path
) -> None:
    world = fresh_world
    _configure(world, create_missing=True)
    runner = CliRunner()

    def saved_plan(name: str) -> tuple[Path, dict[str, Any]]:
        path = tmp_path / name
        args = ["reconcile", "--dry-run", "--plan-out", str(path), "--format", "json"]
        out = runner.invoke(main, [*args, "--config", str(world.config)])
        assert out.exit_code in (0, 3), out.output
        return path, json.loads(path.read_text())

    def refused(path: Path, words: str) -> None:
        writes = _writes(world)
        out = runner.invoke(main, ["apply", str(path), "--yes", "--config", str(world.config)])
        assert out.exit_code == 2, out.output
        assert words in out.stderr and "nothing written" in out.stderr, out.stderr
        assert _writes(world) == writes

    # A change between deals a person then says are not the same deal.
    path, plan = saved_plan("before-split.json")
    change = next(c for c in plan["changes"] if c["system"] != "salesforce")
    _links(world, "split", change["entity"])
    refused(path, f"{change['system']}:{change['id']} split")

    # A copy of a deal a person then joins with its copy in that CRM.
    path, plan = saved_plan("before-join.json")
    alone = {(u["system"], u["id"]) for u in plan["unmatched"]}
    create = next(
        c
        for c in plan["creates"]
        if c["system"] == "hubspot" and (c["source"]["system"], c["source"]["id"]) in alone
    )
    source = f"{create['source']['system']}:{create['source']['id']}"
    unmatched = next(u for u in plan["unmatched"] if u["system"] == "hubspot")
    _links(world, "join", source, f"hubspot:{unmatched['id']}")
    refused(path, f"{source} joined")


def test_join_refuses_a_deal_of_an_instance_the_config_no_longer_has(small_world: World) -> None:
    """Its deals are still in the store, but no run loads them: such a link could never hold."""
    world = small_world
    unmatched = world.reconcile("gone-1").plan.unmatched
    sf, pd = (next(u for u in unmatched if u["system"] == s) for s in ("salesforce", "pipedrive"))
    _without_pipedrive(world)
    world.reconcile("gone-2")
    args = ["links", "join", f"salesforce:{sf['id']}", f"pipedrive:{pd['id']}"]
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == 2, out.output
    assert "pipedrive is not an instance in crmsync.yaml" in out.stderr, out.stderr
    assert Ref("salesforce", sf["id"]) not in _entity_of(world)


def test_links_show_prints_an_entity_id_from_a_crm_marker_as_written(small_world: World) -> None:
    """An entity id can be CRM text: the marker two deals carry in their crmsync id field."""
    world = small_world
    unmatched = world.reconcile("marker-1").plan.unmatched
    hs, pd = (
        next(u["id"] for u in unmatched if u["system"] == s) for s in ("hubspot", "pipedrive")
    )
    marker = "E\x1b[2J\x1b]0;owned\x07\u202e"
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    pipedrive: Any = world.sandbox.servers["pipedrive"].emulator
    with hubspot.lock:
        hubspot.store.update(hs, {"crmsync_id": marker})
    with pipedrive.lock:
        pipedrive.store.update(int(pd), {PD_FIELD_CRMSYNC_ID: marker})
    world.reconcile("marker-2")
    assert _entity_of(world)[Ref("hubspot", hs)] == marker
    for args in ([], ["--entity", marker]):
        out = _links(world, "show", *args).stdout
        assert "E\\x1b[2J\\x1b]0;owned\\x07\\u202e" in out
        assert not {"\x1b", "\x07", "\u202e"} & set(out), args


def test_with_confirmed_only_a_key_match_is_written_to_once_a_person_confirms_it(
    fresh_world: World,
) -> None:
    """push.confirmed_only: an edit in one CRM reaches the others along a link the CRMs vouch
    for at once, along a key match only after `links confirm`; until then the plan lists the
    entity as held and an apply writes nothing of it."""
    world = fresh_world
    _configure(world, confirmed_only=True)
    _run(world, dry_run=False)  # links everything, writes along explicit links only
    rows = _shown(world)
    keyed = {r["entity"] for r in rows if not r["confirmed"] and r["system"] == "hubspot"}
    vouched = {r["entity"] for r in rows if r["confirmed"] and r["system"] == "hubspot"}
    by_entity = {(r["entity"], r["system"]): r["id"] for r in rows}
    doubtful, sure = sorted(keyed)[0], sorted(vouched - keyed)[0]
    bump_amounts(world, "hubspot", [by_entity[doubtful, "hubspot"], by_entity[sure, "hubspot"]])

    table = CliRunner(env={"COLUMNS": "300"}).invoke(
        main, ["reconcile", "--dry-run", "--config", str(world.config)]
    )
    assert "held until their links are confirmed" in table.stdout, table.output
    held_section = table.stdout.split("Held (push.confirmed_only")[1]
    assert doubtful in held_section, table.stdout
    assert re.search(r"\b1 change\b|\b(?!1\b)\d+ changes\b", held_section), held_section
    held = _run(world, dry_run=False).plan_json
    written = {c["entity"] for c in held["changes"]}
    assert sure in written and doubtful not in written
    [item] = [h for h in held["held"] if h["entity"] == doubtful]
    assert item["changes"] >= 1 and {link["method"] for link in item["links"]} == {"key"}
    assert held["summary"]["held"] == len(held["held"])
    again = _run(world, dry_run=True).plan_json  # nothing of it was written: still held
    assert doubtful in {h["entity"] for h in again["held"]}

    _links(world, "confirm", doubtful)
    released = _run(world, dry_run=False).plan_json
    assert {c["entity"] for c in released["changes"]} == {doubtful}
    assert not released["held"]
    assert not _run(world, dry_run=True).plan_json["changes"]  # written: every CRM agrees
