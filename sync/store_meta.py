"""The store's meta values: each instance's mapping fingerprint, and the state an incremental
reconcile builds on with the epoch that tells whether a full pull has forgotten it since.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import transaction, upsert

__all__ = [
    "drop_reconcile_state",
    "mapping_key",
    "put_meta",
    "read_meta",
    "read_reconcile_epoch",
    "read_reconcile_state",
    "record_reconcile_state",
    "stage_names_key",
]

_RECONCILE_STATE = "reconcile_state"
_RECONCILE_EPOCH = "reconcile_epoch"
_MAPPING = "mapping"  # @ instance: the mapping its stored deals were read under
_STAGE_NAMES = "stages"  # @ instance: its native stages' names (`sync.stage_names`)


def _instance_key(prefix: str, instance: str) -> str:
    """A meta key of one instance. A key holds 64 characters and an instance name 200: a
    longer one is keyed by its digest (PostgreSQL refused it, so every pull of that instance
    failed as it saved its cursor)."""
    key = f"{prefix}@{instance}"
    if len(key) <= 64:  # String(64): sync.schema.meta
        return key
    return f"{prefix}#" + hashlib.sha256(instance.encode()).hexdigest()[: 63 - len(prefix)]


def mapping_key(instance: str) -> str:
    """The meta key of an instance's mapping fingerprint."""
    return _instance_key(_MAPPING, instance)


def stage_names_key(instance: str) -> str:
    """The meta key of the names of an instance's native stages, as its last pull read them."""
    return _instance_key(_STAGE_NAMES, instance)


def put_meta(conn: Connection, key: str, value: str) -> None:
    # One statement: with a delete, then an insert, two processes writing one key at once
    # (full pulls of two instances, each forgetting the reconcile state) both inserted it
    # on PostgreSQL, and one failed on the duplicate key.
    conn.execute(upsert(conn, t.meta, ("key",), ("value",)), {"key": key, "value": value})


def read_meta(engine: Engine, key: str) -> str | None:
    query = select(t.meta.c.value).where(t.meta.c.key == key)
    with transaction(engine, write=False) as conn:
        return conn.execute(query).scalar()


def record_reconcile_state(conn: Connection, state: Mapping[str, Any]) -> None:
    put_meta(conn, _RECONCILE_STATE, json.dumps(dict(state), sort_keys=True))


def read_reconcile_state(engine: Engine) -> dict[str, Any] | None:
    """The recorded state, unless the epoch it was recorded in is no longer the store's."""
    query = select(t.meta.c.key, t.meta.c.value).where(
        t.meta.c.key.in_([_RECONCILE_STATE, _RECONCILE_EPOCH])
    )
    with transaction(engine, write=False) as conn:
        found = {r.key: r.value for r in conn.execute(query)}
    state = json.loads(found[_RECONCILE_STATE]) if found.get(_RECONCILE_STATE) else None
    if state is None or state.get("epoch") != found.get(_RECONCILE_EPOCH):
        return None
    return dict(state)


def read_reconcile_epoch(engine: Engine) -> str | None:
    return read_meta(engine, _RECONCILE_EPOCH)


def drop_reconcile_state(conn: Connection) -> None:
    """Drop the state and start a new epoch."""
    conn.execute(t.meta.delete().where(t.meta.c.key == _RECONCILE_STATE))
    put_meta(conn, _RECONCILE_EPOCH, secrets.token_hex(8))
