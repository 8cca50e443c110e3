"""The one line a run that the state store failed under ends with names what most likely
happened: a colliding transaction or a server ending the connection is no full disk."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

from sync.errors import store_failure


def _failed(orig: BaseException) -> str:
    line = store_failure(OperationalError("UPDATE pending SET ...", {}, orig))
    assert line is not None and "\n" not in line
    return line


@pytest.mark.parametrize(
    ("orig", "says"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), "collided with another"),
        (psycopg.errors.SerializationFailure("could not serialize access"), "collided"),
        (
            psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
            "the database server ended the connection",
        ),
        (sqlite3.OperationalError("database or disk is full"), "disk full"),
    ],
)
def test_a_store_failure_says_what_most_likely_happened(orig: BaseException, says: str) -> None:
    line = _failed(orig)
    assert line.startswith(f"state store failed: {orig}")
    assert says in line
    assert line.endswith("run again, the journal resumes the run")


def test_a_deadlock_is_not_blamed_on_the_disk() -> None:
    assert "disk full" not in _failed(psycopg.errors.DeadlockDetected("deadlock detected"))
