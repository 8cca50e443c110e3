"""From the config to live connectors and mapping contexts, one per system instance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from config import Config, SystemConfig
from connectors import credentials as cc
from connectors.base import Connector, ConnectorSettings, NativePipeline, deals_to_check
from connectors.registry import UnknownConnectorKind, connector_class, create_connector
from mapping import MappingContext
from mapping.kinds import BUILTIN_MAPPINGS, KindMapping
from mapping.model import Deal, MappingError
from sync.errors import UsageError

__all__ = [
    "KindMapping",
    "KindWithoutMapping",
    "build_context",
    "check_kinds",
    "closes_by_status",
    "connector_settings",
    "kind_mapping",
    "lookup_lag_for",
    "open_connector",
    "owner_emails",
    "read_now",
]


class KindWithoutMapping(UsageError):
    """A plugin's connector class gives no `mapping` (a mapping.kinds.KindMapping)."""


# kind -> its mapping: the built-in ones, and a plugin kind's once taken from its connector
# class (an installed entry point does not change under a running crmsync; the writes ask
# per record, so one dict lookup).
_MAPPINGS: dict[str, KindMapping] = dict(BUILTIN_MAPPINGS)


def _class_mapping(kind: str) -> KindMapping:
    """The `mapping` attribute of a plugin kind's connector class, or why it cannot be used."""
    cls = connector_class(kind)
    mapping = getattr(cls, "mapping", None)
    if isinstance(mapping, KindMapping):
        return mapping
    name = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"
    lacks = (
        "has no `mapping` attribute"
        if mapping is None
        else f"has a `mapping` of type {type(mapping).__name__}"
    )
    raise KindWithoutMapping(
        f"kind {kind!r}: its connector class {name} {lacks}: crmsync needs a "
        "mapping.kinds.KindMapping there to map its deals (README: Connectors, Plugins)"
    )


def kind_mapping(kind: str) -> KindMapping:
    """How deals of `kind` map: a built-in kind's, or a plugin's from its connector class
    (KindWithoutMapping if it gives none; `check_kinds` says so at start, naming the instance)."""
    known = _MAPPINGS.get(kind)
    if known is None:
        known = _MAPPINGS[kind] = _class_mapping(kind)
    return known


def check_kinds(config: Config) -> None:
    """Every instance's kind has a mapping, before anything is read: a plugin's class without
    one is one line naming the instance, not a failure in the middle of a pull."""
    for name in config.systems:
        _check_kind(config, name)


def _check_kind(config: Config, instance: str) -> None:
    try:
        kind_mapping(config.system(instance).kind)
    except (KindWithoutMapping, UnknownConnectorKind) as exc:
        raise KindWithoutMapping(f"systems.{instance}: {exc}") from None


def closes_by_status(kind: str) -> bool:
    """Whether a kind closes deals with a status rather than a stage."""
    return kind_mapping(kind).closes_by_status


def _credentials(kind: str, creds: Any) -> cc.Credentials:
    secret = creds.secret
    mode = creds.mode
    if mode == "custom":  # a plugin's kind (config.credentials.PluginCredentials)
        values = {name: secret(name) for name in creds.secret_fields()}
        return cc.PluginSecrets(MappingProxyType(values))  # read-only, as the dataclass is
    if kind == "salesforce":
        if mode == "session":
            return cc.SalesforceSession(secret("session_id"))
        if mode == "password":
            return cc.SalesforcePassword(
                creds.username, secret("password"), secret("security_token"), creds.domain
            )
        return cc.SalesforceClientCredentials(
            secret("consumer_key"), secret("consumer_secret"), creds.domain
        )
    if kind == "hubspot":
        return cc.HubSpotToken(secret("access_token"))
    if mode == "api_token":
        return cc.PipedriveApiToken(secret("api_token"))
    return cc.PipedriveAccessToken(secret("access_token"))


