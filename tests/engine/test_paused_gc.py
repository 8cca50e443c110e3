"""The cyclic collector waits during bulk work and does not then rescan its results as young."""

from __future__ import annotations

import gc

from sync.match import paused_gc


def test_what_a_paused_block_allocated_is_left_to_full_collections() -> None:
    with paused_gc():
        assert not gc.isenabled()
        kept = [[index] for index in range(10_000)]
    assert gc.isenabled()
    young = {id(item) for item in gc.get_objects(generation=0)}
    assert id(kept) not in young and not any(id(item) in young for item in kept)
    assert any(item is kept for item in gc.get_objects(generation=2))


def test_a_nested_pause_leaves_the_collector_to_the_outer_one() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_the_caller_froze_stay_frozen_after_a_paused_block() -> None:
    frozen_by_caller = [[index] for index in range(1_000)]
    gc.freeze()
    try:
        with paused_gc():
            pass
        # Frozen objects are in no generation the collector lists. (The freeze count is no
        # measure: it drops whenever another test's frozen garbage is freed meanwhile.)
        tracked = {id(item) for item in gc.get_objects()}
        assert id(frozen_by_caller) not in tracked, "paused_gc unfroze what its caller froze"
        assert not any(id(item) in tracked for item in frozen_by_caller)
    finally:
        gc.unfreeze()
