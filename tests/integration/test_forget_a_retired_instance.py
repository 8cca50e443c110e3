"""`crmsync forget`: after a migration retired a CRM (README "Retiring an instance"), the store
kept everything of it for good: `check` warned of its links on every run, and its name could
never go to another account, whose deals the stored links would pair with the old entities."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_full
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID
from sync.cli import main
from sync.runtime import open_runtime
from sync.store_records import JournalEntry, JournalOp, RunKind
from tests.integration.conftest import World, retire
from tests.integration.test_link_corrections_wait import reconcile_running
from tests.sandbox_env import CRMSYNC, count_writes


def _cli(world: World, *args: str, code: int = 0) -> Result:
    out = CliRunner().invoke(main, [*args, "--config", str(world.config)])
    assert out.exit_code == code, (args, out.output, out.stderr)
    return out


def _store_view(world: World) -> dict[str, Any]:
    """What the store holds of pipedrive, read through the store's own reads."""
    with open_runtime(str(world.config), connect=False) as rt:
        store = rt.store
        return {
            "deals": store.deal_count("pipedrive", include_deleted=True),
            "links": store.link_counts().get("pipedrive", 0),
            "cursor": store.cursor("pipedrive"),
            "mapping": store.mapping_of("pipedrive"),
            "stage_names": store.stage_names("pipedrive"),
            "letters": [f for f in store.failures.records() if f.instance == "pipedrive"],
            "audit": len(store.audit.entries(instance="pipedrive")),
            "bases": store.bases(),
        }


def _retired_with_a_dead_letter(world: World) -> tuple[str, dict[str, dict[str, str]]]:
    """A first sync that writes to all three CRMs, then a change Pipedrive refuses on the only
    try `max_attempts: 1` allows (a dead letter), then Pipedrive retired from the config: the
    first reconcile's run id and the entities' members before retiring."""
    _cli(world, "reconcile", "--yes")
    first = json.loads(_cli(world, "runs", "--format", "json").stdout)[0]
    assert first["kind"] == "reconcile" and first["counts"]["applied"]["applied"], first
    ids = next(m for m in world.members().values() if len(m) == 3)
    world.sandbox.servers["pipedrive"].faults.set(Faults(fail_ids=(ids["pipedrive"],)))
    hubspot: Any = world.sandbox.servers["hubspot"].emulator
    with hubspot.lock:
        amount = int(float(hubspot.store.live[ids["hubspot"]]["properties"]["amount"] or 0))
        hubspot.store.update(ids["hubspot"], {"amount": str(amount + 777)})
    _cli(world, "reconcile", "--yes", code=1)  # Pipedrive refused its change
    world.sandbox.servers["pipedrive"].faults.set(Faults())
    members = world.members()
    retire(world, "pipedrive")
    return first["id"], members


def _expected(members: dict[str, dict[str, str]]) -> tuple[int, int]:
    """Entities of pipedrive's links that keep members elsewhere, and those of it alone."""
    mine = [m for m in members.values() if "pipedrive" in m]
    return sum(len(m) > 1 for m in mine), sum(len(m) == 1 for m in mine)


def test_forget_shows_what_the_store_holds_of_a_retired_instance_and_removes_nothing(
    one_try_world: World,
) -> None:
    world = one_try_world
    _, members = _retired_with_a_dead_letter(world)
    before = _store_view(world)
    kept, alone = _expected(members)

    shown = json.loads(_cli(world, "forget", "pipedrive", "--format", "json").stdout)
    table = _cli(world, "forget", "pipedrive").stdout

    counts = shown["counts"]
    assert (shown["instance"], shown["applied"], shown["run_id"]) == ("pipedrive", False, None)
    assert counts["deals"] == before["deals"] > 0
    assert counts["links"] == before["links"] > 0
    assert (counts["entities_kept"], counts["entities_dropped"]) == (kept, alone)
    assert counts["dead_letters"] == 1 == len(before["letters"])
    assert counts["cursor"] == 1 and counts["mapping"] == 1 and counts["stage_names"] == 1
    assert counts["audit"] == before["audit"] > 0
    assert "dry run: nothing removed" in table and "audit entries" in table, table
    assert _store_view(world) == before


