"""A state store that fails under a run, or cannot be opened, is named in the line the command
ends with (its URL, any password masked), and one that cannot be reached says what to check:
a host runs several configs, a disk holds several stores."""

from __future__ import annotations

import resource
import subprocess

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sync.errors import store_failure
from sync.runtime import open_runtime
from tests.integration.conftest import World
from tests.integration.processes import cli
from tests.integration.test_store_dropped_mid_run import pull_losing_its_session
from tests.sandbox_env import CRMSYNC, crmsync_env


def _with_store(world: World, old: str, new: str) -> None:
    text = world.config.read_text()
    assert old in text
    world.config.write_text(text.replace(old, new, 1))


def _store_line(world: World) -> int:
    lines = world.config.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith("store: "))


def test_a_full_disk_line_names_the_sqlite_store(small_world: World) -> None:
    world = small_world
    db = world.config.parent / "crmsync.db"
    assert cli(world, "runs").exit_code == 0  # the store's tables exist
    limit = db.stat().st_size + 8192

    def full_disk() -> None:  # writes past it fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [*CRMSYNC, "pull", "--full", "--config", str(world.config)], env=crmsync_env(),
        capture_output=True, text=True, timeout=120, preexec_fn=full_disk,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith("crmsync: error: state store failed: "), line
    assert f", in sqlite:///{db} (" in line, line


@pytest.fixture
def world_with_password(pg_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """`pg_world`, its store URL holding a password (from the environment, as the README says
    to write it); the test server's trust auth never asks for it."""
    monkeypatch.setenv("CRMSYNC_TEST_PG_PASSWORD", "hunter2")
    _with_store(pg_world, "postgresql+psycopg://postgres@",
                "postgresql+psycopg://postgres:${CRMSYNC_TEST_PG_PASSWORD}@")  # fmt: skip
    return pg_world


@pytest.mark.postgres
def test_a_store_that_fails_mid_run_is_named_without_its_password(
    world_with_password: World,
) -> None:
    line, run = pull_losing_its_session(world_with_password)

    assert ", in postgresql+psycopg://postgres:***@127.0.0.1:5432/test?options=" in line, line
    assert run.error == line.removeprefix("crmsync: error: "), run.error
    assert "hunter2" not in line and "hunter2" not in run.error


@pytest.mark.postgres
def test_an_unreachable_store_says_where_its_url_is_set_and_what_to_check(
    world_with_password: World,
) -> None:
    world = world_with_password
    _with_store(world, "@127.0.0.1:5432/", "@127.0.0.1:1/")  # nothing listens there
    at = f"{world.config.name}:{_store_line(world)}"

    pulled = cli(world, "pull")
    checked = cli(world, "check")

    assert pulled.exit_code == 1, pulled.output
    line = pulled.stderr.strip()
    assert line.startswith("crmsync: error: cannot open state store "
                           "postgresql+psycopg://postgres:***@127.0.0.1:1/"), line  # fmt: skip
    assert line.endswith(
        f"; check `store` ({at}: host, port, database, user) and that the PostgreSQL server "
        "runs and takes connections from here"
    ), line
    problem = next(s for s in checked.stdout.splitlines() if s.startswith("problem: store: "))
    assert problem.endswith(line.rpartition(";")[2]), problem
    assert "hunter2" not in pulled.output + checked.output


def test_a_sqlite_store_that_cannot_be_made_says_where_its_path_is_set(
    small_world: World,
) -> None:
    world = small_world
    in_the_way = world.config.parent / "a-file"
    in_the_way.write_text("")
    _with_store(world, f"sqlite:///{world.config.parent}/crmsync.db",
                f"sqlite:///{in_the_way}/crmsync.db")  # fmt: skip
    at = f"{world.config.name}:{_store_line(world)}"

    pulled = cli(world, "pull")

    assert pulled.exit_code == 1, pulled.output
    assert pulled.stderr.strip() == (
        f"crmsync: error: cannot open state store sqlite:///{in_the_way}/crmsync.db: cannot "
        f"create its folder {in_the_way} (a file is in the way); check `store` ({at}) and that "
        "its folder can be made and written"
    )


@pytest.mark.postgres
def test_a_lock_connection_that_fails_names_the_store_too(world_with_password: World) -> None:
    # PostgreSQL locks hold a connection of their own (outside the pool): "too many clients"
    # or a server going down mid-start shows up there first
    with (
        open_runtime(str(world_with_password.config), connect=False) as rt,
        pytest.raises(OperationalError) as failed,
        rt.store.lock_engine.connect() as conn,
    ):
        conn.execute(text("select pg_terminate_backend(pg_backend_pid())"))
    line = store_failure(failed.value) or ""
    assert ", in postgresql+psycopg://postgres:***@127.0.0.1:5432/test?options=" in line, line
    assert "hunter2" not in line


def test_a_store_file_that_is_no_database_gets_no_hint_at_its_url(small_world: World) -> None:
    # the URL led to a file, which is the problem: "check its folder can be written" misled
    world = small_world
    not_a_database = world.config.parent / "notes.db"
    not_a_database.write_text("these are notes, not a database\n" * 200)
    _with_store(world, f"sqlite:///{world.config.parent}/crmsync.db",
                f"sqlite:///{not_a_database}")  # fmt: skip

    pulled = cli(world, "pull")

    assert pulled.exit_code == 1, pulled.output
    assert pulled.stderr.strip() == (
        f"crmsync: error: cannot open state store sqlite:///{not_a_database}: DatabaseError: "
        "file is not a database"
    )
