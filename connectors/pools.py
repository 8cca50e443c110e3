"""Closing a connector's HTTP connections when it closes, not at some later garbage collection.

Since urllib3 2.0, `PoolManager.clear()` (what `requests.Session.close()` and the HubSpot
client's pool reset call) only forgets its pools: each pool closes its idle connections when
it is garbage-collected (urllib3/urllib3#2661, `weakref.finalize` in `HTTPConnectionPool`).
A failed call keeps its pool alive past that: the error's traceback, a reference cycle, holds
the answer, and the answer its pool. So after a run that failed on a CRM, one keep-alive socket
to that CRM stayed open until the cyclic collector ran, in `crmsync schedule` until about the
next firing. Closing each pool itself closes its connections at once.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager

__all__ = ["close_pools", "close_session"]


def close_pools(manager: PoolManager) -> None:
    """Close every connection pool of ``manager`` (its idle connections) and forget them. A
    connection still lent out closes as its answer is released: its pool is closed."""
    # keys(): a copy taken under the container's lock; iterating it raises NotImplementedError
    for key in manager.pools.keys():  # noqa: SIM118
        pool = manager.pools.get(key)
        if pool is not None:
            pool.close()
    manager.clear()


def close_session(session: requests.Session) -> None:
    """Close the connection pools of every adapter of ``session``, proxies' too, then it."""
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            close_pools(adapter.poolmanager)
            for proxy in adapter.proxy_manager.values():
                close_pools(proxy)
    session.close()
