"""A write a killed run left in doubt that did land is audited under that run when a later
apply settles it, at the time that run sent it. Audited at the time of settling, it made its
record look edited then: a snapshot pulled before the settling took crmsync's write laid over
it (sync/known_writes.py) for the newest edit of the deal, so `newest` gave an older edit made
in that CRM the win over a person's later edit elsewhere, and overwrote it.
Found by the upgrade audit: a plan saved by an older crmsync, applied after the upgrade,
settled a write its killed nightly run had left in doubt. A copy a killed run created, found by
its link marker, is audited at that run's time too: a copy no pull has read yet counts as
created and last updated when its audit entry says (sync/known_writes.py)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sync.runtime import open_runtime
from sync.store_records import AuditEntry
from tests.integration.conftest import World
from tests.integration.crm_users import Editors
from tests.integration.processes import cli, killed, runs
from tests.integration.test_killed_apply_counts import PIPEDRIVE_CREATE
from tests.integration.test_rollback_deletes_creates import _create_missing
from tests.integration.test_writes_not_yet_searchable import _open_in_all_three

SALESFORCE_UPDATE = "PATCH /services/data/{version}/composite/sobjects"


def _close_dates(world: World, ids: dict[str, str]) -> dict[str, str]:
    servers: Any = world.sandbox.servers
    with servers["salesforce"].emulator.lock:
        opportunity = servers["salesforce"].emulator.store.by_id[ids["salesforce"]]
    with servers["hubspot"].emulator.lock:
        hubspot = servers["hubspot"].emulator.store.live[ids["hubspot"]]["properties"]
    with servers["pipedrive"].emulator.lock:
        pipedrive = servers["pipedrive"].emulator.store.deals[int(ids["pipedrive"])]
    return {
        "salesforce": str(opportunity["CloseDate"])[:10],
        "hubspot": str(hubspot["closedate"])[:10],
        "pipedrive": str(pipedrive["expected_close_date"])[:10],
    }


@pytest.mark.parametrize("settled_by", ["another plan", "its own plan resumed"])
def test_a_write_settled_after_its_run_was_killed_does_not_outdate_a_later_edit(
    small_world: World, tmp_path: Path, settled_by: str
) -> None:
    world = small_world
    assert cli(world, "reconcile", "--yes").exit_code in (0, 1)
    ids = _open_in_all_three(world)
    people = Editors(world, seed=5)
    # An amount edited in HubSpot goes to Pipedrive, then Salesforce (instances in name
    # order): the run is killed once Salesforce took it, before it recorded the write.
    people.set_value("hubspot", ids["hubspot"], "amount", Decimal("43210"))
    plan = tmp_path / "plan.json"
    if settled_by == "another plan":
        killed(world, "salesforce", SALESFORCE_UPDATE, "reconcile", "--yes")
        killed_run = _latest_run(world, "reconcile")
        other = next(
            m
            for m in world.members().values()
            if {"hubspot", "salesforce"} <= m.keys() and m != ids
        )
        people.set_value("hubspot", other["hubspot"], "name", "Renamed by a person")
        _save_plan(world, plan)  # of that edit alone; it writes to Salesforce too
    else:
        _save_plan(world, plan)
        killed(world, "salesforce", SALESFORCE_UPDATE, "apply", str(plan), "--yes")
        killed_run = _latest_run(world, "apply")

    people.set_value("salesforce", ids["salesforce"], "close_date", date(2027, 3, 1))
    time.sleep(1.1)  # Pipedrive stamps its modification times in whole seconds
    people.set_value("pipedrive", ids["pipedrive"], "close_date", date(2027, 4, 1))
    assert cli(world, "pull").exit_code == 0
    applied = cli(world, "apply", str(plan), "--yes")  # settles the write in doubt
    assert applied.exit_code == 0, applied.output
    with open_runtime(str(world.config), connect=False) as rt:
        audited = rt.store.audit.entries(instance="salesforce", deal_id=ids["salesforce"])
    # it landed unrecorded (in doubt) and is audited once, under the killed run
    amounts = [(e.after, e.run_id) for e in audited if e.field == "amount"]
    assert amounts == [("43210", killed_run)]

    night = cli(world, "reconcile", "--yes")
    assert night.exit_code in (0, 1), night.output
    assert _close_dates(world, ids) == dict.fromkeys(ids, "2027-04-01"), night.output


@pytest.mark.parametrize("settled_by", ["another plan", "its own plan resumed"])
def test_a_copy_found_after_its_run_was_killed_is_audited_when_that_run_sent_it(
    small_world: World, tmp_path: Path, settled_by: str
) -> None:
    world, plan = small_world, tmp_path / "plan.json"
    _create_missing(world)
    # Copies go to HubSpot, then Pipedrive (instances in name order): the run is killed once
    # Pipedrive made the first, before it recorded it.
    if settled_by == "another plan":
        killed(world, "pipedrive", PIPEDRIVE_CREATE, "reconcile", "--yes")
        killed_run = _latest_run(world, "reconcile")
    else:
        _save_plan(world, plan)
        killed(world, "pipedrive", PIPEDRIVE_CREATE, "apply", str(plan), "--yes")
        killed_run = _latest_run(world, "apply")
    killed_at = datetime.now(UTC)
    assert not _pipedrive_copies(world, killed_run), "the copy was recorded: nothing in doubt"

    settle = ("reconcile",) if settled_by == "another plan" else ("apply", str(plan))
    settled = cli(world, *settle, "--yes")
    assert settled.exit_code in (0, 1), settled.output  # owners some CRMs lack are refused
    # Found by their markers and audited under the killed run, when it sent them: the first
    # copy, and any other Pipedrive answered before the kill landed (a POST in flight is made
    # all the same; the sandbox kills the client after serving one, not before the next).
    copies = _pipedrive_copies(world, killed_run)
    assert copies, "the copy the killed run made was not found"
    assert all(c.at is not None and c.at <= killed_at for c in copies), (copies, killed_at)
    made = [c.reason for c in _pipedrive_copies(world)]  # every run's: none made twice
    assert len(made) == len(set(made)), made


def _pipedrive_copies(world: World, run_id: str | None = None) -> list[AuditEntry]:
    with open_runtime(str(world.config), connect=False) as rt:
        entries = rt.store.audit.entries(run_id=run_id, instance="pipedrive")
    return [e for e in entries if e.field is None]


def _latest_run(world: World, kind: str) -> str:
    return next(r.id for r in runs(world) if r.kind.value == kind)


def _save_plan(world: World, plan: Path) -> None:
    saved = cli(world, "reconcile", "--dry-run", "--plan-out", str(plan))
    assert saved.exit_code in (0, 3), saved.output
