"""What `crmsync check` says of a schedule entry whose last run did not do its work: a run that
failed, or a partial one (some writes refused, left for the next run), is a problem, so
monitoring that runs `check` is told of a revoked token before the next morning's numbers are.

An interrupted run (SIGTERM: a deploy, a shutdown) is none: it was stopped on request, the
journal resumes it, and a firing that nothing runs afterwards is a problem of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from config import Config, redact_url
from connectors.credentials import redact, secret_values
from sync.connect import connector_settings
from sync.jobs import last_served_run
from sync.store import RunStatus, Store

__all__ = ["undone_run"]

_UNDONE = {RunStatus.FAILED: "failed", RunStatus.PARTIAL: "was partial"}


def undone_run(
    config: Config, store: Store, entry: str, shown: Callable[[datetime], str]
) -> str | None:
    """The problem line of `entry` when the newest of its runs that ended by itself (ok,
    partial or failed: one running or interrupted since says nothing yet) did not end ok;
    None otherwise. ``shown``: a moment as the entry's time zone shows it."""
    run = last_served_run(store, entry)
    if run is None or run.status not in _UNDONE:
        return None
    why = f": {_masked(run.error, _secrets(config))}" if run.error else ""
    return (
        f"problem: schedule {entry}: its last run ({run.id}, started {shown(run.started_at)}) "
        f"{_UNDONE[run.status]}{why}"
    )


def _secrets(config: Config) -> list[str]:
    return [
        value
        for name in config.systems
        for value in secret_values(connector_settings(config, name).credentials)
    ]


def _masked(error: str, secrets: Iterable[str]) -> str:
    """The run's error as recorded, with the config's credentials and any URL's password
    masked: connectors mask their own, but the record may come from another crmsync or a
    plugin, and a line `check` prints goes to monitoring mails and chats."""
    return redact_url(redact(error, secrets))
