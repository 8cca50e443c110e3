"""Connectors are looked up by `kind`: the built-in three, plus any installed plugin.

A third-party package adds a kind by declaring an entry point in the `crmsync.connectors` group
whose object is a class taking `ConnectorSettings`; crmsync itself needs no change.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from connectors.base import Connector, ConnectorSettings

__all__ = ["UnknownConnectorKind", "available_kinds", "connector_class", "create_connector"]

ENTRY_POINT_GROUP = "crmsync.connectors"
_BUILTIN = {
    "salesforce": "connectors.salesforce:SalesforceConnector",
    "hubspot": "connectors.hubspot:HubSpotConnector",
    "pipedrive": "connectors.pipedrive:PipedriveConnector",
}


class UnknownConnectorKind(LookupError):
    exit_code = 2


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def available_kinds() -> list[str]:
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(_BUILTIN) | plugins)


def connector_class(kind: str) -> Any:
    if kind in _BUILTIN:
        return _load(_BUILTIN[kind])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            try:
                return ep.load()
            except Exception as exc:  # a plugin's own import: a missing dependency, say
                raise UnknownConnectorKind(
                    f"the connector of kind {kind!r} ({ep.value}) could not be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    raise UnknownConnectorKind(
        f"no connector for kind {kind!r} (installed: {', '.join(available_kinds())})"
    )


def create_connector(kind: str, settings: ConnectorSettings) -> Connector:
    connector: Connector = connector_class(kind)(settings)
    return connector