def test_forget_apply_removes_the_instance_and_keeps_the_audit_and_what_others_share(
    one_try_world: World,
) -> None:
    world = one_try_world
    _, members = _retired_with_a_dead_letter(world)
    before = _store_view(world)
    warned = _cli(world, "check").stdout
    assert f"{before['links']} link(s) of pipedrive" in warned, warned

    done = json.loads(
        _cli(world, "forget", "pipedrive", "--apply", "--yes", "--format", "json").stdout
    )

    after = _store_view(world)
    assert done["applied"] and done["run_id"] and done["counts"]["links"] == before["links"]
    assert (after["deals"], after["links"], after["cursor"], after["mapping"]) == (0, 0, None, None)
    assert before["stage_names"] and after["stage_names"] == {}
    assert after["letters"] == []
    assert after["audit"] == before["audit"]  # the record of what crmsync wrote stays
    # entities shared with the other CRMs stay with those members, and their bases; those of
    # pipedrive alone go, with theirs
    expected = {
        e: {k: v for k, v in m.items() if k != "pipedrive"}
        for e, m in members.items()
        if set(m) != {"pipedrive"}
    }
    assert world.members() == expected
    alone = {e for e, m in members.items() if set(m) == {"pipedrive"}}
    assert not alone & after["bases"].keys()
    assert {e for e in expected if e in before["bases"]} <= after["bases"].keys()
    assert "of pipedrive" not in _cli(world, "check").stdout

    runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
    assert (runs[0]["id"], runs[0]["kind"], runs[0]["status"]) == (done["run_id"], "forget", "ok")
    assert runs[0]["counts"]["instance"] == "pipedrive"
    assert _cli(world, "runs").exit_code == 0
    report = CliRunner().invoke(main, ["report", "--format", "json", "--config", str(world.config)])
    assert report.exit_code in (0, 3), report.output  # 3: the sample data breaches thresholds
    assert "pipedrive" not in json.loads(report.stdout)["systems"]


def test_a_run_that_wrote_to_a_forgotten_instance_is_not_rolled_back(
    one_try_world: World,
) -> None:
    """Its writes there went to deals the store no longer knows: adding the instance back
    would not make the rollback whole, so the refusal no longer says to."""
    world = one_try_world
    first_run, _ = _retired_with_a_dead_letter(world)
    forgot = json.loads(
        _cli(world, "forget", "pipedrive", "--apply", "--yes", "--format", "json").stdout
    )["run_id"]
    writes = sum(map(count_writes, world.stats().values()))

    undo = _cli(world, "rollback", first_run, "--apply", "--yes", code=2)
    dry = _cli(world, "rollback", first_run).stdout

    assert undo.stderr.strip() == (
        f"crmsync: error: run {first_run} wrote to pipedrive, whose state crmsync forgot since "
        f"(run {forgot}); nothing written: crmsync no longer knows the deals it wrote to there, "
        f"and a run is undone whole: undo those writes by hand (`crmsync rollback {first_run}` "
        "lists them)"
    )
    assert sum(map(count_writes, world.stats().values())) == writes
    said = " ".join(dry[dry.rindex("dry run: nothing") :].split())
    assert said == (
        f"dry run: nothing written; --apply refuses it: run {first_run} wrote to pipedrive, "
        f"whose state crmsync forgot since (run {forgot}): undo those writes by hand"
    )
    shown = json.loads(_cli(world, "rollback", first_run, "--format", "json").stdout)
    assert (shown["refused"], shown["forgotten"]) == (said, {"pipedrive": forgot})
    again = _cli(world, "forget", "pipedrive", code=2)
    assert f"holds nothing of 'pipedrive' (run {forgot} forgot it)" in again.stderr


@contextmanager
def _another_account(tmp: Path) -> Iterator[Sandbox]:
    """Another Pipedrive account: other deals, whose ids are those the old account's had (both
    count from 1), naming no deal of the other CRMs."""
    dataset = generate_full(60, 99).dataset
    for deal in dataset["pipedrive"]["deals"]:
        for field in (PD_FIELD_SALESFORCE_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_CRMSYNC_ID):
            deal.pop(field, None)
    with start_sandbox({"pipedrive": dataset["pipedrive"]}, systems=("pipedrive",),
                       workdir=tmp / "another") as sandbox:  # fmt: skip
        yield sandbox


def test_a_forgotten_name_given_to_another_account_pairs_none_of_its_deals_with_old_entities(
    one_try_world: World, tmp_path: Path
) -> None:
    world = one_try_world
    retired = yaml.safe_load(world.config.read_text())
    _cli(world, "reconcile", "--yes")
    old = {m["pipedrive"]: frozenset(m.items()) - {("pipedrive", m["pipedrive"])}
           for m in world.members().values() if "pipedrive" in m and len(m) > 1}  # fmt: skip
    assert old
    entry = retired["systems"]["pipedrive"]
    retire(world, "pipedrive")
    _cli(world, "forget", "pipedrive", "--apply", "--yes")

    with _another_account(tmp_path) as sandbox:
        document = yaml.safe_load(world.config.read_text())
        entry = {**entry, "base_url": sandbox.urls["pipedrive"]}
        entry["credentials"] = {"api_token": sandbox.tokens["pipedrive"]}
        document["systems"]["pipedrive"] = entry  # the others' id fields name the old one's
        world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        _cli(world, "reconcile", "--dry-run", "--format", "json")

    now = {
        m["pipedrive"]: frozenset(m.items()) - {("pipedrive", m["pipedrive"])}
        for m in world.members().values()
        if "pipedrive" in m
    }
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.live_ids("pipedrive") & set(old)  # the new account's ids are the old's
    assert [deal for deal, others in now.items() if old.get(deal) == others] == []


