"""The PostgreSQL session of a run's store ends mid-run (a server restart, a dropped
connection, `pg_terminate_backend`): the command stops with one line naming the database's
reason, and `crmsync runs` records that same line, not SQLAlchemy's message with the SQL
statement and its parameters (deal data, up to hundreds of kilobytes cut at 500 characters)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from sync.runtime import open_runtime
from sync.store import RunRecord
from tests.integration.conftest import World
from tests.integration.processes import cli

pytestmark = pytest.mark.postgres

DROPPED = "terminating connection due to administrator command"


def _drop_the_session_saving_deals(world: World) -> None:
    """A save of deals ends its own session, as `pg_terminate_backend` from psql would."""
    with open_runtime(str(world.config), connect=False) as rt, rt.store.engine.begin() as conn:
        conn.execute(text(
            "create function end_own_session() returns trigger language plpgsql as $$"
            " begin perform pg_terminate_backend(pg_backend_pid()); return null; end $$"
        ))  # fmt: skip
        conn.execute(text(
            "create trigger end_own_session before insert on deals"
            " for each statement execute function end_own_session()"
        ))  # fmt: skip


def pull_losing_its_session(world: World) -> tuple[str, RunRecord]:
    """A pull whose store session ends as it saves: the line it ends with (checked to be the
    error line naming the database's reason, exit 1), and its run as recorded."""
    assert cli(world, "runs").exit_code == 0  # the store's tables exist
    _drop_the_session_saving_deals(world)

    pulled = cli(world, "pull", "--system", "hubspot")

    assert pulled.exit_code == 1, pulled.output
    line = pulled.stderr.strip()
    assert line.startswith(f"crmsync: error: state store failed: {DROPPED}"), line
    with open_runtime(str(world.config), connect=False) as rt:
        [run] = rt.store.runs.recent(5)
    return line, run


def test_a_run_whose_store_session_ends_is_recorded_with_the_line_the_command_prints(
    pg_world: World,
) -> None:
    line, run = pull_losing_its_session(pg_world)

    assert run.status.value == "failed" and run.error is not None
    assert run.error == line.removeprefix("crmsync: error: "), run.error
    assert "[SQL:" not in run.error and "INSERT" not in run.error
