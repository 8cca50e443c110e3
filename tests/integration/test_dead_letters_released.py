"""`crmsync dead-letters`: a change a CRM kept refusing is dead-lettered and never sent again,
until a person who fixed the cause in the CRM releases it with `crmsync dead-letters retry`;
the next reconcile then writes it and the dead letter is gone."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from click.testing import CliRunner, Result

from connectors.sandbox.faults import Faults
from sync.cli import main
from tests.integration.conftest import World
from tests.integration.test_link_corrections_wait import BUSY_WAIT, reconcile_running


def _cli(world: World, *args: str, code: int = 0) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == code, (args, out.output, out.stderr)
    return out


def _reconcile(world: World, code: int = 0) -> Result:
    return _cli(world, "reconcile", "--yes", "--format", "json", code=code)


def _letters(world: World, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        _cli(world, "dead-letters", "--format", "json", *args).stdout
    )
    return rows


def _reported_dead(world: World) -> list[dict[str, Any]]:
    """The dead letters the health report counts (`max_dead_letters`)."""
    out = CliRunner().invoke(main, ["report", "--format", "json", "--config", str(world.config)])
    assert out.exit_code in (0, 3), out.output  # 3: the sample data breaches some threshold
    letters: list[dict[str, Any]] = json.loads(out.stdout)["cross_system"]["dead_letters"]
    return letters


def _hubspot_amount(world: World, deal_id: str) -> Decimal:
    em: Any = world.sandbox.servers["hubspot"].emulator
    with em.lock:
        return Decimal(em.store.live[deal_id]["properties"]["amount"])


def _set_pipedrive_value(world: World, deal_id: str, value: int) -> None:
    """A person edits the deal's amount in Pipedrive's own screens (no API call)."""
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        em.store.update(int(deal_id), {"value": value})


def _refused_in_hubspot(world: World) -> tuple[str, int]:
    """A first sync, then an amount edited in Pipedrive that HubSpot refuses (a validation rule,
    say) on the only try `max_attempts: 1` allows: (HubSpot deal id, the amount)."""
    _reconcile(world)
    ids = next(m for m in world.members().values() if len(m) == 3)
    hubspot = ids["hubspot"]
    amount = int(_hubspot_amount(world, hubspot)) + 777
    world.sandbox.servers["hubspot"].faults.set(Faults(fail_ids=(hubspot,)))
    _set_pipedrive_value(world, ids["pipedrive"], amount)
    _reconcile(world, code=1)  # some of its changes failed
    return hubspot, amount


def test_a_released_dead_letter_is_written_by_the_next_reconcile(one_try_world: World) -> None:
    world = one_try_world
    hubspot, amount = _refused_in_hubspot(world)
    [letter] = _letters(world)
    assert letter["system"] == "hubspot"
    assert letter["id"] == hubspot
    assert letter["field"] == "amount"
    assert Decimal(letter["value"]) == amount
    assert (letter["state"], letter["attempts"]) == ("dead", 1)
    assert letter["reason"] and letter["first_failed_at"].endswith("Z")
    assert letter["last_failed_at"] >= letter["first_failed_at"]

    world.sandbox.servers["hubspot"].faults.set(Faults())  # the admin fixed the rule
    held = _reconcile(world, code=1)  # a dead change is not sent: the fix alone changes nothing
    assert _hubspot_amount(world, hubspot) != amount
    assert held.stderr.rstrip().endswith(
        "they are dead-lettered, not sent again: `crmsync dead-letters retry` releases them "
        "once the cause is fixed in the CRM"
    ), held.stderr
    assert [r["id"] for r in _letters(world)] == [hubspot]
    assert [r["id"] for r in _reported_dead(world)] == [hubspot]

    out = _cli(world, "dead-letters", "retry", "--instance", "hubspot", "--id", hubspot)
    assert out.stdout.startswith("hubspot: released 1 dead letter; the next apply or reconcile")
    assert out.stdout.count("\n") == 1
    runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
    assert (runs[0]["kind"], runs[0]["status"]) == ("dead-letters", "ok")
    assert runs[0]["counts"]["released"] == 1
    assert runs[0]["counts"]["ids"] == {"hubspot": [hubspot]}
    assert _letters(world) == []
    assert _reported_dead(world) == []

    _reconcile(world)
    assert _hubspot_amount(world, hubspot) == amount
    assert _letters(world, "--retrying") == []
    for extra in ([], ["--apply"]):
        undo = _cli(world, "rollback", runs[0]["id"], *extra)
        assert "released dead letters (`crmsync dead-letters retry`) and wrote to no CRM" in (
            undo.stdout
        )


def test_a_saved_plan_applied_again_sends_its_released_change(one_try_world: World) -> None:
    world = one_try_world
    _reconcile(world)
    ids = next(m for m in world.members().values() if len(m) == 3)
    hubspot = ids["hubspot"]
    amount = int(_hubspot_amount(world, hubspot)) + 555
    _set_pipedrive_value(world, ids["pipedrive"], amount)
    plan = world.config.parent / "plan.json"
    _cli(world, "reconcile", "--dry-run", "--plan-out", str(plan), "--format", "json")
    world.sandbox.servers["hubspot"].faults.set(Faults(fail_ids=(hubspot,)))
    _cli(world, "apply", str(plan), "--yes", code=1)
    world.sandbox.servers["hubspot"].faults.set(Faults())
    _cli(world, "apply", str(plan), "--yes", code=1)  # dead: not sent again
    assert _hubspot_amount(world, hubspot) != amount

    _cli(world, "dead-letters", "retry", "--instance", "hubspot")
    _cli(world, "apply", str(plan), "--yes")
    assert _hubspot_amount(world, hubspot) == amount
    assert _letters(world, "--retrying") == []


def test_a_dead_letter_refused_again_after_its_release_is_dead_again(
    one_try_world: World,
) -> None:
    world = one_try_world
    hubspot, _ = _refused_in_hubspot(world)
    out = _cli(world, "dead-letters", "retry", "--all")
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["salesforce", "hubspot", "pipedrive"]
    assert lines[1].startswith("hubspot: released 1 dead letter;")
    assert lines[0].startswith("salesforce: released 0 dead letters (run ")

    _reconcile(world, code=1)  # the cause is still there: tried once more (attempts anew)
    [letter] = _letters(world)
    assert (letter["id"], letter["state"], letter["attempts"]) == (hubspot, "dead", 1)


def test_dead_letters_table_names_the_record_and_the_way_to_release_it(
    one_try_world: World,
) -> None:
    world = one_try_world
    hubspot, amount = _refused_in_hubspot(world)
    for columns in ("80", "200"):  # two lines per dead letter, or a table
        out = CliRunner().invoke(
            main, ["dead-letters", "--config", str(world.config)], env={"COLUMNS": columns}
        )
        assert out.exit_code == 0, out.output
        text = out.stdout
        row = next(line for line in text.splitlines() if hubspot in line)
        assert row.split()[:3] == ["hubspot", hubspot, "amount"] or (
            [c.strip() for c in row.split("│")[1:4]] == ["hubspot", hubspot, "amount"]
        ), text
        assert str(amount) in text and "Injected failure" in text
        assert (
            "1 dead letter; once the cause is fixed in the CRM, `crmsync dead-letters retry`"
            in (" ".join(text.split()))
        )
    assert _cli(world, "dead-letters", "--instance", "pipedrive").stdout == "no dead letters\n"


def test_retry_refuses_unknown_instances_and_ids_without_releasing(one_try_world: World) -> None:
    world = one_try_world
    hubspot, _ = _refused_in_hubspot(world)
    for args, named in (
        (["--instance", "zoho"], "unknown instance 'zoho'"),
        (["--instance", "hubspot", "--id", "404", "--id", hubspot], "hubspot record 404;"),
        (["--instance", "salesforce", "--id", hubspot], f"salesforce record {hubspot};"),
        ([], "give --all or --instance NAME"),
        (["--all", "--instance", "hubspot"], "give --all or --instance NAME"),
        (["--id", hubspot], "--id needs --instance NAME"),
    ):
        out = _cli(world, "dead-letters", "retry", *args, code=2)
        assert out.stdout == ""
        assert out.stderr.count("\n") == 1 and named in out.stderr, out.stderr
    _cli(world, "dead-letters", "--instance", "zoho", code=2)
    assert [r["id"] for r in _letters(world)] == [hubspot]
    runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
    assert "dead-letters" not in {r["kind"] for r in runs}


def test_a_release_waits_for_a_running_reconcile_or_exits_releasing_nothing(
    one_try_world: World,
) -> None:
    world = one_try_world
    hubspot, _ = _refused_in_hubspot(world)
    with reconcile_running(world):
        busy = _cli(world, "dead-letters", "retry", "--all", code=1)
        listed = _letters(world)  # reading takes no lock
    assert busy.stderr.splitlines() == [f"crmsync: error: {BUSY_WAIT}"]
    assert [r["id"] for r in listed] == [hubspot]
    with reconcile_running(world, seconds=1.0):
        waited = _cli(world, "dead-letters", "retry", "--instance", "hubspot", "--wait", "20")
    assert waited.stdout.startswith("hubspot: released 1 dead letter;")
    assert _letters(world) == []


def test_retry_with_field_releases_only_that_field_of_the_record(one_try_world: World) -> None:
    world = one_try_world
    _reconcile(world)
    ids = next(m for m in world.members().values() if len(m) == 3)
    hubspot = ids["hubspot"]
    amount = int(_hubspot_amount(world, hubspot)) + 333
    world.sandbox.servers["hubspot"].faults.set(Faults(fail_ids=(hubspot,)))
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:  # a person edits the amount and the title in Pipedrive's screens
        em.store.update(int(ids["pipedrive"]), {"value": amount, "title": "Renamed by hand"})
    _reconcile(world, code=1)
    assert {(r["id"], r["field"]) for r in _letters(world)} == {
        (hubspot, "amount"),
        (hubspot, "name"),
    }

    for args, named in (
        (["--field", "amout"], "unknown field 'amout': dead letters are of the deal fields name,"),
        (["--field", "stage"], f"no dead letter for hubspot record {hubspot} field stage;"),
    ):
        out = _cli(world, "dead-letters", "retry", "--instance", "hubspot", "--id", hubspot,
                   *args, code=2)  # fmt: skip
        assert out.stdout == "" and out.stderr.count("\n") == 1 and named in out.stderr
    assert len(_letters(world)) == 2

    out = _cli(world, "dead-letters", "retry", "--instance", "hubspot", "--id", hubspot,
               "--field", "amount")  # fmt: skip
    assert out.stdout.startswith("hubspot: released 1 dead letter;")
    assert [(r["id"], r["field"]) for r in _letters(world)] == [(hubspot, "name")]
    runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
    assert runs[0]["counts"]["fields"] == ["amount"]

    world.sandbox.servers["hubspot"].faults.set(Faults())  # the admin fixed the rule
    _reconcile(world, code=1)  # the name is still dead: not sent
    assert _hubspot_amount(world, hubspot) == amount
    assert [(r["id"], r["field"]) for r in _letters(world)] == [(hubspot, "name")]


def _screen_forms(salesforce: str) -> list[str]:
    """A Salesforce id as a person may type it: the 15 characters its screens and reports show,
    or the 18-character one with its case changed (by a spreadsheet, say)."""
    assert salesforce != salesforce.swapcase()  # the sandbox's ids hold letters
    return [salesforce[:15], salesforce.swapcase()]


def test_a_salesforce_dead_letter_is_released_by_the_id_its_screens_show(
    one_try_world: World,
) -> None:
    world = one_try_world
    _reconcile(world)
    ids = next(m for m in world.members().values() if len(m) == 3)
    salesforce = ids["salesforce"]
    world.sandbox.servers["salesforce"].faults.set(Faults(fail_ids=(salesforce,)))
    for n, typed in enumerate(_screen_forms(salesforce)):
        _set_pipedrive_value(world, ids["pipedrive"], 4_000_001 + n)  # refused in Salesforce
        _reconcile(world, code=1)
        assert [(r["system"], r["id"]) for r in _letters(world)] == [("salesforce", salesforce)]
        out = _cli(world, "dead-letters", "retry", "--instance", "salesforce", "--id", typed)
        assert out.stdout.startswith("salesforce: released 1 dead letter;"), out.stdout
        assert _letters(world) == []
        runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
        assert runs[0]["counts"]["ids"] == {"salesforce": [salesforce]}  # the letter's id


def test_a_dry_run_says_which_of_its_writes_are_dead_letters_the_apply_will_not_send(
    one_try_world: World,
) -> None:
    """The plan still holds a dead change (the CRMs still disagree), so a dry run counted it
    among the writes it plans, night after night, while every apply sent none of them."""
    world = one_try_world
    _refused_in_hubspot(world)

    dry = _cli(world, "reconcile", "--dry-run")

    lines = dry.stdout.splitlines()
    assert "  dead letters (not sent until `crmsync dead-letters retry`): hubspot 1" in lines, (
        dry.stdout
    )
    [changes] = [line for line in dry.stdout.splitlines() if line.startswith("hubspot: amount")]
    assert "1 dead-lettered" in changes, changes