def test_forget_refuses_an_instance_the_config_still_names_or_the_store_does_not_know(
    one_try_world: World,
) -> None:
    world = one_try_world
    _cli(world, "reconcile", "--dry-run")

    named = _cli(world, "forget", "pipedrive", "--apply", "--yes", code=2)
    unknown = _cli(world, "forget", "zoho", "--apply", "--yes", code=2)

    assert named.stderr.strip() == (
        "crmsync: error: pipedrive is in crmsync.yaml: only an instance the config no longer "
        "names can be forgotten; nothing removed: retire it first (delete systems.pipedrive and "
        'every key naming it, README "Retiring an instance")'
    )
    assert unknown.stderr.strip() == (
        "crmsync: error: the state store holds nothing of 'zoho'; nothing removed (none is retired)"
    )
    assert _store_view(world)["links"] > 0


def test_forget_refuses_while_a_write_to_the_instance_is_in_doubt(one_try_world: World) -> None:
    """A killed apply leaves its last writes in doubt (journaled as sent, never as done): the
    next apply to that instance checks them in the CRM; forgotten, they never would be."""
    world = one_try_world
    _cli(world, "reconcile", "--dry-run")
    deal = next(iter(m["pipedrive"] for m in world.members().values() if "pipedrive" in m))
    with open_runtime(str(world.config), connect=False) as rt:
        run_id = rt.store.runs.start("apply", RunKind.APPLY)
        entry = JournalEntry("c1", "pipedrive", deal, JournalOp.UPDATE, "amount", "1", "2")
        rt.store.journal.intend(run_id, "plan-1", [entry])
    retire(world, "pipedrive")
    before = _store_view(world)

    doubt = _cli(world, "forget", "pipedrive", "--apply", "--yes", code=2)

    assert doubt.stderr.strip() == (
        f"crmsync: error: 1 write(s) to pipedrive are in doubt (run {run_id} stopped before "
        "recording them); nothing removed: add systems.pipedrive back to crmsync.yaml and run "
        "`crmsync reconcile` (or roll that run back) to settle them, then retire it again"
    )
    assert _store_view(world) == before


def test_forget_refuses_while_another_command_holds_the_reconcile_lock(
    one_try_world: World,
) -> None:
    world = one_try_world
    _cli(world, "reconcile", "--dry-run")
    retire(world, "pipedrive")
    before = _store_view(world)

    with reconcile_running(world):
        busy = _cli(world, "forget", "pipedrive", "--apply", "--yes", code=1)

    assert "job 'reconcile' is already running" in busy.stderr, busy.stderr
    assert _store_view(world) == before


def _answered(world: World, answer: str) -> tuple[int, str]:
    """`crmsync forget pipedrive --apply` at a terminal, answering its question with `answer`:
    its exit code and all it drew there."""
    main_fd, side_fd = pty.openpty()
    process = subprocess.Popen(
        [*CRMSYNC, "forget", "pipedrive", "--apply", "--config", str(world.config)],
        stdin=side_fd, stdout=side_fd, stderr=side_fd, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    os.close(side_fd)
    drawn, asked = bytearray(), False
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
        if not asked and b"[y/N]" in drawn:
            os.write(main_fd, answer.encode() + b"\n")
            asked = True
    os.close(main_fd)
    return process.wait(timeout=120), drawn.decode(errors="replace")


def test_forget_asks_at_a_terminal_and_removes_nothing_unless_told_yes(
    one_try_world: World,
) -> None:
    world = one_try_world
    _cli(world, "reconcile", "--dry-run")
    retire(world, "pipedrive")
    before = _store_view(world)

    refused, said_no = _answered(world, "n")
    unchanged = _store_view(world)
    done, said_yes = _answered(world, "y")

    question = "Remove what the state store holds of pipedrive? [y/N]"
    assert refused == 2 and question in said_no, said_no
    assert "crmsync: error: not confirmed; nothing removed of pipedrive (pass --yes" in said_no
    assert unchanged == before
    assert done == 0 and question in said_yes and "forgot pipedrive" in said_yes, said_yes
    assert _store_view(world)["links"] == 0


def test_forget_apply_off_a_terminal_without_yes_removes_nothing_and_says_to_add_it(
    one_try_world: World,
) -> None:
    """A scheduled run does not ask before large writes; this purge cannot be undone, so off a
    terminal it is made only when the command line says --yes."""
    world = one_try_world
    _cli(world, "reconcile", "--dry-run")
    retire(world, "pipedrive")
    before = _store_view(world)

    refused = _cli(world, "forget", "pipedrive", "--apply", code=2)

    assert refused.stderr.strip() == (
        "crmsync: error: forget --apply removes what the store holds of pipedrive for good and "
        "asks first, but there is no terminal to ask at; nothing removed: add --yes"
    )
    assert _store_view(world) == before
    runs = json.loads(_cli(world, "runs", "--format", "json").stdout)
    assert "forget" not in {r["kind"] for r in runs}
