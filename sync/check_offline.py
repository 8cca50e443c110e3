"""`crmsync check`'s offline part: what the config says, for a human, and the warnings the
file alone gives (no connection)."""

from __future__ import annotations

from urllib.parse import urlsplit

from config import Config
from mapping.moves import MOVES_KEY
from sync.alias_check import alias_summary
from sync.connect import closes_by_status

__all__ = [
    "create_from_warning",
    "creates_missing",
    "login_warnings",
    "marker_warnings",
    "summary_lines",
]

# Where each kind's client library connects when no base_url is configured.
_DEFAULT_HOSTS = {
    "salesforce": "login.salesforce.com",
    "hubspot": "api.hubapi.com",
    "pipedrive": "api.pipedrive.com",
}


def summary_lines(config: Config) -> list[str]:
    """What the config says, for a human: never a secret, only auth modes."""
    lines = [
        f"config: {config.path} (fingerprint {config.fingerprint()[:12]})",
        f"store: {config.store_url_redacted}",
        "systems:",
    ]
    for name, system in config.systems.items():
        # A Salesforce session id is used against its org's own URL (no login host).
        url = system.base_url or (system.instance_url if system.auth_mode == "session" else None)
        domain = getattr(system.credentials, "domain", "login")  # where a Salesforce login goes
        if url:
            host = urlsplit(url).netloc.rpartition("@")[2]  # no proxy login
        elif domain != "login":
            host = f"{domain}.salesforce.com"
        else:
            host = _DEFAULT_HOSTS.get(system.kind, "connector default") + " (default)"
        writes = "push" if name in config.push_targets else "read-only"
        lines.append(
            f"  {name}: kind {system.kind}, host {host}, auth {system.auth_mode}, "
            f"currency {system.currency}, {writes}"
        )
    lines.append("funnels:")
    for name, funnel in config.funnels.items():
        lines.append(f"  {name}: {', '.join(funnel.keys)}")
    lines.append("stage maps:")
    for name, system in config.systems.items():
        if not system.stage_map:
            lines.append(f"  {name}: no stage map (every deal's stage stays unmapped)")
        for pipeline, stages in system.stage_map.items():
            funnel = config.funnel_for(name, pipeline)
            status_closes = closes_by_status(system.kind)
            missing = [
                s.key
                for s in funnel.stages
                if s.key not in set(stages.values()) and not (status_closes and s.is_closed)
            ]
            gaps = f"; funnel stages without a native stage: {', '.join(missing)}"
            lines.append(
                f"  {name} pipeline {pipeline} -> funnel {funnel.name}: "
                f"{len(stages)} native stages mapped" + (gaps if missing else "")
            )
    lines += alias_summary(config)
    if config.push.move_between_pipelines:
        lines.append(
            f"pipeline moves: on ({MOVES_KEY}): a copy whose pipeline's funnel lacks the stage "
            "its deal was moved to elsewhere moves to its CRM's pipeline of that funnel"
        )
    return lines


def login_warnings(config: Config) -> list[str]:
    """A warning per Salesforce instance that logs in with the OAuth username-password flow,
    which Salesforce is retiring ("Migrate from OAuth Username-Password to Client Credentials
    Flow", help article 000886201, 2026-03-31; orgs created since Summer '23 block it by
    default): the day it is switched off, that instance's pulls and pushes fail at login."""
    return [
        f"warning: {name}: Salesforce is retiring the OAuth username-password login this "
        f"instance uses; give systems.{name}.credentials a consumer_key and consumer_secret "
        "(the client credentials flow of an External Client App) instead"
        for name, system in config.systems.items()
        if system.kind == "salesforce" and system.auth_mode == "password"
    ]


def marker_warnings(config: Config) -> list[str]:
    """A warning per instance crmsync creates copies in without a `link_field`: a create whose
    answer was lost (a cut connection, a killed run) is looked up by its link marker before it
    is sent again, so without one it can be made twice. The config works: not a problem."""
    return [
        f"warning: {name}: push.create_missing is on and systems.{name}.link_field is not set: "
        "a copy created there carries no link marker, so one whose answer was lost can be "
        f"created twice; set it to a {_FIELD_NOUNS.get(system.kind, 'field')} you create for "
        "crmsync"
        for name, system in config.systems.items()
        if creates_missing(config, name) and not system.link_field
    ]


def create_from_warning(config: Config) -> list[str]:
    """`push.create_from` names whose deals `push.create_missing` copies: without it, nothing."""
    if config.push.create_from is None or config.push.create_missing:
        return []
    return [
        "warning: push.create_from is set and push.create_missing is off: no copy is made; turn "
        "create_missing on to copy the deals of those instances"
    ]


# What each kind calls the deal field crmsync's link marker goes in.
_FIELD_NOUNS = {
    "salesforce": "custom Opportunity field",
    "hubspot": "deal property",
    "pipedrive": "deal custom field",
}


def creates_missing(config: Config, name: str) -> bool:
    """Would crmsync create copies in this instance?"""
    return config.push.create_missing and name in config.push_targets
