"""Reusable state-store URLs for tests: a SQLite file, or a throw-away PostgreSQL schema.

Import the fixtures into a test folder's conftest.py::

    from tests.fixtures_store import new_store_url, store_url  # noqa: F401

``store_url`` is parametrised over both dialects; ``new_store_url(dialect)`` hands out fresh,
isolated URLs on demand. Each PostgreSQL URL points at its own schema
``crmsync_test_<hex>`` (via ``search_path``), dropped at teardown, so parallel or dirty runs
never collide. PostgreSQL tests skip with the reason when the server is unreachable; set
``CRMSYNC_TEST_PG`` to use another server (a libpq URL, default
``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from sync.store import Store

PG_ADMIN_URL = os.environ.get("CRMSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DIALECTS = ("sqlite", "postgresql")


@cache
def pg_unavailable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (used as the skip reason)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'crmsync[postgres]')"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL at {PG_ADMIN_URL.split('@')[-1]} is unreachable: {first}"
    return None


def _sqlalchemy_url(libpq_url: str, schema: str) -> str:
    base = libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def store_url_for(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL of ``dialect``; skips the test if PostgreSQL is unreachable."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / f'crmsync-{uuid.uuid4().hex[:8]}.db'}"
        return
    if dialect != "postgresql":
        raise ValueError(f"unknown store dialect {dialect!r}")
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"crmsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _sqlalchemy_url(PG_ADMIN_URL, schema)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def new_store_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory: ``new_store_url("sqlite" | "postgresql") -> url``, all cleaned up after."""
    with ExitStack() as stack:
        yield lambda dialect: stack.enter_context(store_url_for(dialect, tmp_path))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store URL, once per dialect."""
    with store_url_for(request.param, tmp_path) as url:
        yield url


def end_lock_session(store: Store, name: str, namespace: str) -> None:
    """End the session holding the lock (as pg_terminate_backend, a server restart or a dropped
    connection would), from a connection of its own."""
    import psycopg

    from sync.locks import lock_key

    with store.engine.connect() as conn:
        schema = conn.exec_driver_sql("select current_schema()").scalar()
    key = lock_key(name, schema, namespace=namespace)
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        pids = [
            pid
            for (pid,) in admin.execute(
                "select pid from pg_locks where locktype = 'advisory' and granted"
                " and classid = %s and objid = %s and objsubid = 1",
                (classid, objid),
            )
        ]
        assert len(pids) == 1, f"{namespace} lock {name!r} held by sessions {pids}"
        admin.execute("select pg_terminate_backend(%s)", (pids[0],))
