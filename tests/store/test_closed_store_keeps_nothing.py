"""A closed store leaves nothing of its engine alive in the process.

`crmsync schedule` opens the store anew for every firing of every entry, for weeks: anything a
closed store leaves behind (in a module-level cache, say) adds up, firing after firing.
"""

from __future__ import annotations

import gc
import weakref

from sync.store import Store


def test_a_closed_store_leaves_its_engine_to_be_freed(store_url: str) -> None:
    Store.open(store_url).close()  # created (once in a store's life), as a daemon finds it
    engines = []
    for firing in range(3):
        with Store.open(store_url) as store:
            store.mark_pending("hubspot", [f"d{firing}"])  # a bulk upsert, as every pull does
            assert set(store.pending()) >= {("hubspot", f"d{firing}")}
            engines.append((weakref.ref(store.engine), weakref.ref(store.engine.dialect)))
        del store
    gc.collect()
    alive = [i for i, refs in enumerate(engines) if any(ref() is not None for ref in refs)]
    assert alive == [], f"the engines of closed stores {alive} are still alive"
