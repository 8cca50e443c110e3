from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sync.store import DealRow, Store

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _deal(i: int, fingerprint: str = "v1", deleted: bool = False) -> DealRow:
    payload = {"system": "hubspot", "id": f"{i:06d}", "name": f"Deal {i}", "amount": "10.50"}
    return (f"{i:06d}", fingerprint, T0, deleted, payload)


def test_deals_round_trip_with_cursor(store: Store) -> None:
    assert store.cursor("hubspot") is None
    saved = store.save_deals("hubspot", [_deal(2), _deal(1)], cursor="after-2", run_id="r1")
    assert saved == 2
    assert store.cursor("hubspot") == "after-2"
    assert list(store.iter_deals("hubspot")) == [_deal(1)[4], _deal(2)[4]]
    assert store.deal_count("hubspot") == 2
    assert store.deal_count("pipedrive") == 0
    assert store.fingerprints("hubspot") == {"000001": "v1", "000002": "v1"}
    assert store.get_deals("hubspot", ["000002", "missing"]) == {"000002": _deal(2)[4]}


def test_a_deal_read_again_unchanged_is_neither_written_nor_flagged(store: Store) -> None:
    """An incremental read re-reads the deals of its overlap: only real changes (payload or
    deleted state) count as saved and reach the next incremental reconcile."""
    store.save_deals("hubspot", [_deal(1), _deal(2), _deal(3)], cursor="c1")
    renamed = ("000002", "v2", T0, False, {"id": "000002", "name": "Renamed"})
    again = [_deal(1), renamed, _deal(3, deleted=True)]
    assert store.save_deals("hubspot", again, cursor="c2", flag=True) == 2
    assert set(store.pending()) == {("hubspot", "000002"), ("hubspot", "000003")}
    assert store.cursor("hubspot") == "c2"
    assert store.save_deals("hubspot", again, cursor="c3", flag=True) == 0
    assert store.cursor("hubspot") == "c3"


def test_upsert_replaces_the_snapshot_per_instance(store: Store) -> None:
    store.save_deals("hubspot", [_deal(1), _deal(2)])
    store.save_deals("pipedrive", [_deal(1)])
    changed = ("000001", "v2", T0, False, {"id": "000001", "name": "Renamed"})
    store.save_deals("hubspot", [changed])
    assert store.get_deals("hubspot", ["000001"]) == {"000001": {"id": "000001", "name": "Renamed"}}
    assert store.fingerprints("hubspot")["000001"] == "v2"
    assert store.get_deals("pipedrive", ["000001"]) == {"000001": _deal(1)[4]}
    assert store.deal_count("hubspot") == 2


def test_cursor_only_advances_with_the_whole_batch(store: Store) -> None:
    store.save_deals("hubspot", [_deal(1)], cursor="c1")

    def page_that_breaks() -> Iterator[DealRow]:
        yield _deal(1, fingerprint="v2")
        for i in range(2, 1600):  # beyond one 1000-row batch: the first batch was executed
            yield _deal(i)
        raise ConnectionError("connection reset while paging")

    with pytest.raises(ConnectionError):
        store.save_deals("hubspot", page_that_breaks(), cursor="c2", batch_size=1000)
    assert store.cursor("hubspot") == "c1"
    assert store.deal_count("hubspot") == 1
    assert store.fingerprints("hubspot") == {"000001": "v1"}


def test_cursor_can_advance_without_deals(store: Store) -> None:
    store.save_cursor("hubspot", "c9")
    assert store.cursor("hubspot") == "c9"


def test_the_mapping_of_an_instance_with_a_long_or_odd_name_is_kept_with_its_cursor(
    store: Store,
) -> None:
    # A config names an instance in up to 200 characters; the store's meta keys hold 64.
    long_name, longer_name = "sf-" + "e" * 197, "sf-" + "e" * 196 + "x"
    for instance in (long_name, longer_name, "sf emea/ü@\u2028"):
        store.save_cursor(instance, "c1", f"fp-{instance}")
    assert store.cursor(long_name) == "c1"
    assert store.mapping_of(long_name) == f"fp-{long_name}"
    assert store.mapping_of(longer_name) == f"fp-{longer_name}"
    assert store.mapping_of("sf emea/ü@\u2028") == "fp-sf emea/ü@\u2028"
    assert store.mapping_of("sf-other") is None


def test_deleted_deals_are_hidden_unless_asked_for(store: Store) -> None:
    store.save_deals("hubspot", [_deal(1), _deal(2), _deal(3, deleted=True)])
    assert store.mark_deleted("hubspot", ["000002", "000003", "nope"], run_id="r2") == 1
    assert list(store.iter_deals("hubspot")) == [_deal(1)[4]]
    assert len(list(store.iter_deals("hubspot", include_deleted=True))) == 3
    assert store.deal_count("hubspot") == 1
    assert store.deal_count("hubspot", include_deleted=True) == 3
    # The snapshot says so too: the engine reads snapshots, not the column.
    assert store.get_deals("hubspot", ["000002"])["000002"] == {
        **_deal(2)[4],
        "extra": {"deleted": True},
    }
    # A deal that shows up again is live again.
    store.save_deals("hubspot", [_deal(2)])
    assert store.deal_count("hubspot") == 2


def test_iter_deals_streams_20k_in_order_while_the_store_stays_writable(store: Store) -> None:
    store.save_deals("hubspot", (_deal(i) for i in range(20_000)), cursor="end")
    stream = store.iter_deals("hubspot", batch_size=500)
    first = next(stream)
    assert first["id"] == "000000"
    # Another writer is not blocked by the open read stream.
    store.save_deals("pipedrive", [_deal(1)], cursor="p1")
    ids = [first["id"]] + [deal["id"] for deal in stream]
    assert ids == [f"{i:06d}" for i in range(20_000)]
    assert store.cursor("pipedrive") == "p1"


def test_abandoned_stream_releases_its_connection(store: Store) -> None:
    store.save_deals("hubspot", (_deal(i) for i in range(3000)))
    for _ in range(30):  # more than the pool holds, so a leak would hang or fail
        stream = store.iter_deals("hubspot", batch_size=100)
        next(stream)
        stream.close()
    assert store.deal_count("hubspot") == 3000


def test_two_pulls_saving_the_same_deals_in_other_orders_both_succeed(store_url: str) -> None:
    """Two pulls of one instance at once (a person's and a scheduler's): a full one lists the
    deals by id, an incremental one by modification time. Neither may fail on a deadlock."""
    ids = list(range(1000))
    failed: list[str] = []
    barrier = threading.Barrier(2)

    def pull(order: list[int], version: str) -> None:
        try:
            with Store.open(store_url) as store:
                barrier.wait()
                for _ in range(4):
                    rows = [_deal(i, version) for i in order]
                    gaps = [{"system": "hubspot", "id": f"x{i}", "field": "f", "reason": "r"}
                            for i in order]  # fmt: skip
                    store.save_deals("hubspot", rows, "c", gaps=gaps, flag=True)
                    store.mark_deleted("hubspot", [f"{i:06d}" for i in order[:300]], flag=True)
        except Exception as exc:
            failed.append(str(exc).splitlines()[0])

    threads = [
        threading.Thread(target=pull, args=(ids, "v1")),
        threading.Thread(target=pull, args=(ids[::-1], "v2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failed == []
