"""`crmsync links confirm|split|join` take the reconcile lock, as `crmsync reconcile` does, and
answer a busy one as it does: "already running" at once, or with `--wait S` a wait of at most
S seconds for the other run, after which the correction is made."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sync.cli import main
from sync.locks import reconcile_lock
from sync.runtime import open_runtime
from tests.fixtures_store import store_url_for
from tests.integration.conftest import World, build_world

BUSY = "job 'reconcile' is already running (lock held by another process)"
KILLED = "(locks end with their process: none is left by a killed one)"
# What a command with `--wait S` for the reconcile lock says; `apply` and `rollback` have none.
BUSY_WAIT = f"{BUSY}; wait for it to end or pass --wait SECONDS {KILLED}"
BUSY_AGAIN = f"{BUSY}; run this again once it ends {KILLED}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with store_url_for(request.param, tmp_path) as url:
        for world in build_world(tmp_path, url, deals=30, seed=5):
            world.reconcile("r1")
            yield world


@contextmanager
def reconcile_running(world: World, seconds: float | None = None) -> Iterator[None]:
    """The store's reconcile lock held (as a running reconcile holds it), on its own thread and
    connection, until the block ends or, given `seconds`, that long."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with (
            open_runtime(str(world.config), connect=False) as rt,
            reconcile_lock(rt.store),
        ):
            taken.set()
            release.wait(seconds)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert taken.wait(20), "the reconcile lock was not taken"
        yield
    finally:
        release.set()
        holder.join(20)


def _links(world: World, *args: str) -> Result:
    return CliRunner().invoke(main, ["links", *args, "--config", str(world.config)])


def _unconfirmed_entity(world: World) -> str:
    with open_runtime(str(world.config), connect=False) as rt:
        links = rt.store.link_records()
    unconfirmed = sorted({link.entity_id for link in links if not link.confirmed})
    assert unconfirmed, "no inferred match to confirm"
    return unconfirmed[0]


def _confirmed(world: World, entity: str) -> set[bool]:
    """The confirmed flags of the links of `entity` (empty: it has none)."""
    with open_runtime(str(world.config), connect=False) as rt:
        return {link.confirmed for link in rt.store.link_records([entity])}


def test_a_links_correction_told_to_wait_waits_for_a_running_reconcile_then_is_made(
    world: World,
) -> None:
    entity = _unconfirmed_entity(world)
    with reconcile_running(world, seconds=1.0):
        began = time.monotonic()
        done = _links(world, "confirm", entity, "--wait", "20")
        took = time.monotonic() - began
    assert done.exit_code == 0, done.output
    assert 0.5 < took < 15
    assert _confirmed(world, entity) == {True}


def test_a_links_correction_waits_no_longer_than_its_wait_and_changes_nothing(
    world: World,
) -> None:
    entity = _unconfirmed_entity(world)
    with reconcile_running(world):
        refused = _links(world, "confirm", entity)
        began = time.monotonic()
        waited = _links(world, "split", entity, "--wait", "0.5")
        took = time.monotonic() - began
        joined = _links(world, "join", "hubspot:1", "pipedrive:1", "--wait", "0")
    assert (refused.exit_code, refused.stderr.splitlines()) == (1, [f"crmsync: error: {BUSY_WAIT}"])
    assert waited.exit_code == 1
    assert waited.stderr.splitlines()[-1] == (
        "crmsync: error: job 'reconcile' is still running after waiting 0.5s "
        "(lock held by another process); let it finish (`crmsync runs` shows it) or give a "
        "longer --wait"
    )
    assert 0.4 < took < 10
    assert (joined.exit_code, joined.stderr.splitlines()) == (1, [f"crmsync: error: {BUSY_WAIT}"])
    assert False in _confirmed(world, entity)  # still unconfirmed
    with open_runtime(str(world.config), connect=False) as rt:
        assert [r.kind.value for r in rt.store.runs.recent(10) if r.kind.value == "links"] == []


def test_a_command_refused_by_a_running_reconcile_says_in_its_one_line_how_to_proceed(
    world: World, tmp_path: Path
) -> None:
    config = str(world.config)
    plan = tmp_path / "plan.json"
    made = CliRunner().invoke(
        main, ["reconcile", "--dry-run", "--plan-out", str(plan), "--config", config]
    )
    assert made.exit_code == 0, made.output
    with reconcile_running(world):
        reconcile = CliRunner().invoke(main, ["reconcile", "--dry-run", "--config", config])
        applied = CliRunner().invoke(main, ["apply", str(plan), "--yes", "--config", config])
        rolled_back = CliRunner().invoke(
            main, ["rollback", "r1", "--apply", "--yes", "--config", config]
        )
    assert (reconcile.exit_code, reconcile.stderr.splitlines()) == (
        1, [f"crmsync: error: {BUSY_WAIT}"]
    )  # fmt: skip
    for refused in (applied, rolled_back):  # no --wait: they are run again
        assert (refused.exit_code, refused.stderr.splitlines()) == (
            1, [f"crmsync: error: {BUSY_AGAIN}"]
        )  # fmt: skip
