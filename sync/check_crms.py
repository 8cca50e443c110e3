"""`crmsync check`'s online checks of each CRM: auth, read permission, stage-map coverage
against the real pipelines (with the stored deals of each unmapped stage counted), and what the
config's copies and moves need of each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from config import Config
from connectors.base import NativePipeline
from connectors.errors import ConnectorError
from mapping.moves import MOVES_KEY
from mapping.stages import coverage
from mapping.writes import funnel_pipeline
from sync.alias_check import alias_warnings
from sync.check_crm_defaults import company_currency, portal_zone
from sync.check_offline import creates_missing
from sync.connect import build_context, open_connector, owner_emails
from sync.create_accounts import ACCOUNT_WORDS, account_filings
from sync.errors import UsageError
from sync.store import Store

__all__ = ["crm_checks"]


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


def crm_checks(config: Config, store: Store | None) -> tuple[list[str], int]:
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
            notes, zone_code = portal_zone(name, system, connector)
            currency_notes, currency_code = company_currency(name, system, connector)
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
            and creates_missing(config, name)
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
    into = creates_missing(config, name)
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
        if other == name or not filing.by_account or not creates_missing(config, other):
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
