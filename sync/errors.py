"""The engine's typed errors; each carries the process exit code the CLI turns it into.

Exit codes (DESIGN.md): 1 run failed; 2 usage or config error; 3 thresholds or limits breached.
Any exception with an integer `exit_code` attribute (config.ConfigError, connector errors) is
treated the same way by the CLI, so packages below `sync` need not import this module.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "CrmsyncError", "LimitsExceeded", "UsageError", "name_store", "run_error", "store_failure",
    "terminal_safe",
]  # fmt: skip


def terminal_safe(text: str) -> str:
    """One line a terminal shows as written: CRM-supplied control characters (escape
    sequences, bidi overrides, newlines) are spelled out, never interpreted."""
    if text.isprintable():  # no character of categories C* (nor Z* but the space): as it is
        return text
    return "".join(_spelled(c) for c in text)


def _spelled(char: str) -> str:
    if unicodedata.category(char) not in ("Cc", "Cf"):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class CrmsyncError(Exception):
    """A failure with a one-line, user-actionable message."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CrmsyncError):
    """The command was asked for something it cannot do as given (wrong options, missing file)."""

    exit_code = 2


class LimitsExceeded(CrmsyncError):
    """Report thresholds or reconcile limits (conflicts, unmatched) were breached."""

    exit_code = 3


def store_failure(exc: BaseException) -> str | None:
    """The one line for a state store that failed under a run (its disk, its server, the
    connection to it), else None. The database's own message only: SQLAlchemy's adds the SQL
    statement and its parameters, deal data up to hundreds of kilobytes."""
    from sqlalchemy.exc import OperationalError  # only on this error path

    if not isinstance(exc, OperationalError):
        return None
    cause = " ".join(str(exc.orig or exc).split())
    store = getattr(exc, _STORE, None)
    where = f", in {store}" if store else ""
    why, todo = _LIKELY.get(str(getattr(exc.orig, "sqlstate", None) or "")[:2], _UNKNOWN)
    return f"state store failed: {cause}{where} ({why}); {todo}, the journal resumes the run"


_STORE = "crmsync_store"


def name_store(exc: BaseException, store: str) -> None:
    """Let the line :func:`store_failure` makes of `exc` name the store it came from (its URL,
    the password masked): a host running several crmsync configs, or a disk of several
    stores, otherwise leaves the reader to guess which one failed."""
    setattr(exc, _STORE, store)


# What most likely happened, and what to do. PostgreSQL's SQLSTATE classes (psycopg's errors
# carry theirs as `sqlstate`): 40 a transaction rolled back (deadlock, serialization), 57 an
# operator's intervention (a connection ended); anything else, and SQLite, as before.
_UNKNOWN = (
    "disk full, its file or directory read-only, or the database unreachable?",
    "fix that and run again",
)
_LIKELY = {
    "40": ("its transaction collided with another process's", "run again"),
    "57": ("the database server ended the connection", "run again"),
}


def run_error(exc: BaseException) -> str:
    """What a run record keeps (`crmsync runs`) of the error that ended its run: the line the
    command prints for it."""
    return store_failure(exc) or str(exc)
