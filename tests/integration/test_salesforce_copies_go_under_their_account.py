"""Salesforce copies under their Accounts, what only Salesforce's tests cover: the dry run's
table says which Account each copy will find, the apply notes an Account made since, and the
report lists copies made without one until a person attaches it. The scenarios Salesforce
shares with HubSpot are in test_copies_go_under_their_account.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.copies import (
    add_salesforce_accounts,
    apply_plan,
    copies_into,
    emulator,
    file_under_new_organization,
    make_copies_into,
    one_copy_from_pipedrive,
    plan_of,
    result_of,
    salesforce_copy,
)
from tests.sandbox_env import run_crmsync


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
    make_copies_into(world, "salesforce")
    first = plan_of(world, tmp_path / "p0.json")
    one, two, none = copies_into(first, "salesforce", "pipedrive")[:3]
    for create, name in ((one, "Solo Works"), (two, "Krusty"), (none, "Clearwater SA")):
        file_under_new_organization(world, create, name)
    [solo] = add_salesforce_accounts(world, "Solo Works")
    krusty = sorted(add_salesforce_accounts(world, "Krusty", "krusty"))
    em = emulator(world, "salesforce")
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
    make_copies_into(world, "salesforce")
    first = plan_of(world, tmp_path / "p0.json")
    late, nowhere = copies_into(first, "salesforce", "pipedrive")[:2]
    file_under_new_organization(world, late, "Late Ltd")
    file_under_new_organization(world, nowhere, "Nowhere Inc")
    saved = tmp_path / "plan.json"
    creates = {c["entity"]: c for c in plan_of(world, saved)["creates"]}
    assert creates[late["entity"]]["account"]["found"] == []
    [account_id] = add_salesforce_accounts(world, "Late Ltd")  # between review and apply
    applied = apply_plan(world, saved)
    assert salesforce_copy(world, late["entity"])["AccountId"] == account_id
    note = (
        "Accounts named 'Late Ltd' changed since the plan: it found none, "
        f"the apply 1 ({account_id})"
    )
    assert result_of(applied, world, late["entity"], "salesforce")["reason"] == note
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
    create, saved = one_copy_from_pipedrive(world, tmp_path, "salesforce", "Orphan Works")
    plan_of(world, saved)
    applied = apply_plan(world, saved)
    copy_id = world.members()[create["entity"]]["salesforce"]
    plan_of(world, tmp_path / "after.json")  # the next run reads the copy back
    [listed] = [c for c in _without_account(world) if c["id"] == copy_id]
    assert listed["note"] == "no Account is named 'Orphan Works': created without an Account"
    assert listed["run"] == applied["run_id"]
    [account_id] = add_salesforce_accounts(world, "Orphan Works")
    em = emulator(world, "salesforce")
    with em.lock:  # a person attaches it by hand
        em.store.apply(em.store.check_update(copy_id, {"AccountId": account_id}))
    plan_of(world, tmp_path / "attached.json")  # its pull reads the copy's Account
    assert copy_id not in [c["id"] for c in _without_account(world)]


HOSTILE = "<script>document.title='pwned'</script> Works"


def test_the_html_report_lists_copies_created_without_an_account_escaped(
    small_world: World, tmp_path: Path
) -> None:
    world = small_world
    create, saved = one_copy_from_pipedrive(world, tmp_path, "salesforce", HOSTILE)
    em = emulator(world, "pipedrive")
    with em.lock:
        em.store.update(int(create["source"]["id"]), {"title": f"{HOSTILE} deal"})
    plan_of(world, saved)
    applied = apply_plan(world, saved)
    copy_id = world.members()[create["entity"]]["salesforce"]
    plan_of(world, tmp_path / "after.json")  # the next run reads the copy back
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
