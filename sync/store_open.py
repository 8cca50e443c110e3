"""The state store a config names, opened; one that cannot be reached says where its URL is set
and what to check (a wrong port named no key to fix, nor a server to start)."""

from __future__ import annotations

from sqlalchemy import make_url

from config import Config
from sync.store import Store, StoreUnreachable

__all__ = ["open_store"]


def open_store(config: Config) -> Store:
    try:
        return Store.open(config.store_url)
    except StoreUnreachable as exc:
        if exc.answered:  # the URL led to a database: a hint at the URL would mislead
            raise
        raise StoreUnreachable(f"{exc}; {_what_to_check(config)}") from None


def _what_to_check(config: Config) -> str:
    line = config.lines.get(("store",))
    if line is None:  # no `store` key: the default SQLite file beside the config
        return f"the store is crmsync.db beside {config.path.name}: check that folder is writable"
    key = f"`store` ({config.path.name}:{line}"
    if make_url(config.store_url).get_backend_name() == "postgresql":
        return (
            f"check {key}: host, port, database, user) and that the PostgreSQL server runs and "
            "takes connections from here"
        )
    return f"check {key}) and that its folder can be made and written"
