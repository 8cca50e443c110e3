"""DeletesDeals is a protocol of its own: connectors without deletes stay Connectors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from connectors.base import (
    Connector,
    ConnectorSettings,
    DeletesDeals,
    NativeCreate,
    NativePipeline,
    NativeUpdate,
    PushResult,
)
from connectors.credentials import HubSpotToken, PipedriveApiToken, SalesforceSession
from connectors.registry import connector_class


class ReadOnlyPlugin:
    """A third-party connector written before deletes existed."""

    system, kind = "legacy", "legacy"

    def check(self) -> None: ...
    def pipelines(self) -> list[NativePipeline]:
        return []

    def owners(self) -> list[dict[str, Any]]:
        return []

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        return iter(())

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        return iter(())

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        return []

    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]:
        return []

    def calls(self) -> dict[str, int]:
        return {}

    def cursor(self) -> str | None:
        return None

    def close(self) -> None: ...


def test_a_connector_without_deletes_is_still_a_connector_but_not_a_deleter():
    plugin = ReadOnlyPlugin()
    assert isinstance(plugin, Connector)
    assert not isinstance(plugin, DeletesDeals)


@pytest.mark.parametrize(
    ("kind", "credentials"),
    [
        ("salesforce", SalesforceSession("00Dx!token")),
        ("hubspot", HubSpotToken("token")),
        ("pipedrive", PipedriveApiToken("token")),
    ],
)
def test_the_built_in_connectors_delete(kind, credentials):
    settings = ConnectorSettings(kind, credentials, base_url="http://127.0.0.1:9")
    connector = connector_class(kind)(settings)
    try:
        assert isinstance(connector, Connector) and isinstance(connector, DeletesDeals)
    finally:
        connector.close()
