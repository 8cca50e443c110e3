"""`one_snapshot`: the reads of an analysis (a reconcile's, the report's) see the store at one
moment, however long the analysis computes between them."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from sync.schema import one_snapshot
from sync.store import Link, LinkMethod, Store

pytestmark = pytest.mark.postgres


def test_reads_in_one_snapshot_do_not_see_a_write_committed_between_them(
    new_store_url: Callable[[str], str],
) -> None:
    url = new_store_url("postgresql")
    with Store.open(url) as reader, Store.open(url) as writer:
        with one_snapshot(reader.engine):
            assert reader.links() == {}
            writer.save_links([Link("E1", "hubspot", "1", LinkMethod.KEY)])
            assert reader.links() == {}
            assert reader.bases() == {}
        assert reader.links() == {("hubspot", "1"): "E1"}


def test_a_snapshot_outlives_the_servers_idle_in_transaction_timeout(
    new_store_url: Callable[[str], str],
) -> None:
    """Matching and diffing a million deals computes for minutes between two reads: a server
    that ends sessions idle in a transaction (a common safeguard) must not end the analysis."""
    url = new_store_url("postgresql")
    timeout = quote(" -cidle_in_transaction_session_timeout=300")
    with Store.open(url + timeout) as store, one_snapshot(store.engine):
        store.links()
        time.sleep(1)
        assert store.bases() == {}
