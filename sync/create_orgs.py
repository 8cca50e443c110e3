"""Which organization each Pipedrive copy of a plan goes to, named in the plan for its review.

A create's `organization` is `{"by": "account", "name": ..., "id": null}` where the copy goes
to the organization of its account's name (found by name at apply, made when none is), or
`{"by": "create_org_id", "name": null, "id": <create_org_id or null>}` where it goes to the
configured one (`systems.<name>.create_org_by: create_org_id`, or a source with no account).
A source whose account could not be told (a HubSpot deal of several companies, none primary)
adds `"reason"`, which the plan's table and the apply's note for the copy repeat.
The plan reads no organization: whether one of that name exists (or several do) is learnt at
apply, which reports a copy it had to file under `create_org_id` instead.
Plans saved without the key apply as they were reviewed: to `create_org_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from config.resolved import Config
from config.schema import PipedriveSystem
from connectors.pipedrive_orgs import SEARCH_MAX
from mapping.model import Deal, Ref
from sync.diff_result import Create
from sync.plan import Plan, plan_create

__all__ = [
    "OrgFiling",
    "account_of",
    "as_planned",
    "filing_note",
    "org_calls",
    "org_filings",
    "organization_of",
    "with_organization",
    "with_organizations",
]


@dataclass(frozen=True, slots=True)
class OrgFiling:
    """How an instance that files deals under organizations files crmsync's copies."""

    by_account: bool
    fallback_id: int | None  # `create_org_id`


def org_filings(config: Config) -> dict[str, OrgFiling]:
    """Per Pipedrive instance, its `create_org_by` and `create_org_id`."""
    return {
        name: OrgFiling(system.create_org_by == "account", system.create_org_id)
        for name, system in config.systems.items()
        if isinstance(system, PipedriveSystem)
    }


def account_of(deal: Deal | None) -> str | None:
    account = deal.extra.get("account") if deal is not None else None
    return account.strip() if isinstance(account, str) and account.strip() else None


def filing_note(create: Mapping[str, Any]) -> str | None:
    """Why a plan create's copy goes to `create_org_id` though its instance files by account,
    when its source named an account it could not tell (None otherwise)."""
    org = create.get("organization")
    if isinstance(org, Mapping) and org.get("by") == "create_org_id" and org.get("reason"):
        return f"{org['reason']}: filed under create_org_id"
    return None


def organization_of(create: Mapping[str, Any]) -> str | None:
    """The account name a plan create's copy is filed under; None: `create_org_id` (and so for
    a plan saved before creates named one)."""
    org = create.get("organization")
    if isinstance(org, Mapping) and org.get("by") == "account" and org.get("name"):
        return str(org["name"])
    return None


def with_organizations(
    plan: Plan,
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, OrgFiling],
) -> Plan:
    """`plan` whose creates in `filings`' instances name their organization, and whose
    estimated calls there count what resolving its K distinct account names may cost."""
    if not filings or not any(c["system"] in filings for c in plan.creates):
        return plan
    names: dict[str, set[str]] = {}
    creates = [with_organization(c, entities, deals, filings) for c in plan.creates]
    for create in creates:
        if (name := organization_of(create)) is not None:
            names.setdefault(create["system"], set()).add(name.casefold())
    summary = dict(plan.summary)
    calls = dict(summary.get("api_calls") or {})
    for system, distinct in names.items():
        calls[system] = calls.get(system, 0) + org_calls(len(distinct))
    summary["api_calls"] = dict(sorted(calls.items()))
    summary["organizations_by_system"] = {s: len(n) for s, n in sorted(names.items())}
    return replace(plan, creates=tuple(creates), summary=summary)


def as_planned(
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, OrgFiling],
) -> Callable[[Create], Mapping[str, Any]]:
    """A diff's create as the plan holds it, its organization named (`with_organization`)."""
    return lambda create: with_organization(plan_create(create), entities, deals, filings)


def with_organization(
    create: Mapping[str, Any],
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, OrgFiling],
) -> Mapping[str, Any]:
    """A plan create naming its organization, where its instance files deals under them: what
    the plan holds, and what a refused copy's letter is compared with (sync/stale_letters.py)."""
    filing = filings.get(create["system"])
    if filing is None:
        return create
    name = _account(create, entities, deals) if filing.by_account else None
    if name is not None:
        org: dict[str, Any] = {"by": "account", "name": name, "id": None}
    else:
        org = {"by": "create_org_id", "name": None, "id": filing.fallback_id}
        why = _unresolved(create, deals) if filing.by_account else None
        if why is not None:
            org["reason"] = why
    return {**create, "organization": org}


def org_calls(names: int) -> int:
    """At most the calls that filing copies under `names` distinct account names costs (the
    connector's rule, connectors/pipedrive_orgs.py): a search each and a POST each for up to
    SEARCH_MAX names; past it at most K list pages, a search each only if the organizations
    need more pages than that, and a POST each."""
    return 2 * names if names <= SEARCH_MAX else 3 * names


def _unresolved(create: Mapping[str, Any], deals: Mapping[Ref, Deal]) -> str | None:
    """Why the copy's source has no account though it names candidates ("hubspot deal 7: 2
    companies are associated (...), none primary: not guessed"), or None."""
    source = create["source"]
    deal = deals.get(Ref(source["system"], source["id"]))
    why = deal.extra.get("account_unresolved") if deal is not None else None
    return f"{source['system']} deal {source['id']}: {why}" if isinstance(why, str) else None


def _account(
    create: Mapping[str, Any], entities: Mapping[str, Mapping[str, Ref]], deals: Mapping[Ref, Deal]
) -> str | None:
    """The copy's account: its source deal's, else that of another deal of its entity (by
    instance name; a HubSpot source of several companies, none primary, names none)."""
    source = create["source"]
    found = account_of(deals.get(Ref(source["system"], source["id"])))
    if found is not None:
        return found
    members = entities.get(str(create["entity"])) or {}
    for instance in sorted(members):
        found = account_of(deals.get(members[instance]))
        if found is not None:
            return found
    return None
