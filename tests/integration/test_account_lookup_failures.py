"""A CRM that fails the apply's account lookup (a Salesforce `Name IN` query past its time
limit, a HubSpot portal out of its daily calls) has been sent no copy: its copies are not
attempted, each saying why, not in doubt (which tells a person that copies may exist, and
costs the next apply a marker lookup for each). Against the sandboxes over HTTP, through the
CLI; the fault is the sandbox's, as the CRM would answer."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.copies import make_copies_into
from tests.plans import signed
from tests.sandbox_env import run_crmsync


def _plan(world: World, out: Path) -> list[dict[str, Any]]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(out.read_text())["creates"])


def _apply(world: World, plan: Path) -> tuple[dict[str, Any], str]:
    done = run_crmsync(
        "apply", str(plan), "--config", str(world.config), "--yes", "--format", "json"
    )
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout)), done.stderr


def _fault(world: World, system: str, refusal: str | None = None, **faults: Any) -> None:
    """Set `faults` of `system`'s sandbox; `refusal`: the 400 HubSpot's searches answer."""
    server = world.sandbox.servers[system]
    server.faults.set(replace(server.faults.faults, **faults))
    if refusal is not None:
        server.emulator.search_refusal = refusal


def _journaled(world: World, run_id: str) -> Counter[str]:
    """The states of the run's journal rows."""
    with open_runtime(str(world.config), connect=False) as rt:
        return Counter(r.state.value for r in rt.store.journal.entries(run_id))


def _with_few_names(saved: Path, system: str, most: int) -> list[dict[str, Any]]:
    """The plan saved at `saved` left with the creates in `system` of its first `most` account
    names (a plan a person cut down before applying it); those creates."""
    plan = json.loads(saved.read_text())
    names: list[str] = []
    kept = []
    for create in plan["creates"]:
        name = (create.get("organization") or create.get("account") or {}).get("name")
        if create["system"] != system or not name:
            continue
        if name.casefold() not in names and len(names) < most:
            names.append(name.casefold())
        if name.casefold() in names:
            kept.append(create)
    plan["creates"] = kept
    saved.write_text(json.dumps(signed(plan)))
    return kept


def _copies_not_attempted(
    world: World, tmp_path: Path, system: str, lookup: str, **faults: Any
) -> tuple[list[dict[str, Any]], str]:
    """The plan's creates in `system`, and the stderr of their apply with `faults` set (the
    lookup's failure: `_fault`)."""
    creates = [c for c in _plan(world, tmp_path / "plan.json") if c["system"] == system]
    assert any(c["account"]["by"] == "account" for c in creates), "no copy names an account"
    _fault(world, system, **faults)
    applied, stderr = _apply(world, tmp_path / "plan.json")
    results = [r for r in applied["results"] if r["system"] == system and r["op"] == "create"]
    assert len(results) == len(creates)
    for result in results:
        assert result["outcome"] == "not_sent", result
        assert result["reason"].startswith(f"not attempted: {system}: {lookup}: "), result
        assert "in doubt" not in result["reason"]
    assert "in doubt" not in stderr
    journaled = _journaled(world, applied["run_id"])
    assert journaled["sent"] == journaled["intended"] == 0, journaled
    return creates, stderr


def test_a_salesforce_account_query_that_times_out_sends_no_copy_and_leaves_none_in_doubt(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "salesforce")
    store = world.sandbox.servers["salesforce"].emulator.store
    before = len(store.tables["Opportunity"])
    creates, stderr = _copies_not_attempted(
        world, tmp_path, "salesforce", "find accounts", timed_out_sobjects=("Account",)
    )
    assert "QUERY_TIMEOUT" in stderr
    assert len(store.tables["Opportunity"]) == before
    # the next apply, the query answered, creates them without looking for earlier copies
    _fault(world, "salesforce", timed_out_sobjects=())
    again, _ = _apply(world, tmp_path / "plan.json")
    created = [r for r in again["results"] if r["system"] == "salesforce" and r["op"] == "create"]
    assert len(created) == len(creates)
    applied = sum(r["outcome"] == "applied" for r in created)
    assert applied and len(store.tables["Opportunity"]) == before + applied
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(again["run_id"])
    assert run is not None and "find_created" not in run.calls["salesforce"]


def test_a_hubspot_company_search_refused_sends_no_copy_and_leaves_none_in_doubt(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    make_copies_into(world, "hubspot")
    emulator = world.sandbox.servers["hubspot"].emulator
    before = len(emulator.store.live)
    refusal = "There was a problem with the request."
    _, stderr = _copies_not_attempted(world, tmp_path, "hubspot", "find companies", refusal=refusal)
    assert refusal in stderr
    assert len(emulator.store.live) == before


def test_a_pipedrive_organization_search_refused_sends_no_copy_and_leaves_none_in_doubt(
    small_world: World, tmp_path: Path
) -> None:
    """Up to 10 names are searched one by one: the first search refused, no copy was sent
    (the organizations they go to are found before the first, those to make made with it).
    The plan is cut to 5 names, as a person may cut one down before applying it."""
    world = small_world
    make_copies_into(world, "pipedrive")
    emulator = world.sandbox.servers["pipedrive"].emulator
    with emulator.lock:
        before = len(emulator.store.deals)
    _plan(world, tmp_path / "plan.json")
    creates = _with_few_names(tmp_path / "plan.json", "pipedrive", 5)
    emulator.search_refusal = "Invalid input: term"
    applied, stderr = _apply(world, tmp_path / "plan.json")
    results = [r for r in applied["results"] if r["system"] == "pipedrive" and r["op"] == "create"]
    assert len(results) == len(creates)
    for result in results:
        assert result["outcome"] == "not_sent", result
        assert result["reason"].startswith("not attempted: pipedrive: find organization: ")
    assert "in doubt" not in stderr
    journaled = _journaled(world, applied["run_id"])
    assert journaled["sent"] == journaled["intended"] == 0, journaled
    with emulator.lock:
        assert len(emulator.store.deals) == before


def test_an_account_name_no_pipedrive_organization_can_bear_files_its_copy_alone_elsewhere(
    small_world: World, tmp_path: Path
) -> None:
    """A source's account name over the 255 characters an organization's name holds is never
    searched (its URL past the limit failed the search, and with it every copy of the run,
    every night): its copy goes to create_org_id, saying why, and the others to theirs."""
    make_copies_into(small_world, "pipedrive")
    saved = tmp_path / "plan.json"
    _plan(small_world, saved)
    _with_few_names(saved, "pipedrive", 5)
    plan = json.loads(saved.read_text())
    long = next(c for c in plan["creates"] if c["system"] == "pipedrive")
    long["organization"]["name"] = "Overlong " + "x" * 70_000
    saved.write_text(json.dumps(signed(plan)))
    applied, _ = _apply(small_world, saved)
    results = [r for r in applied["results"] if r["system"] == "pipedrive" and r["op"] == "create"]
    assert len(results) == len(plan["creates"]) > 1
    assert Counter(r["outcome"] for r in results) == {"applied": len(results)}, results
    (note,) = [r["reason"] for r in results if "over 255" in (r["reason"] or "")]
    assert "no organization can be named 'Overlong xxx" in note
    assert "(over 255 characters): filed under create_org_id" in note
