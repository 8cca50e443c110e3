"""`crmsync check`: validate the config, summarise it, then (online) test each CRM connection.

The offline part needs nothing but the file; the online part connects through the connectors
and verifies auth, read permission and stage-map coverage against the real pipelines (with the
number of stored deals each unmapped stage holds).
"""

from __future__ import annotations

import click

from config import Config, load_config
from sync.check_crm_defaults import same_zone
from sync.check_crms import crm_checks
from sync.check_offline import (
    create_from_warning,
    login_warnings,
    marker_warnings,
    summary_lines,
)
from sync.check_store import retired_links, schedule_checks
from sync.commands import config_option
from sync.connect import check_kinds
from sync.errors import UsageError, terminal_safe
from sync.store import Store, StoreError
from sync.store_open import open_store

__all__ = ["command", "same_zone", "summary_lines"]


def _online_checks(config: Config) -> tuple[list[str], int]:
    """Each CRM's findings, then the schedule's; a store that cannot be opened is one finding
    (exit 1) of its own, not the end of the check: a URL typo or a PostgreSQL that is down
    would hide every CRM's findings behind it."""
    try:
        store: Store | None = open_store(config)
    except StoreError as exc:
        store = None
        lines, codes = [f"problem: store: {exc}"], {StoreError.exit_code}
    else:
        lines, codes = [], set()
    try:
        lines += retired_links(config, store) if store else []
        crm_lines, crm_code = crm_checks(config, store)
        schedule_lines, schedule_code = schedule_checks(config, store) if store else ([], 0)
    finally:
        if store is not None:
            store.close()
    return lines + crm_lines + schedule_lines, max(codes | {crm_code, schedule_code})


@click.command("check")
@config_option
@click.option("--offline", is_flag=True, help="Validate the config only; do not connect.")
def command(config_path: str, offline: bool) -> None:
    """Validate the config; without --offline also test connectivity, auth and mapping."""
    config = load_config(config_path)
    check_kinds(config)
    warnings = login_warnings(config) + marker_warnings(config) + create_from_warning(config)
    for line in summary_lines(config) + warnings:
        click.echo(line)
    if offline:
        click.echo("config OK (offline: no connection was attempted)")
        return
    lines, code = _online_checks(config)
    for line in lines:
        click.echo(terminal_safe(line))  # CRM messages and names inside, shown as written
    problems = [line for line in lines if line.startswith("problem:")]
    if problems:
        raise UsageError(f"{len(problems)} problem(s) found; see the lines above", exit_code=code)
