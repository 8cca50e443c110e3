"""Match keys of the stored deals, as digests: which settled deals share a key with a changed one.

A full analysis records the key of every live deal; an incremental one updates those it
loaded. An incremental analysis then loads the settled deals whose key a changed deal now has,
so it reports the same same-key duplicates a full analysis does (sync/incremental.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sync import schema as t
from sync.normalize import MatchKey
from sync.schema import chunks, transaction, upsert

__all__ = ["key_digest", "refs_with_digests", "save_digests"]

_BATCH = 1000


def key_digest(key: MatchKey) -> str:
    return hashlib.blake2b("\x1f".join(key).encode(), digest_size=16).hexdigest()


def save_digests(
    engine: Engine, digests: Mapping[tuple[str, str], str | None], *, replace: bool
) -> None:
    """Each (instance, deal id)'s digest; None (no key, or deleted) drops its row. `replace`:
    these are all the deals there are (a full analysis), every other row goes."""
    table = t.match_keys
    rows = [
        {"instance": i, "deal_id": d, "digest": digest}
        for (i, d), digest in sorted(digests.items())
        if digest is not None
    ]
    gone = sorted(ref for ref, digest in digests.items() if digest is None)
    with transaction(engine) as conn:
        if replace:
            conn.execute(table.delete())
        else:
            for instance in sorted({i for i, _ in gone}):
                ids = [d for i, d in gone if i == instance]
                for chunk in chunks(ids, _BATCH):
                    conn.execute(
                        table.delete().where(
                            table.c.instance == instance, table.c.deal_id.in_(chunk)
                        )
                    )
        stmt = (
            table.insert() if replace else upsert(conn, table, ("instance", "deal_id"), ("digest",))
        )
        for batch in chunks(rows, _BATCH):
            conn.execute(stmt, batch)


def refs_with_digests(engine: Engine, digests: Iterable[str]) -> set[tuple[str, str]]:
    """(instance, deal id) of every stored deal whose key has one of these digests."""
    table = t.match_keys
    found: set[tuple[str, str]] = set()
    with transaction(engine, write=False) as conn:
        for chunk in chunks(sorted(set(digests)), _BATCH):
            query = select(table.c.instance, table.c.deal_id).where(table.c.digest.in_(chunk))
            found.update((r.instance, r.deal_id) for r in conn.execute(query))
    return found
