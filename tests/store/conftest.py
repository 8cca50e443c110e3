"""Store fixtures: every test using ``store`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ is not an installed package; make `tests.fixtures_store` importable from here even
# when pytest's configuration does not put the repository root on sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from sync.store import Store  # noqa: E402
from tests.fixtures_store import new_store_url, store_url  # noqa: E402, F401


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()
