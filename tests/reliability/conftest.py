"""Reliability fixtures: a generated dataset, a fault-free life of it on PostgreSQL (the
reference every faulty life is compared with), and fresh PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from tests.fixtures_store import new_store_url, store_url_for  # noqa: F401
from tests.reliability.pipeline import Life, comparable, live
from tests.sandbox_env import make_env, stable

DEALS, SEED = 40, 3
PUSH = {"create_missing": True}


@pytest.fixture(scope="session")
def dataset() -> dict[str, Any]:
    return generate(DEALS, SEED)[0]


@pytest.fixture(scope="session")
def reference(
    dataset: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Life, dict[str, Any]]]:
    """The fault-free life and its comparable final deals."""
    folder = tmp_path_factory.mktemp("reference")
    with store_url_for("postgresql", folder) as store:
        env = make_env(folder / "sandbox", dataset, store, push=PUSH)
        try:
            life = live(env)
        finally:
            env.sandbox.stop()
        yield life, comparable(life.final, stable(dataset))
