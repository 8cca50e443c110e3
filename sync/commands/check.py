"""`crmsync check`: validate the config, summarise it, then (online) test each CRM connection.

The offline part needs nothing but the file; the online part (`_online_checks`) will connect
through the connectors and verify auth, permissions and stage-map coverage against the real
pipelines.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from config import Config, load_config
from sync.commands import config_option
from sync.errors import UsageError

__all__ = ["command", "summary_lines"]

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
        if system.base_url:
            host = urlsplit(system.base_url).netloc
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
            missing = [key for key in funnel.keys if key not in set(stages.values())]
            gaps = f"; funnel stages without a native stage: {', '.join(missing)}"
            lines.append(
                f"  {name} pipeline {pipeline} -> funnel {funnel.name}: "
                f"{len(stages)} native stages mapped" + (gaps if missing else "")
            )
    return lines


def _online_checks(config: Config) -> list[str]:
    """Connect to each instance: auth, permissions, pipelines vs. stage maps (one line each).

    Needs the connectors; until they are wired in, online checks are a usage error.
    """
    raise UsageError(
        "online checks need the CRM connectors, which this build does not have yet; "
        "run `crmsync check --offline` to validate the config only"
    )


@click.command("check")
@config_option
@click.option("--offline", is_flag=True, help="Validate the config only; do not connect.")
def command(config_path: str, offline: bool) -> None:
    """Validate the config; without --offline also test connectivity, auth and mapping."""
    config = load_config(config_path)
    for line in summary_lines(config):
        click.echo(line)
    if offline:
        click.echo("config OK (offline: no connection was attempted)")
        return
    for line in _online_checks(config):
        click.echo(line)
