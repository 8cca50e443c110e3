"""A company moving Pipedrive into Salesforce gets each copy under the Account its deal's
organization names, not an Opportunity of no Account that someone must re-parent by hand.
crmsync never makes an Account: none or several of the name, the copy has none and the apply
says why. Everything through the CLI, against the sandboxes over HTTP; the sandbox's data is
set up through its stores, as a person would have edited it in the CRM."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from markupsafe import escape

from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.sandbox_env import run_crmsync


def _configure(world: World) -> None:
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=["salesforce"])
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _em(world: World, system: str) -> Any:
    return world.sandbox.servers[system].emulator


def _plan(world: World, out: Path, *extra: str) -> dict[str, Any]:
    done = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out), *extra
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))


def _apply(world: World, plan: Path) -> dict[str, Any]:
    done = run_crmsync(
        "apply", str(plan), "--config", str(world.config), "--yes", "--format", "json"
    )
    assert done.returncode in (0, 1), done.stderr  # owners Salesforce lacks are refused
    return dict(json.loads(done.stdout))


def _copies_from_pipedrive(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for c in plan["creates"]
        if c["system"] == "salesforce" and c["source"]["system"] == "pipedrive"
    ]


def _file_under(world: World, create: dict[str, Any], name: str) -> None:
    """The copy's source deal moved to a new Pipedrive organization named `name`."""
    em = _em(world, "pipedrive")
    with em.lock:
        org = em.store.orgs.create({"name": name})
        em.store.update(int(create["source"]["id"]), {"org_id": org["id"]})


def _add_accounts(world: World, *names: str) -> list[str]:
    em = _em(world, "salesforce")
    with em.lock:
        return [em.store.add_account(name) for name in names]


def _accounts(world: World) -> list[dict[str, Any]]:
    em = _em(world, "salesforce")
    with em.lock:
        return [dict(a) for a in em.store.tables["Account"]]


def _copy(world: World, entity: str) -> dict[str, Any]:
    """The Opportunity the apply made for `entity`."""
    em = _em(world, "salesforce")
    with em.lock:
        return dict(em.store.by_id[world.members()[entity]["salesforce"]])


def _result(applied: dict[str, Any], world: World, entity: str) -> dict[str, Any]:
    deal_id = world.members()[entity]["salesforce"]
    [result] = [r for r in applied["results"] if r["id"] == deal_id]
    return dict(result)


def _one_copy_under(world: World, tmp_path: Path, name: str) -> tuple[dict[str, Any], Path]:
    """A copy from Pipedrive whose source deal names account `name`, and the plan for it."""
    _configure(world)
    create = _copies_from_pipedrive(_plan(world, tmp_path / "p0.json"))[0]
    _file_under(world, create, name)
    return create, tmp_path / "plan.json"


