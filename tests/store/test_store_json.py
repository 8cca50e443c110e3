"""JSON columns read back exactly what was written, whichever decoder reads them."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from sync.store import Store

T0 = datetime(2026, 1, 2, tzinfo=UTC)


def test_non_finite_numbers_written_by_json_read_back_on_sqlite(store: Store) -> None:
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL's json type refuses NaN/Infinity on the way in")
    payload = {"id": "1", "extra": {"ratio": math.inf, "big": 2**70, "text": "é"}}
    store.save_deals("hubspot", [("1", "fp", T0, False, payload)])
    assert list(store.iter_deals("hubspot")) == [payload]


def test_streamed_payloads_keep_nesting_unicode_and_big_integers(store: Store) -> None:
    payloads = [
        {"id": f"{i:04d}", "extra": {"nested": [1, {"a": None}], "n": 2**63 + i, "t": "ü✓"}}
        for i in range(2500)
    ]
    store.save_deals("hubspot", [(p["id"], "fp", T0, False, p) for p in payloads])
    assert list(store.iter_deals("hubspot", batch_size=1000)) == payloads
