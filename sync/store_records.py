"""Value types read from and written to the state store, and the guard that keeps secrets out."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from mapping.model import Ref
from sync.schema import StoreError

__all__ = [
    "ROLLBACK_PLAN_PREFIX",
    "AuditEntry",
    "FailureRecord",
    "JournalEntry",
    "JournalOp",
    "JournalRecord",
    "JournalState",
    "Link",
    "LinkMethod",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "SecretInPayload",
    "check_no_secrets",
    "copied_from",
    "new_run_id",
    "one_line",
    "rollback_plan_id",
]


# A rollback's plan, and so its journal records and its run's `plan` count, is named after the
# run it undoes.
ROLLBACK_PLAN_PREFIX = "rollback-"


def rollback_plan_id(run_id: str) -> str:
    return f"{ROLLBACK_PLAN_PREFIX}{run_id}"


class RunKind(StrEnum):
    PULL = "pull"
    RECONCILE_DRY_RUN = "reconcile-dry-run"
    RECONCILE = "reconcile"
    APPLY = "apply"
    ROLLBACK = "rollback"
    REPORT = "report"
    LINKS = "links"  # a person's correction of matching (`crmsync links`)
    DEAD_LETTERS = "dead-letters"  # a person released dead letters (`crmsync dead-letters retry`)
    FORGET = "forget"  # a person removed a retired instance's state (`crmsync forget`)


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    PARTIAL = "partial"
    INTERRUPTED = "interrupted"  # stopped on request (SIGTERM); the journal resumes it


class LinkMethod(StrEnum):
    """How a deal was linked to its entity (matching evidence, or crmsync created it)."""

    STORED = "stored"
    EXTERNAL_ID = "external_id"
    LINK_ID = "link_id"
    KEY = "key"
    FUZZY = "fuzzy"
    CREATED = "created"
    MANUAL = "manual"


class JournalOp(StrEnum):
    UPDATE = "update"
    CREATE = "create"
    ROLLBACK = "rollback"
    DELETE = "delete"  # a rollback deleting a copy the rolled-back run created


class JournalState(StrEnum):
    INTENDED = "intended"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    job: str
    kind: RunKind
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    config_fingerprint: str | None
    counts: dict[str, Any]
    calls: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class Link:
    """Deal ``(instance, deal_id)`` is part of entity ``entity_id``."""

    entity_id: str
    instance: str
    deal_id: str
    method: LinkMethod
    score: float | None = None
    matched_at: datetime | None = None  # None: the store stamps the time of saving
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One plan change about to be written; ``field`` is None for whole-record ops (create)."""

    plan_change_id: str
    instance: str
    deal_id: str | None
    op: JournalOp
    field: str | None
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class JournalRecord:
    run_id: str
    seq: int
    plan_id: str
    entry: JournalEntry
    state: JournalState
    result: dict[str, Any] | None
    attempt: int
    updated_at: datetime

    def landed(self, entry: AuditEntry) -> AuditEntry:
        """`entry`, the audit entry of this journaled write, which a later apply found landed
        (the run that journaled it was killed, or its call cut, before it could record it):
        this run's, at the time it journaled it, just before sending. Audited at the time it
        was found, the write looked newer than it is: a `newest` policy took crmsync's write
        (laid over an older snapshot, or a copy no pull read yet: sync/known_writes.py) for
        an edit made after a person's later edit in another CRM."""
        return replace(entry, run_id=self.run_id, at=self.updated_at)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    run_id: str
    instance: str
    deal_id: str | None
    field: str | None
    before: Any
    after: Any
    reason: str
    at: datetime | None = None  # None: the store stamps the time of appending


@dataclass(frozen=True, slots=True)
class FailureRecord:
    instance: str
    deal_id: str
    field: str  # "" for the whole record
    reason: str
    attempts: int
    first_seen: datetime
    last_seen: datetime
    dead: bool


class SecretInPayload(StoreError):
    """A value bound for the store has a key that names a credential."""


# Normalised (lower-case, alphanumerics only) key names, matched whole or as a suffix, that
# name credentials. The store refuses them instead of stripping: a token reaching it is a bug.
_SECRET_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "credential",
    "credentials",
    "sessionid",
    "authorization",
    "privatekey",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=8192)  # the same few keys repeat across millions of payloads
def _looks_secret(key: str) -> bool:
    return _NOT_ALNUM.sub("", key.lower()).endswith(_SECRET_SUFFIXES)


_SCALARS = (str, int, float, bool, type(None))


def check_no_secrets(value: Any, where: str) -> None:
    """Raise SecretInPayload if any mapping key inside ``value`` names a credential."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if isinstance(key, str) and _looks_secret(key):
                    raise SecretInPayload(
                        f"refusing to store {where}: key {key!r} looks like a credential "
                        "(secrets never go into the state store; drop it before saving)"
                    )
                # Exact type test first: isinstance against ABCs is slow on hot paths.
                if type(sub) not in _SCALARS:
                    stack.append(sub)
        elif isinstance(item, list | tuple):
            stack.extend(sub for sub in item if type(sub) not in _SCALARS)


def one_line(message: str | None, limit: int = 500) -> str | None:
    if message is None:
        return None
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def new_run_id(now: datetime) -> str:
    """Sortable run id such as ``20261126T110501Z-ab12cd34``: 32 random bits, so that runs
    started in the same second (several workers, a scheduler and a person) do not collide."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def copied_from(after: Mapping[str, Any]) -> Ref:
    """The deal a copy crmsync created copies, as the create's journal or audit entry names
    it (`after["source"]`, "system:id", as sync/apply_creates.py writes it)."""
    system, _, deal_id = str(after.get("source", "")).partition(":")
    return Ref(system, deal_id)
