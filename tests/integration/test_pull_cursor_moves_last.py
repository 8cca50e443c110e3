"""A pull saves an instance's cursor only once its last chunk and the deletions its read found
are saved: a pull that fails in between (here the store refuses to record a deletion, through
a trigger in the database itself) leaves the cursor where it was, so the next pull lists those
deletions again. Moved with the last chunk, a deletion older than the incremental read's
overlap would have been lost to every later incremental pull."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from sync.cli import main
from sync.runtime import open_runtime
from tests.benchmarks.bench_world import bump_amounts
from tests.integration.conftest import World

SYSTEM = "pipedrive"
REFUSE = (
    "CREATE TRIGGER refuse_deletions BEFORE UPDATE OF deleted ON deals WHEN NEW.deleted = 1 "
    "BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
)


def _pull(world: World) -> Any:
    return CliRunner().invoke(main, ["pull", "--config", str(world.config), "--system", SYSTEM])


def test_a_pull_that_fails_to_record_deletions_leaves_the_cursor_for_the_next_to_find_them(
    small_world: World,
) -> None:
    world = small_world
    assert _pull(world).exit_code == 0
    with open_runtime(str(world.config)) as rt:
        deal_id, edited = sorted(rt.store.fingerprints(SYSTEM))[:2]
        connector: Any = rt.connectors[SYSTEM]
        assert connector.delete_deals([deal_id])[0].ok  # someone deletes one deal ...
        bump_amounts(world, SYSTEM, [edited])  # ... and edits another: the read's cursor moves
        before = rt.store.cursor(SYSTEM)
        amount = rt.store.get_deals(SYSTEM, [edited])[edited]["amount"]
        with rt.store.engine.begin() as conn:
            conn.execute(text(REFUSE))

    failed = _pull(world)

    assert failed.exit_code == 1 and "disk I/O error (injected)" in failed.stderr, failed.output
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.cursor(SYSTEM) == before  # though the edited deal's chunk is saved
        assert rt.store.get_deals(SYSTEM, [edited])[edited]["amount"] != amount
        assert not rt.store.get_deals(SYSTEM, [deal_id])[deal_id]["extra"].get("deleted")
        with rt.store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_deletions"))

    assert _pull(world).exit_code == 0
    with open_runtime(str(world.config), connect=False) as rt:
        assert rt.store.get_deals(SYSTEM, [deal_id])[deal_id]["extra"]["deleted"] is True
        assert rt.store.cursor(SYSTEM) != before
