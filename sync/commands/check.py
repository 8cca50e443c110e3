"""`crmsync check`: validate the config, summarise it, then (online) test each CRM connection.

The offline part needs nothing but the file; the online part connects through the connectors
and verifies auth, read permission and stage-map coverage against the real pipelines (with the
number of stored deals each unmapped stage holds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import click

from config import Config, known_zone, load_config
from connectors.base import NativePipeline
from connectors.errors import ConnectorError
from mapping.moves import MOVES_KEY
from mapping.stages import coverage
from mapping.writes import funnel_pipeline
from sync.alias_check import alias_summary, alias_warnings
from sync.commands import config_option
from sync.connect import (
    build_context,
    check_kinds,
    closes_by_status,
    open_connector,
    owner_emails,
)
from sync.create_accounts import ACCOUNT_WORDS, account_filings
from sync.crm_defaults import Told, currency_names, told_currency, told_zone
from sync.errors import UsageError, terminal_safe
from sync.scheduler import cron_trigger, overdue_firing, wall_clock
from sync.store import Store, StoreError

__all__ = ["command", "same_zone", "summary_lines"]

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


def _login_warnings(config: Config) -> list[str]:
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


def _marker_warnings(config: Config) -> list[str]:
    """A warning per instance crmsync creates copies in without a `link_field`: a create whose
    answer was lost (a cut connection, a killed run) is looked up by its link marker before it
    is sent again, so without one it can be made twice. The config works: not a problem."""
    return [
        f"warning: {name}: push.create_missing is on and systems.{name}.link_field is not set: "
        "a copy created there carries no link marker, so one whose answer was lost can be "
        f"created twice; set it to a {_FIELD_NOUNS.get(system.kind, 'field')} you create for "
        "crmsync"
        for name, system in config.systems.items()
        if _creates_missing(config, name) and not system.link_field
    ]


def _create_from_warning(config: Config) -> list[str]:
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


def _move_targets(config: Config, name: str, pipelines: Sequence[NativePipeline]) -> list[str]:
    """Where `push.move_between_pipelines` moves this instance's copies, per funnel a deal of
    another instance can be in: its pipeline of that funnel, or a warning naming the config key
    that would give one (such copies stay where they are, listed in the plan's errors)."""
    moves = config.push.move_between_pipelines and name in config.push_targets
    if not moves:
        return []
    funnels = {"default"} | {
        funnel
        for other, system in config.systems.items()
        if other != name
        for funnel in system.pipeline_funnels.values()
    }
    ctx = build_context(config, name, pipelines, [])
    found, lines = [], []
    for funnel in sorted(funnels):
        pipeline, why = funnel_pipeline(ctx, funnel)
        if pipeline is None:
            lines.append(
                f"warning: {name}: {why}: a deal moved to a pipeline of funnel {funnel!r} in "
                f"another CRM keeps its copy here where it is, listed in the plan's errors "
                f"({MOVES_KEY})"
            )
        else:
            found.append(f"funnel {funnel} -> pipeline {pipeline}")
    if found:
        lines.insert(0, f"ok: {name}: {MOVES_KEY} moves copies here to: {', '.join(found)}")
    return lines


def _unmapped_counts(store: Store, instance: str) -> Counter[str] | None:
    """Stored deals per unmapped native stage, or None before the first pull."""
    if not store.deal_count(instance):
        return None
    counts: Counter[str] = Counter()
    for payload in store.iter_deals(instance):
        if payload.get("stage") is None:
            counts[f"{payload.get('pipeline')}/{payload.get('native_stage')}"] += 1
    return counts


def _online_checks(config: Config) -> tuple[list[str], int]:
    """Each CRM's findings, then the schedule's; a store that cannot be opened is one finding
    (exit 1) of its own, not the end of the check: a URL typo or a PostgreSQL that is down
    would hide every CRM's findings behind it."""
    try:
        store: Store | None = Store.open(config.store_url)
    except StoreError as exc:
        store = None
        lines, codes = [f"problem: store: {exc}"], {StoreError.exit_code}
    else:
        lines, codes = [], set()
    try:
        lines += _retired_links(config, store) if store else []
        crm_lines, crm_code = _crm_checks(config, store)
        schedule_lines, schedule_code = _schedule_checks(config, store) if store else ([], 0)
    finally:
        if store is not None:
            store.close()
    return lines + crm_lines + schedule_lines, max(codes | {crm_code, schedule_code})


def _retired_links(config: Config, store: Store) -> list[str]:
    """A warning per instance the store holds links of that the config no longer names (one a
    migration retired): its stored links, keyed by instance name and deal id, would pair the
    deals of another account given that name, until `crmsync forget` removes them."""
    counts = store.link_counts()
    return [
        f"warning: store: it holds {counts[name]} link(s) of {name}, which {config.path.name} "
        f"no longer names: no run reads them; remove them with `crmsync forget {name} --apply` "
        "before giving that name to another account (its deals would be paired by them)"
        for name in sorted(counts.keys() - config.systems.keys())
    ]


def _crm_checks(config: Config, store: Store | None) -> tuple[list[str], int]:
    """Connect to each instance: auth, read permission, pipelines vs. stage maps (with the
    stored deals of each unmapped stage counted, where the store could be opened), and where
    the config sets `owners.aliases`, its users, against which the aliases are checked.

    Returns one line per finding, and the exit code: problems start with "problem:" and make
    the command exit 2 (config, credentials, stage maps), or 1 when the only problems are
    CRMs that could not be reached or failed (as a run that fails exits 1).
    """
    lines: list[str] = []
    codes: set[int] = set()
    users: dict[str, set[str]] = {}  # read only to check owners.aliases: a call or more each
    for name, system in config.systems.items():
        connector = open_connector(config, name)
        try:
            connector.check()
            pipelines = connector.pipelines()
            if config.owner_aliases:
                users[name] = set(owner_emails(config, name, connector.owners())[0].values())
            notes, zone_code = _portal_zone(name, system, connector)
            currency_notes, currency_code = _company_currency(name, system, connector)
            notes += currency_notes
            notes += _companies_unreadable(config, name, connector)
        except ConnectorError as exc:
            lines.append(f"problem: {exc}")
            codes.add(exc.exit_code)
            continue
        finally:
            calls = sum(connector.calls().values())
            connector.close()
        lines.append(
            f"ok: {name}: connected, deals readable, {len(pipelines)} pipeline(s), {calls} calls"
        )
        lines += notes
        codes |= {code for code in (zone_code, currency_code) if code}
        filing = account_filings(config).get(name)
        if (
            filing is not None
            and filing.fallback == "create_org_id"  # Pipedrive's
            and filing.fallback_id is None
            and _creates_missing(config, name)
        ):
            copies = (
                "copies of deals with no account, or with one several organizations are named "
                "after, belong to"
                if filing.by_account
                else "copies belong to"
            )
            lines.append(
                f"problem: {name}: push.create_missing is on, and Pipedrive refuses a deal linked "
                f"to no person or organization: set systems.{name}.create_org_id to the "
                f"organization crmsync's {copies}"
            )
            codes.add(UsageError.exit_code)
        lines += _move_targets(config, name, pipelines)
        stages = {p.id: tuple(p.stages) for p in pipelines}
        held = _unmapped_counts(store, name) if store is not None else None
        lines += _unlisted_pipelines(name, held or Counter(), stages)
        for pipeline, cov in coverage(system.stage_map, stages).items():
            for stage_id in cov.unmapped:
                deals = held.get(f"{pipeline}/{stage_id}", 0) if held is not None else None
                if deals is not None:
                    holding = f"{deals} deal(s)"
                elif store is None:
                    holding = "deal count unknown: the store could not be opened"
                else:
                    holding = "deal count unknown until the first pull"
                lines.append(
                    f"problem: {name}: pipeline {pipeline}: native stage {stage_id!r} is not in "
                    f"systems.{name}.stage_map.{pipeline} ({holding}); map it to a funnel stage "
                    "there (`crmsync init` proposes one where it can tell, and says why where not)"
                )
                codes.add(UsageError.exit_code)
            # A stage_write names a native stage its stage map holds (the config loader sees
            # to it), so an unknown one is in `cov.unknown` too: both keys are named.
            written = system.stage_write.get(pipeline, {}).items()
            unknown = [
                *((f"stage_map.{pipeline}.{stage_id}", "") for stage_id in cov.unknown),
                *(
                    (f"stage_write.{pipeline}.{k}", f" {n!r}")
                    for k, n in written
                    if n in cov.unknown
                ),
            ]
            for key, stage in unknown:
                lines.append(
                    f"problem: {name}: systems.{name}.{key}: no such stage{stage} in the CRM "
                    "(renamed or removed?)"
                )
                codes.add(UsageError.exit_code)
    if config.owner_aliases and users.keys() == config.systems.keys():
        # judged only against every instance's users: one that failed may have the user
        lines += alias_warnings(config, users)
    return lines, max(codes, default=0)


def _companies_unreadable(config: Config, name: str, connector: Any) -> list[str]:
    """A warning where HubSpot deals will be read without accounts (the token lacks the
    companies scope) and an account is used: copies of them made in another CRM filed by
    account (a Pipedrive one then goes to create_org_id, a Salesforce one under no Account),
    or the `account` match key; or where copies are made in this HubSpot (each is associated
    with the company of its account's name, which it cannot look up then). One sentence names
    each that applies. Asked only then: the call costs one more."""
    readable = getattr(connector, "companies_readable", None)
    read = _read_without_accounts(config, name)
    into = _creates_missing(config, name)
    if readable is None or not (read or into):
        return []
    try:
        if readable():
            return []
    except ConnectorError as exc:  # no finding either way: say it could not be told
        return [f"warning: {name}: could not tell whether the token may read companies: {exc}"]
    said = [f"its deals are read without accounts, so {_listed(read)}"] if read else []
    if into:
        said.append("the copies crmsync makes in it are associated with no company")
    return [
        f"warning: {name}: the token may not read companies (grant crm.objects.companies.read "
        f"to the app): {'; and '.join(said)}"
    ]


def _read_without_accounts(config: Config, name: str) -> list[str]:
    """What a pull of `name` reading its deals without accounts costs: their copies in each
    instance that files copies by account (where crmsync makes copies of `name`'s deals), and
    the `account` match key."""
    sources = config.push.create_from
    costs = []
    for other, filing in account_filings(config).items():
        if other == name or not filing.by_account or not _creates_missing(config, other):
            continue
        if sources is not None and name not in sources:
            continue
        words = ACCOUNT_WORDS.get(config.systems[other].kind)
        instead = f"get no {words.one}" if words else f"go to {filing.fallback}"
        costs.append(f"their copies in {other} {instead}")
    if "account" in config.matching.keys:
        costs.append("the account match key finds none of them")
    return costs


def _listed(parts: Sequence[str]) -> str:
    """The parts as a sentence lists them: "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _unlisted_pipelines(name: str, held: Counter[str], listed: Mapping[str, object]) -> list[str]:
    """A warning per pipeline the CRM no longer lists that stored deals are in: no stage map
    can map them (a HubSpot pipeline deleted through the API while it held deals), so the
    plan's unmapped count would point here for nothing. Not a config problem: no exit 2."""
    gone: Counter[str] = Counter()
    for key, deals in held.items():
        pipeline = key.split("/", 1)[0]
        if pipeline not in listed:
            gone[pipeline] += deals
    return [
        f"warning: {name}: {deals} stored deal(s) are in pipeline {pipeline!r}, which {name} no "
        "longer lists (deleted or archived there): their stages cannot be mapped; restore the "
        "pipeline there, or move its deals to a live one, and pull again"
        for pipeline, deals in sorted(gone.items())
    ]


def _creates_missing(config: Config, name: str) -> bool:
    """Would crmsync create copies in this instance?"""
    return config.push.create_missing and name in config.push_targets


def same_zone(one: str, other: str, now: datetime) -> bool:
    """Whether two zone names keep the same clocks from `now` on (HubSpot may name a portal's
    zone by an old alias, US/Eastern for America/New_York): the same offset at midnight and noon
    UTC of each day of the next two years."""
    if one == other:
        return True
    zones = known_zone(one), known_zone(other)
    if zones[0] is None or zones[1] is None:
        return False
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    moments = (start + timedelta(hours=12 * n) for n in range(2 * 731))
    return all(
        m.astimezone(zones[0]).utcoffset() == m.astimezone(zones[1]).utcoffset() for m in moments
    )


def _portal_zone(name: str, system: Any, connector: Any) -> tuple[list[str], int | None]:
    """A CRM that says which zone its users pick dates in (HubSpot) against the configured one:
    a close date is read and written as its day there, so another zone puts it a day off."""
    configured = getattr(system, "timezone", None)
    if configured is None:
        return [], None
    told = told_zone(connector)
    if told.why is not None:  # a zone no tz database here knows: one keeping its clocks
        fits = "keeps the clocks of" if told.named else "is"
        return _unsure(name, "timezone", configured, told, fits), None
    if told.value is None or same_zone(told.value, configured, datetime.now(UTC)):
        return [], None
    portal = terminal_safe(told.value)  # the CRM's text, shown as written
    return [
        f"problem: {name}: the portal's time zone is {portal}, systems.{name}.timezone is "
        f"{configured}: close dates would be read and written a day off; set `timezone: "
        f"{portal}`"
    ], UsageError.exit_code


def _company_currency(name: str, system: Any, connector: Any) -> tuple[list[str], int | None]:
    """A CRM that says its company currency (HubSpot's portal, a single-currency Salesforce
    org) against the configured one: a deal that names no currency of its own is in the
    company's, and is read in the configured one (USD where the config names none), so another
    one mislabels its amount."""
    names = currency_names(connector)
    if names is None:
        return [], None
    configured = str(system.currency)
    told = told_currency(connector)
    if told.why is not None:  # no finding either way: say it was not told
        return _unsure(name, "currency", configured, told), None
    if told.value is None or told.value == configured.upper():
        return [], None
    return [
        f"problem: {name}: {names.what} is {told.value}, systems.{name}.currency is "
        f"{configured}: amounts of {names.deals} would be read as {configured}; set "
        f"`currency: {told.value}`"
    ], UsageError.exit_code


def _unsure(name: str, key: str, configured: str, told: Told, fits: str = "is") -> list[str]:
    """The warning of a default the CRM told none to compare (`told.why` says why)."""
    return [
        f"warning: {name}: {told.why}; make sure systems.{name}.{key} ({configured}) {fits} the "
        f"one in {told.where}"
    ]


def _schedule_checks(config: Config, store: Store) -> tuple[list[str], int]:
    """Each schedule entry's last run and next firing; a firing nothing ran is a problem (exit
    1): the daemon or the timer running the entry has stopped."""
    if not config.schedule:
        return [], 0
    lines: list[str] = []
    code = 0
    now = datetime.now(UTC)
    for entry in config.schedule:
        trigger = cron_trigger(entry)
        zone = ZoneInfo(entry.timezone)
        runs = store.runs.recent(1, job=entry.name)
        last = runs[0] if runs else None
        started = last.started_at if last is not None else None
        missed = overdue_firing(trigger, started, now)
        fire = trigger.get_next_fire_time(None, now)
        next_at = _shown(fire, zone) if fire is not None else "none"
        if last is None:
            lines.append(f"ok: schedule {entry.name}: no run yet; next firing {next_at}")
        elif missed is not None:
            lines.append(
                f"problem: schedule {entry.name}: nothing ran its firing at "
                f"{_shown(missed, zone)} (its last run started {_shown(last.started_at, zone)}"
                f", {last.status.value}); is `crmsync schedule` (or the timer running "
                f"`crmsync schedule --run-now {entry.name}`) running?"
            )
            code = 1
        else:
            lines.append(
                f"ok: schedule {entry.name}: last run started "
                f"{_shown(last.started_at, zone)} ({last.status.value}); next firing {next_at}"
            )
    return lines, code


def _shown(moment: datetime, zone: ZoneInfo) -> str:
    return wall_clock(moment.astimezone(zone)).strftime("%Y-%m-%d %H:%M %Z")


@click.command("check")
@config_option
@click.option("--offline", is_flag=True, help="Validate the config only; do not connect.")
def command(config_path: str, offline: bool) -> None:
    """Validate the config; without --offline also test connectivity, auth and mapping."""
    config = load_config(config_path)
    check_kinds(config)
    warnings = _login_warnings(config) + _marker_warnings(config) + _create_from_warning(config)
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
