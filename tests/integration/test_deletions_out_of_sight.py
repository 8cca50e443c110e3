"""A CRM lists a deleted deal only for a while (Salesforce's recycle bin 15 days, Pipedrive 30,
HubSpot 90). A pull whose last pull is older than that reads everything instead of asking for
deletions since its cursor, so a deal deleted (and purged) meanwhile is still found gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from sync.cli import main
from sync.runtime import open_runtime
from sync.store import Store
from tests.integration.conftest import World


def _pulled_ago(store: Store, system: str, age: timedelta) -> None:
    """As if the instance's last pull had ended `age` ago (same cursor)."""
    then = datetime.now(UTC) - age
    cursor = store.cursor(system)
    assert cursor is not None
    Store(store.engine, clock=lambda: then).save_cursor(system, cursor)


def _pull(world: World, system: str) -> Any:
    out = CliRunner().invoke(main, ["pull", "--config", str(world.config), "--system", system])
    assert out.exit_code == 0, out.output
    return out


def _purge(world: World, system: str) -> int:
    info = world.sandbox.ready_info()
    answer = requests.post(f"{info[system]}/__sandbox/purge", verify=info["ca_file"], timeout=10)
    answer.raise_for_status()
    return int(answer.json()["purged"])


@pytest.mark.parametrize(
    ("system", "days"), [("salesforce", 15), ("hubspot", 90), ("pipedrive", 30)]
)
def test_a_pull_from_a_cursor_older_than_the_crm_keeps_deletions_reads_everything(
    small_world: World, system: str, days: int
) -> None:
    world = small_world
    _pull(world, system)
    with open_runtime(str(world.config)) as rt:
        deal_id = sorted(rt.store.fingerprints(system))[0]
        connector: Any = rt.connectors[system]
        assert connector.delete_deals([deal_id])[0].ok  # someone deletes it ...
    assert _purge(world, system) >= 1  # ... and the CRM forgets it after `days`
    with open_runtime(str(world.config), connect=False) as rt:  # crmsync last ran before that
        _pulled_ago(rt.store, system, timedelta(days=days, hours=1))
        live_before = rt.store.deal_count(system)

    out = _pull(world, system)

    with open_runtime(str(world.config), connect=False) as rt:
        live = {deal["id"] for deal in rt.store.iter_deals(system)}
    assert deal_id not in live, f"{system} {deal_id} was deleted but is still live in the store"
    assert len(live) == live_before - 1
    assert f"lists deleted deals for {days} days only" in out.stderr  # says why it read all


def test_a_pull_from_a_recent_cursor_stays_incremental(small_world: World) -> None:
    world = small_world
    _pull(world, "salesforce")
    with open_runtime(str(world.config), connect=False) as rt:
        _pulled_ago(rt.store, "salesforce", timedelta(days=14))
    out = _pull(world, "salesforce")
    assert "incremental" in out.stdout
    assert "lists deleted deals" not in out.stderr
