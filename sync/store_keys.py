"""Match keys of the stored deals, as digests: which settled deals share a key with a changed one.

A full analysis records the key of every live deal; an incremental one updates those it
loaded. An incremental analysis then loads the settled deals whose key a changed deal now has,
so it reports the same same-key duplicates a full analysis does (sync/incremental.py).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from sync import schema as t
from sync.normalize import MatchKey
from sync.schema import chunks, transaction, upsert_rows

__all__ = ["key_digest", "refs_with_digests", "save_digests"]

_BATCH = 1000


def key_digest(key: MatchKey) -> str:
    return hashlib.blake2b("\x1f".join(key).encode(), digest_size=16).hexdigest()


def save_digests(
    engine: Engine, digests: Mapping[tuple[str, str], str | None], *, replace: bool
) -> None:
    """Each (instance, deal id)'s digest; None (no key, or deleted) drops its row. `replace`:
    these are all the deals there are (a full analysis), every other row goes.

    A full analysis reads the stored digests in one query and writes only the rows that differ:
    from one full run to the next nearly every key stays, and rewriting a million rows costs
    more than the analysis that found them."""
    table = t.match_keys
    with transaction(engine) as conn:
        if replace:
            stored = _stored(conn)
            gone = [ref for ref in stored if digests.get(ref) is None]
            rows = [
                (i, d, digest)
                for (i, d), digest in digests.items()
                if digest is not None and stored.get((i, d)) != digest
            ]
        else:
            gone = [ref for ref, digest in digests.items() if digest is None]
            rows = [(i, d, digest) for (i, d), digest in digests.items() if digest is not None]
        ids: dict[str, list[str]] = defaultdict(list)
        for instance, deal_id in gone:
            ids[instance].append(deal_id)
        for instance, wanted in ids.items():
            for chunk in chunks(wanted, _BATCH):
                conn.execute(
                    table.delete().where(table.c.instance == instance, table.c.deal_id.in_(chunk))
                )
        columns = ("instance", "deal_id", "digest")
        upsert_rows(conn, table, columns[:2], columns[2:], columns, rows, batch_size=_BATCH)


def _stored(conn: Connection) -> dict[tuple[str, str], str]:
    table = t.match_keys
    query = select(table.c.instance, table.c.deal_id, table.c.digest)
    result = conn.execute(query, execution_options={"yield_per": _BATCH * 10})
    stored: dict[tuple[str, str], str] = {}
    for partition in result.partitions():
        stored.update(((i, d), digest) for i, d, digest in partition)
    return stored


def refs_with_digests(engine: Engine, digests: Iterable[str]) -> set[tuple[str, str]]:
    """(instance, deal id) of every stored deal whose key has one of these digests."""
    table = t.match_keys
    found: set[tuple[str, str]] = set()
    with transaction(engine, write=False) as conn:
        for chunk in chunks(sorted(set(digests)), _BATCH):
            query = select(table.c.instance, table.c.deal_id).where(table.c.digest.in_(chunk))
            found.update((r.instance, r.deal_id) for r in conn.execute(query))
    return found