def connector_settings(
    config: Config, instance: str, options: Mapping[str, Any] | None = None
) -> ConnectorSettings:
    system = config.system(instance)
    fields = tuple(sorted(set(system.external_ids.values())))
    rate = system.rate_limit
    return ConnectorSettings(
        instance=instance,
        credentials=_credentials(system.kind, system.credentials),
        base_url=system.base_url,
        instance_url=system.instance_url,
        ca_file=system.ca_file,  # already resolved against the config's directory
        extra_fields=fields,
        currency=system.currency,
        link_field=system.link_field,
        call_budget=system.call_budget,
        rate_limit=(rate.requests, rate.per_seconds) if rate else None,
        options=_kind_options(system) | dict(options or {}),
    )


def lookup_lag_for(
    config: Config, instance: str, options: Mapping[str, Any] | None = None
) -> timedelta:
    """The `lookup_lag` of the instance's connector (connectors.base.lookup_lag) without opening
    it: no credentials, no call (its class's optional `lookup_lag_of(options)`)."""
    _check_kind(config, instance)  # a plugin that no longer imports: said of its instance
    system = config.system(instance)
    of = getattr(connector_class(system.kind), "lookup_lag_of", None)
    return of(_kind_options(system) | dict(options or {})) if callable(of) else timedelta(0)


def _kind_options(system: SystemConfig) -> dict[str, Any]:
    """Settings of one kind of system that only its connector reads."""
    org = getattr(system, "create_org_id", None)  # Pipedrive's
    return {"create_org_id": org} if org is not None else {}


def open_connector(
    config: Config, instance: str, options: Mapping[str, Any] | None = None
) -> Connector:
    _check_kind(config, instance)  # before it is used: apply and rollback connect late
    return create_connector(
        config.system(instance).kind, connector_settings(config, instance, options)
    )


def build_context(
    config: Config,
    instance: str,
    pipelines: Sequence[NativePipeline],
    owners: Sequence[Mapping[str, Any]],
) -> MappingContext:
    """The mapping context of an instance from its config and what its CRM just told us."""
    system = config.system(instance)
    emails, inactive = owner_emails(config, instance, owners)
    return MappingContext(
        instance=instance,
        kind=system.kind,
        funnels=dict(config.funnels),
        pipeline_funnels=dict(system.pipeline_funnels),
        stage_map={p: dict(m) for p, m in system.stage_map.items()},
        stage_write={p: dict(w) for p, w in system.stage_write.items()},
        default_currency=system.currency,
        external_ids=dict(system.external_ids),
        id_kinds={o: config.systems[o].kind for o in system.external_ids if o in config.systems},
        link_field=system.link_field,
        owners=emails,
        owner_aliases=config.owner_aliases,
        inactive_owners=inactive,
        native_stages={p.id: tuple(p.stages) for p in pipelines},
        pipeline_labels={p.id: p.label for p in pipelines},
        pipeline_native_ids={p.id: p.native_id for p in pipelines if p.native_id},
        retired_pipelines=frozenset(p.id for p in pipelines if not p.active),
        timezone=getattr(system, "timezone", "UTC"),  # HubSpot's portal zone; dates elsewhere
    )


def owner_emails(
    config: Config, instance: str, owners: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, str], frozenset[str]]:
    """The users an instance's CRM listed (`Connector.owners`): native id -> email, lower-cased
    (users without one left out), and the ids of the deactivated ones."""
    to_owner = kind_mapping(config.system(instance).kind).owner
    emails: dict[str, str] = {}
    inactive: set[str] = set()
    for record in owners:
        owner = to_owner(record, instance)
        if owner.email:
            emails[owner.id] = owner.email.lower()
        if not owner.active:
            inactive.add(owner.id)
    return emails, frozenset(inactive)


def read_now(
    connector: Connector, ctx: MappingContext, ids: Sequence[str]
) -> tuple[dict[str, Deal], dict[str, str]]:
    """The deals as the CRM holds them now (id -> deal), and why the ones that no longer map
    cannot be judged (id -> reason); ids in neither are gone. What a write checks first: no
    account names (see connectors.base.ReadsWithoutAccounts)."""
    to_deal = kind_mapping(ctx.kind).deal
    deals: dict[str, Deal] = {}
    unreadable: dict[str, str] = {}
    for native in deals_to_check(connector, ids):
        try:
            deal = to_deal(native, ctx)
        except MappingError as exc:
            unreadable[exc.id] = f"cannot read the record now: {exc.field}: {exc.reason}"
            continue
        deals[deal.id] = deal
    return deals, unreadable
