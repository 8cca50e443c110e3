"""From the config to live connectors and mapping contexts, one per system instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from config import Config, SystemConfig
from connectors import credentials as cc
from connectors.base import Connector, ConnectorSettings, NativePipeline, deals_to_check
from connectors.registry import connector_class, create_connector
from mapping import (
    MappingContext,
    deal_from_hubspot,
    deal_from_pipedrive,
    deal_from_salesforce,
    owner_from_hubspot,
    owner_from_pipedrive,
    owner_from_salesforce,
)
from mapping.hubspot import NATIVE_FIELDS as HUBSPOT_FIELDS
from mapping.model import Deal, MappingError, Owner
from mapping.pipedrive import NATIVE_FIELDS as PIPEDRIVE_FIELDS
from mapping.salesforce import NATIVE_FIELDS as SALESFORCE_FIELDS

__all__ = [
    "KindMapping",
    "build_context",
    "closes_by_status",
    "connector_settings",
    "kind_mapping",
    "lookup_lag_for",
    "open_connector",
    "read_now",
]


@dataclass(frozen=True)
class KindMapping:
    """The pure mapping functions of one CRM kind."""

    deal: Callable[[Mapping[str, Any], MappingContext], Deal]
    owner: Callable[[Mapping[str, Any], str], Owner]
    native_fields: Mapping[str, str]  # native field -> canonical key, for mapping errors
    # Won and lost are a status beside the stage (Pipedrive): its pipelines have no closed
    # stages, and the funnel's closed stages need none in the stage map.
    closes_by_status: bool = False

    def error(self, exc: MappingError) -> dict[str, str]:
        """A mapping error as plans and reports list it: `field` a canonical key where the
        native field has one, the native field kept at the head of the reason."""
        error = exc.as_dict()
        canonical = self.native_fields.get(exc.field)
        if canonical is not None and canonical != exc.field:
            error.update(field=canonical, reason=f"{exc.field}: {exc.reason}")
        return error


_KINDS = {
    "salesforce": KindMapping(deal_from_salesforce, owner_from_salesforce, SALESFORCE_FIELDS),
    "hubspot": KindMapping(deal_from_hubspot, owner_from_hubspot, HUBSPOT_FIELDS),
    "pipedrive": KindMapping(
        deal_from_pipedrive, owner_from_pipedrive, PIPEDRIVE_FIELDS, closes_by_status=True
    ),
}


def kind_mapping(kind: str) -> KindMapping:
    return _KINDS[kind]


def closes_by_status(kind: str) -> bool:
    """Whether a kind closes deals with a status rather than a stage (False if unknown)."""
    known = _KINDS.get(kind)
    return known is not None and known.closes_by_status


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
    to_owner = kind_mapping(system.kind).owner
    emails: dict[str, str] = {}
    inactive: set[str] = set()
    for record in owners:
        owner = to_owner(record, instance)
        if owner.email:
            emails[owner.id] = owner.email.lower()
        if not owner.active:
            inactive.add(owner.id)
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
        inactive_owners=frozenset(inactive),
        native_stages={p.id: tuple(p.stages) for p in pipelines},
        pipeline_labels={p.id: p.label for p in pipelines},
        pipeline_native_ids={p.id: p.native_id for p in pipelines if p.native_id},
        retired_pipelines=frozenset(p.id for p in pipelines if not p.active),
        timezone=getattr(system, "timezone", "UTC"),  # HubSpot's portal zone; dates elsewhere
    )


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
