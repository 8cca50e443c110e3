"""`reconcile --dry-run` in its default table format is what people read line by line before
a migration: every write the plan would make is in it, not only counted."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from tests.integration.conftest import World


def _dry_run(world: World, fmt: str) -> str:
    args = ["reconcile", "--dry-run", "--config", str(world.config), "--format", fmt]
    out = CliRunner(env={"COLUMNS": "300"}).invoke(main, args)
    assert out.exit_code == 0, out.output
    return str(out.stdout)


def _rows(text: str, *cells: str) -> list[str]:
    return [line for line in text.splitlines() if all(cell in line for cell in cells)]


def _synced_then_deleted_in_salesforce(world: World) -> None:
    """A reconciled world in which a person then deletes a deal all three CRMs hold, in
    Salesforce: one deleted deal, live in two CRMs."""
    out = CliRunner().invoke(main, ["reconcile", "--config", str(world.config), "--yes"])
    assert out.exit_code in (0, 1), out.output
    ids = next(i for i in world.members().values() if len(i) == 3)
    with open_runtime(str(world.config)) as rt:
        connector = rt.connectors["salesforce"]
        assert connector.delete_deals([ids["salesforce"]])[0].ok  # type: ignore[attr-defined]


def test_the_table_plan_lists_each_create_and_each_delete_it_would_apply(
    small_world: World,
) -> None:
    world = small_world
    _synced_then_deleted_in_salesforce(world)
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(propagate_deletes=True, create_missing=True)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")

    calls = plan["summary"]["api_calls"]
    shown_calls = ", ".join(f"{s} {n}" for s, n in sorted(calls.items()) if n)
    assert _rows(text, "estimated write calls:", shown_calls), text
    [deleted] = [d for d in plan["deleted"] if d["propagate"]]
    for live in deleted["live"]:
        assert _rows(text, live["system"], live["id"], "delete"), f"{live} not shown:\n{text}"
    assert plan["creates"]
    for create in plan["creates"]:
        source = create["source"]
        shown = _rows(text, create["system"], f"{source['system']} {source['id']}")
        assert shown, f"{create} not shown:\n{text}"


def test_the_deleted_table_counts_deleted_deals_as_the_plan_summary_does(
    small_world: World,
) -> None:
    """The summary line counts deleted deals; the table has a row per copy still live: its
    title said 2 where the summary said 1."""
    world = small_world
    _synced_then_deleted_in_salesforce(world)
    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deleted = len(plan["deleted"])
    assert sum(len(d["live"]) for d in plan["deleted"]) > deleted
    assert _rows(text, f"{deleted} deleted"), text
    title = re.search(r"Deleted in one CRM, live in another \((\d+)", text)
    assert title is not None and int(title.group(1)) == deleted, text


def test_deal_names_that_look_like_markup_are_shown_as_written(small_world: World) -> None:
    """Names come from the CRMs: `[/]` in one once failed the whole table (rich read it as a
    closing tag), and `[b]...[/b]` would have been shown as formatting."""
    world = small_world
    names = {"Acme [/] Holdings", "[b]Globex[/b] [red]renewal"}
    em: Any = world.sandbox.servers["hubspot"].emulator
    with em.lock:  # as users renaming two deals there
        for record_id, name in zip(sorted(em.store.live)[:2], sorted(names), strict=True):
            em.store.update(record_id, {"dealname": name})
    text = _dry_run(world, "table")
    for name in names:
        assert _rows(text, name), f"{name!r} not shown:\n{text}"


def test_on_an_80_column_terminal_every_record_id_is_shown_whole(small_world: World) -> None:
    """People copy ids from the plan into the CRM's search: Salesforce's 18 characters used to
    fold over two lines."""
    world = small_world
    plan = json.loads(_dry_run(world, "json"))
    args = ["reconcile", "--dry-run", "--config", str(world.config)]
    text = str(CliRunner(env={"COLUMNS": "80"}).invoke(main, args).stdout)
    ids = {c["id"] for c in plan["changes"]} | {u["id"] for u in plan["unmatched"]}
    assert any(len(i) == 18 for i in ids)  # Salesforce's
    missing = sorted(i for i in ids if i not in text)
    assert not missing, f"cut or folded: {missing[:5]}\n{text}"


def test_unmatched_and_ambiguous_deals_are_shown_with_their_stage_and_amount(
    small_world: World,
) -> None:
    """What people decide by whether a lone deal is a missed match (and `links join` it)."""
    world = small_world
    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deals = _pulled(world)
    shown = [(u["system"], u["id"]) for u in plan["unmatched"]]
    shown += [(a["instance"], c) for a in plan["ambiguous"] for c in a["candidates"]]
    assert plan["ambiguous"] and len(shown) > len(plan["unmatched"])
    for system, deal_id in shown:
        deal = deals[system, deal_id]
        assert _rows(text, deal_id, *_context_cells(deal)), f"{deal} not shown:\n{text}"


def _pulled(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    args = ["pull", "--config", str(world.config), "--format", "jsonl"]
    pulled = CliRunner().invoke(main, args).stdout.splitlines()
    return {(d["system"], d["id"]): d for d in map(json.loads, pulled)}


def _context_cells(deal: dict[str, Any]) -> tuple[str, str, str]:
    amount = f"{deal['amount']} {deal['currency']}" if deal["amount"] else "no amount"
    return deal["name"], deal["stage"] or "-", amount


def test_each_conflict_shows_the_name_stage_and_amount_of_every_copy(small_world: World) -> None:
    """A conflict is decided by comparing the copies: the table showed the first copy's name,
    stage and amount only, so a close date conflict gave no clue which CRM's deal had moved
    on (an amount or stage that differs, a renamed copy)."""
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    document["policies"] = {"default": "conflict"}  # a first sync: every difference conflicts
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))

    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deals = _pulled(world)
    values = [v for c in plan["conflicts"] for v in c["values"]]
    assert len(values) > len(plan["conflicts"]) >= 1
    for value in values:
        system, deal_id = value["system"], value["id"]
        shown = _rows(text, deal_id, *_context_cells(deals[system, deal_id]))
        assert shown, f"{system} {deal_id} not shown with its context:\n{text}"


def test_duplicates_show_each_deal_and_why_they_are_duplicates(small_world: World) -> None:
    """Which of two deals to merge or delete in the CRM is decided by their names, stages and
    amounts; the table listed the ids alone, and left out why they count as duplicates."""
    world = small_world
    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deals = _pulled(world)
    assert plan["duplicates"]
    for duplicate in plan["duplicates"]:
        system = duplicate["system"]
        for deal_id in duplicate["ids"]:
            shown = _rows(text, deal_id, *_context_cells(deals[system, deal_id]))
            assert shown, f"{system} {deal_id} not shown with its context:\n{text}"
        assert _rows(text, duplicate["reason"]), f"{duplicate['reason']!r} not shown:\n{text}"


def test_each_live_copy_of_a_deleted_deal_is_shown_with_its_name_stage_and_amount(
    small_world: World,
) -> None:
    """Whether a deletion in one CRM should spread is decided by what the copies still hold
    (a won deal, a large amount); the table gave their ids alone."""
    world = small_world
    _synced_then_deleted_in_salesforce(world)
    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deals = _pulled(world)
    live = [(r["system"], r["id"]) for d in plan["deleted"] for r in d["live"]]
    assert live
    for system, deal_id in live:
        shown = _rows(text, system, deal_id, *_context_cells(deals[system, deal_id]))
        assert shown, f"{system} {deal_id} not shown with its context:\n{text}"


def test_each_error_names_its_deal_with_its_stage_and_amount(small_world: World) -> None:
    """An error is fixed in the CRM or the map, deal by deal: the table gave the id alone, so
    finding which deal a stage could not be read for meant a trip to the CRM per id."""
    world = small_world
    document = yaml.safe_load(world.config.read_text())
    del document["systems"]["salesforce"]["stage_map"]["default"]["Value Proposition"]
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    plan = json.loads(_dry_run(world, "json"))
    text = _dry_run(world, "table")
    deals = _pulled(world)
    errors = [e for e in plan["errors"] if (e["system"], e["id"]) in deals]
    assert errors
    for error in errors:
        name, _, amount = _context_cells(deals[error["system"], error["id"]])
        # its stage is shown as the native one, which the map no longer gives a funnel stage
        shown = _rows(text, error["id"], error["field"], name, "Value Proposition", amount)
        assert shown, f"{error['system']} {error['id']} not shown with its context:\n{text}"