def test_a_copy_goes_under_the_one_account_of_its_name_and_reads_back_the_same_account(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Nimbus Ventures")
    [account_id] = _add_accounts(world, "Nimbus Ventures")
    plan = _plan(world, saved)
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    assert planned["account"] == {
        "by": "account",
        "name": "Nimbus Ventures",
        "id": None,
        "found": [account_id],
    }
    accounts = len(_accounts(world))
    applied = _apply(world, saved)
    assert _copy(world, create["entity"])["AccountId"] == account_id
    assert _result(applied, world, create["entity"])["reason"] is None
    # read back on the next pull: the same account as its source, so nothing to write
    again = _plan(world, tmp_path / "again.json")
    with open_runtime(str(world.config), connect=False) as rt:
        copy_id = world.members()[create["entity"]]["salesforce"]
        pulled = rt.store.get_deals("salesforce", [copy_id])[copy_id]
    assert pulled["extra"]["account"] == "Nimbus Ventures"
    assert pulled["extra"]["account_id"] == account_id
    mine = [c for c in again["changes"] if c["id"] == copy_id]
    assert mine == [] and create["entity"] not in [c["entity"] for c in again["creates"]]
    # rollback deletes the copy, never the Account
    undone = run_crmsync(
        "rollback", applied["run_id"], "--config", str(world.config), "--apply", "--yes"
    )
    assert undone.returncode == 0, undone.stderr
    assert _em(world, "salesforce").store.by_id[copy_id]["IsDeleted"] is True
    assert len(_accounts(world)) == accounts


def test_a_copy_whose_account_name_no_account_bears_gets_none_and_the_apply_says_so(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Unknown Labs")
    plan = _plan(world, saved)
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    assert planned["account"] == {"by": "account", "name": "Unknown Labs", "id": None, "found": []}
    accounts = len(_accounts(world))
    applied = _apply(world, saved)
    assert _copy(world, create["entity"]).get("AccountId") is None
    result = _result(applied, world, create["entity"])
    assert result["outcome"] == "applied"
    assert result["reason"] == "no Account is named 'Unknown Labs': created without an Account"
    assert len(_accounts(world)) == accounts  # none made


def test_an_account_name_two_accounts_bear_is_not_guessed_and_the_apply_says_so(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Twin Holdings")
    twins = _add_accounts(world, "Twin Holdings", "TWIN HOLDINGS")  # Name IN ignores case
    _plan(world, saved)
    applied = _apply(world, saved)
    assert _copy(world, create["entity"]).get("AccountId") is None
    result = _result(applied, world, create["entity"])
    assert result["outcome"] == "applied"
    assert result["reason"] == (
        f"2 Accounts are named 'Twin Holdings' ({', '.join(sorted(twins))}): not guessed, "
        "created without an Account"
    )


def test_an_account_name_with_a_quote_is_escaped_and_found(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "O'Brien & Co")
    [account_id] = _add_accounts(world, "O'Brien & Co")
    _plan(world, saved)
    applied = _apply(world, saved)
    assert _copy(world, create["entity"])["AccountId"] == account_id
    assert _result(applied, world, create["entity"])["reason"] is None


def test_the_dry_run_names_each_copys_account_and_counts_its_lookups_as_the_apply_does(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    _configure(world)
    out = tmp_path / "plan.json"
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert table.returncode == 0, table.stderr
    plan = json.loads(out.read_text())
    copies = [c for c in plan["creates"] if c["system"] == "salesforce"]
    accounts = [c["account"] for c in copies if c["account"]["by"] == "account"]
    named = [a["name"] for a in accounts]
    assert named
    shown = " ".join(table.stdout.split())
    for account in accounts:
        name, found = account["name"], account["found"]
        said = f"Account {name} ({found[0]})" if found else f"no Account is named {name!r}"
        assert len(found) < 2 and said in shown
    from connectors.salesforce_accounts import account_calls  # the connector's own count

    distinct = {n.casefold(): n for n in named}
    assert plan["summary"]["accounts_by_system"] == {"salesforce": len(distinct)}
    assert f"Accounts to find by name (never made): salesforce {len(distinct)}" in shown
    batches = -(-plan["summary"]["records_to_update"].get("salesforce", 0) // 200)
    lookups = account_calls(distinct.values())
    assert plan["summary"]["api_calls"]["salesforce"] == batches + -(-len(copies) // 200) + lookups
    with open_runtime(str(world.config), connect=False) as rt:
        dry = rt.store.runs.recent(1)[0]
    assert dry.calls["salesforce"]["find accounts"] == lookups  # as the apply looks them up
    applied = _apply(world, out)
    with open_runtime(str(world.config), connect=False) as rt:
        run = rt.store.runs.get(applied["run_id"])
    assert run is not None and run.calls["salesforce"]["find accounts"] == lookups


def test_a_plan_saved_before_creates_named_an_account_applies_without_one(
    small_world: World, tmp_path: Path
) -> None:
    """Its copies get no AccountId, as the plan a person reviewed then said."""
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Reviewed Ltd")
    _add_accounts(world, "Reviewed Ltd")
    plan = _plan(world, saved)
    [planned] = [c for c in plan["creates"] if c["entity"] == create["entity"]]
    assert planned["account"]["name"] == "Reviewed Ltd"  # what a plan names now
    for item in plan["creates"]:
        item.pop("account", None)
    plan["summary"].pop("accounts_by_system", None)
    body = {k: v for k, v in plan.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    plan["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()
    saved.write_text(json.dumps(plan))
    applied = _apply(world, saved)
    assert _copy(world, create["entity"]).get("AccountId") is None
    assert _result(applied, world, create["entity"])["reason"] is None


def _runs(world: World) -> list[dict[str, Any]]:
    done = run_crmsync("runs", "--config", str(world.config), "--format", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_the_dry_run_says_which_account_each_copy_will_find_before_any_write(
    small_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Account of the name, two, none: the table and the plan say it before the apply."""
    world = small_world
    monkeypatch.setenv("COLUMNS", "250")
    _configure(world)
    one, two, none = _copies_from_pipedrive(_plan(world, tmp_path / "p0.json"))[:3]
    for create, name in ((one, "Solo Works"), (two, "Krusty"), (none, "Clearwater SA")):
        _file_under(world, create, name)
    [solo] = _add_accounts(world, "Solo Works")
    krusty = sorted(_add_accounts(world, "Krusty", "krusty"))
    em = _em(world, "salesforce")
    opportunities = len(em.store.tables["Opportunity"])
    out = tmp_path / "plan.json"
    table = run_crmsync(
        "reconcile", "--config", str(world.config), "--dry-run", "--plan-out", str(out)
    )
    assert table.returncode == 0, table.stderr
    creates = {c["entity"]: c for c in json.loads(out.read_text())["creates"]}
    assert creates[one["entity"]]["account"]["found"] == [solo]
    assert creates[two["entity"]]["account"]["found"] == krusty
    assert creates[none["entity"]]["account"]["found"] == []
    shown = " ".join(table.stdout.split())
    assert f"Account Solo Works ({solo})" in shown
    assert f"Account Krusty: 2 are named so ({', '.join(krusty)}): none will be chosen" in shown
    assert "no Account is named 'Clearwater SA': created without one" in shown
    assert len(em.store.tables["Opportunity"]) == opportunities  # nothing written
    with open_runtime(str(world.config), connect=False) as rt:
        dry = rt.store.runs.recent(1)[0]
    assert dry.kind == "reconcile-dry-run" and dry.calls["salesforce"]["find accounts"] >= 1


def test_the_apply_notes_an_account_made_since_the_dry_run_and_the_run_keeps_the_notes(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    _configure(world)
    late, nowhere = _copies_from_pipedrive(_plan(world, tmp_path / "p0.json"))[:2]
    _file_under(world, late, "Late Ltd")
    _file_under(world, nowhere, "Nowhere Inc")
    saved = tmp_path / "plan.json"
    creates = {c["entity"]: c for c in _plan(world, saved)["creates"]}
    assert creates[late["entity"]]["account"]["found"] == []
    [account_id] = _add_accounts(world, "Late Ltd")  # between review and apply
    applied = _apply(world, saved)
    assert _copy(world, late["entity"])["AccountId"] == account_id
    note = (
        "Accounts named 'Late Ltd' changed since the plan: it found none, "
        f"the apply 1 ({account_id})"
    )
    assert _result(applied, world, late["entity"])["reason"] == note
    [run] = [r for r in _runs(world) if r["id"] == applied["run_id"]]
    kept = {n["entity"]: n["note"] for n in run["counts"]["account_notes"]}
    assert kept[late["entity"]] == note
    assert kept[nowhere["entity"]] == (
        "no Account is named 'Nowhere Inc': created without an Account"
    )


def _without_account(world: World) -> list[dict[str, Any]]:
    done = run_crmsync("report", "--config", str(world.config), "--format", "json")
    assert done.returncode in (0, 3), done.stderr  # thresholds may be breached
    return list(json.loads(done.stdout)["data_quality"]["copies_without_account"])


def test_the_report_lists_copies_created_without_an_account_until_one_is_attached(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, "Orphan Works")
    _plan(world, saved)
    applied = _apply(world, saved)
    copy_id = world.members()[create["entity"]]["salesforce"]
    _plan(world, tmp_path / "after.json")  # the next run reads the copy back
    [listed] = [c for c in _without_account(world) if c["id"] == copy_id]
    assert listed["note"] == "no Account is named 'Orphan Works': created without an Account"
    assert listed["run"] == applied["run_id"]
    [account_id] = _add_accounts(world, "Orphan Works")
    em = _em(world, "salesforce")
    with em.lock:  # a person attaches it by hand
        em.store.apply(em.store.check_update(copy_id, {"AccountId": account_id}))
    _plan(world, tmp_path / "attached.json")  # its pull reads the copy's Account
    assert copy_id not in [c["id"] for c in _without_account(world)]


HOSTILE = "<script>document.title='pwned'</script> Works"


def test_the_html_report_lists_copies_created_without_an_account_escaped(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = _one_copy_under(world, tmp_path, HOSTILE)
    em = _em(world, "pipedrive")
    with em.lock:
        em.store.update(int(create["source"]["id"]), {"title": f"{HOSTILE} deal"})
    _plan(world, saved)
    applied = _apply(world, saved)
    copy_id = world.members()[create["entity"]]["salesforce"]
    _plan(world, tmp_path / "after.json")  # the next run reads the copy back
    page = tmp_path / "report.html"
    done = run_crmsync(
        "report", "--config", str(world.config), "--format", "html", "--out", str(page)
    )
    assert done.returncode in (0, 3), done.stderr  # thresholds may be breached
    html = page.read_text(encoding="utf-8")
    assert "<script>document.title" not in html
    section = html.split('<table id="copies-without-account">', 1)[1].split("</table>", 1)[0]
    row = next(r for r in section.split("<tr>") if f"<td>{copy_id}</td>" in r)
    assert "<td>salesforce</td>" in row
    note = f"no Account is named {HOSTILE!r}: created without an Account"
    assert f"<td>{escape(note)}</td>" in row
    assert f"<td>{applied['run_id']}</td>" in row
