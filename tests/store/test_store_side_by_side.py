"""Writers of one PostgreSQL store in several processes at once (here: threads, each with a
store handle of its own, as each process has): what one writes never fails the other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import quote

import pytest

from sync.store import Store

pytestmark = pytest.mark.postgres


def _side_by_side(
    url: str,
    work: Callable[[Store, int], None],
    rounds: int = 150,
    other: Callable[[Store, int], None] | None = None,
) -> None:
    """`work(store, round)` in two threads at once (the second runs `other` if given), each
    with its own store handle; raises the first error either met."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(task: Callable[[Store, int], None]) -> None:
        try:
            with Store.open(url) as store:
                start.wait()
                for n in range(rounds):
                    task(store, n)
        except BaseException as exc:
            errors.append(exc)
            start.abort()  # the other thread fails its wait, if it still waits

    tasks = (work, other or work)
    threads = [threading.Thread(target=worker, args=(task,)) for task in tasks]
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


def test_a_pull_flagging_deals_while_a_reconcile_settles_their_flags_does_not_deadlock(
    new_store_url: Callable[[str], str],
) -> None:
    """`crmsync pull` takes no reconcile lock: it saves (and flags) deals while a reconcile
    drops the flags its analysis read, whatever order that analysis read them in."""
    url = new_store_url("postgresql")
    ids = [f"{n:04d}" for n in range(300)]

    def reconcile(store: Store, n: int) -> None:
        read = store.pending()
        store.settle_pending(dict(reversed(read.items())), [], {"config_fingerprint": "f"})

    def pull(store: Store, n: int) -> None:  # every deal changed again
        rows = [(i, "fp", None, False, {"id": i, "n": n}) for i in ids]
        store.save_deals("hubspot", rows, flag=True)

    _side_by_side(url, pull, rounds=60, other=reconcile)


# Some servers default every transaction to SERIALIZABLE (default_transaction_isolation).
_SERIALIZABLE = quote(" -cdefault_transaction_isolation=serializable")


def test_two_workers_open_a_new_store_at_once_on_a_server_defaulting_to_serializable(
    new_store_url: Callable[[str], str],
) -> None:
    """Two schedulers started at once on a new database: one creates the tables, the other
    finds them."""
    _side_by_side(new_store_url("postgresql") + _SERIALIZABLE, lambda store, _: None, rounds=1)


def test_writers_of_one_row_at_once_on_a_server_defaulting_to_serializable_both_succeed(
    new_store_url: Callable[[str], str],
) -> None:
    """Full pulls of two instances at once each forget the reconcile state: no 'could not
    serialize access'."""
    url = new_store_url("postgresql") + _SERIALIZABLE
    Store.open(url).close()
    _side_by_side(url, lambda store, _: store.forget_reconcile_state())
