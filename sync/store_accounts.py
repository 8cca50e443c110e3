"""Which stored deals belong to which account, and the new names a pull gives them.

A deal's account (Salesforce's Account, HubSpot's primary or only company, Pipedrive's
organization) is named in its snapshot (`extra.account`, by `extra.account_id`). Renaming the
account modifies the account, not its deals, so an incremental read of changed deals never
reads the new name. The store keeps each snapshot's account id in its own indexed column,
`deals.account_id`, written with the snapshot; a pull then finds the deals of the accounts
changed since its cursor without reading the store whole, and writes the new name into their
snapshots (sync/pull.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, exists, false, select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.schema import chunks, transaction
from sync.store_records import check_no_secrets

__all__ = ["account_id_of", "holds_accounts", "rename_accounts", "with_account_name"]

_BATCH = 1000


def account_id_of(payload: Mapping[str, Any]) -> str | None:
    """The account id a snapshot names (what `deals.account_id` holds), or None."""
    account = (payload.get("extra") or {}).get("account_id")
    return str(account) if account not in (None, "") else None


def with_account_name(payload: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The snapshot with its account named `name` (None, or blank: no name), as the mapping
    stores an account's name."""
    extra = {k: v for k, v in (payload.get("extra") or {}).items() if k != "account"}
    if name is not None and name.strip():
        extra["account"] = name
    return {**payload, "extra": extra}


def holds_accounts(engine: Engine, instance: str) -> bool:
    """Whether some live deal of the instance names an account (by id)."""
    d = t.deals.c
    query = select(
        exists().where(d.instance == instance, d.account_id.is_not(None), d.deleted == false())
    )
    with transaction(engine, write=False) as conn:
        return bool(conn.execute(query).scalar())


def rename_accounts(conn: Connection, instance: str, names: Mapping[str, str | None]) -> list[str]:
    """Give the live snapshots of the accounts in `names` (account id -> its name now) that
    name it otherwise that name; returns their ids, in id order. The rest of each snapshot is
    as its pull read it, and so is the run that pull was (`last_seen_run`): it dates the
    snapshot's fields, which this does not read again."""
    d = t.deals.c
    written: list[str] = []
    for chunk in chunks(sorted(names), _BATCH):
        query = (
            select(d.id, d.account_id, d.payload)
            .where(d.instance == instance, d.account_id.in_(chunk), d.deleted == false())
            .order_by(d.id)
        )
        rows = []
        for row in conn.execute(query):
            payload = with_account_name(row.payload, names[row.account_id])
            if payload != row.payload:
                check_no_secrets(payload, f"deal {instance}/{row.id}")
                rows.append({"p_id": row.id, "p_payload": payload})
        if rows:
            stmt = (
                t.deals.update()
                .where(d.instance == instance, d.id == bindparam("p_id"))
                .values(payload=bindparam("p_payload"))
            )
            conn.execute(stmt, rows)
            written += [r["p_id"] for r in rows]
    return sorted(written)
