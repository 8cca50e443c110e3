"""Writers of one PostgreSQL store in several processes at once (here: threads, each with a
store handle of its own, as each process has): what one writes never fails the other."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from sync.store import Store

pytestmark = pytest.mark.postgres


def _side_by_side(url: str, work: Callable[[Store, int], None], rounds: int = 150) -> None:
    """`work(store, round)` in two threads at once, each with its own store handle; raises the
    first error either met."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        with Store.open(url) as store:
            start.wait()
            try:
                for n in range(rounds):
                    work(store, n)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_full_pulls_of_two_instances_at_once_both_forget_the_reconcile_state(
    new_store_url: Callable[[str], str],
) -> None:
    """Each full pull (`crmsync pull --system X --full`, one per instance on two machines)
    forgets the last analysis's state as it begins and ends."""
    url = new_store_url("postgresql")
    with Store.open(url) as store:
        store.settle_pending({}, [], {"config_fingerprint": "f", "epoch": store.reconcile_epoch()})
    _side_by_side(url, lambda store, _: store.forget_reconcile_state())
    with Store.open(url) as store:
        assert store.reconcile_state() is None
        assert store.reconcile_epoch() is not None
