"""Which account each copy of a plan goes under, named in the plan for its review, in the
instances that file deals under accounts: Pipedrive (an organization), Salesforce (an
Account) and HubSpot (a company).

A create names it under its instance's key (`AccountFiling.key`): Pipedrive's
`organization`, Salesforce's and HubSpot's `account`. `{"by": "account", "name": ..., "id":
null}` where the copy goes under the account of its account's name, looked up at apply
(Pipedrive makes an organization when none is; Salesforce never makes an Account nor HubSpot a
company, so the copy has none then). Else `{"by": <fallback>, "name": null, "id": ...}`:
Pipedrive's `create_org_id` (its `id`; `systems.<name>.create_org_by: create_org_id`, or a
source with no account), Salesforce's and HubSpot's `none` (`id` null: no account). A source
whose account could not be told (a HubSpot deal of several companies, none primary) adds
`"reason"`, which the plan's table and the apply's note for the copy repeat. A dry run looks
the names up (sync/plan_accounts.py): `"found"` (the ids bearing the name) or `"not_looked_up"`
(why not); the apply looks them up again, and notes a copy it could not file by name.
Plans saved without the key apply as they were reviewed: to `create_org_id`, or under no
Account or company.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from config.resolved import Config
from config.schema import HubSpotSystem, PipedriveSystem, SalesforceSystem
from connectors.account_names import AccountWords, name_key
from connectors.hubspot_company_lookup import WORDS as COMPANY_WORDS
from connectors.hubspot_company_lookup import company_calls
from connectors.pipedrive_orgs import SEARCH_MAX
from connectors.salesforce_accounts import WORDS as SALESFORCE_ACCOUNT_WORDS
from connectors.salesforce_accounts import account_calls
from mapping.model import Deal, Ref
from sync.diff_result import Create
from sync.plan import Plan, plan_create

__all__ = [
    "ACCOUNT_WORDS",
    "FILING_KEYS",
    "AccountFiling",
    "account_filings",
    "account_name_of",
    "account_of",
    "as_planned",
    "filed_of",
    "filing_note",
    "org_calls",
    "with_account",
    "with_accounts",
]

# A plan create's key naming its account, per kind of the instance it goes to.
FILING_KEYS = {"pipedrive": "organization", "salesforce": "account", "hubspot": "account"}
# How the notes and the plan's table name the accounts of the kinds whose accounts crmsync
# never makes ("Account", "company").
ACCOUNT_WORDS: dict[str, AccountWords] = {
    "salesforce": SALESFORCE_ACCOUNT_WORDS,
    "hubspot": COMPANY_WORDS,
}
# What a copy under none of its account's name gets instead, per kind.
_INSTEAD = {
    "pipedrive": "filed under create_org_id",
    **{kind: words.instead for kind, words in ACCOUNT_WORDS.items()},
}


@dataclass(frozen=True, slots=True)
class AccountFiling:
    """How an instance that files deals under accounts files crmsync's copies."""

    key: str  # the plan create's key naming it (FILING_KEYS)
    by_account: bool
    fallback: str  # `by` of a copy under none of its account's name: create_org_id | none
    fallback_id: int | None  # `create_org_id`
    # At most the calls looking up these distinct account names at apply costs.
    lookup_calls: Callable[[Collection[str]], int]
    summary: str  # the plan summary's count of distinct account names per instance


def account_filings(config: Config) -> dict[str, AccountFiling]:
    """Per Pipedrive instance, its `create_org_by` and `create_org_id`; per Salesforce one,
    by the Account of the name, never made; per HubSpot one, by the company of the name,
    never made."""
    filings = {}
    for name, system in config.systems.items():
        if isinstance(system, PipedriveSystem):
            filings[name] = AccountFiling(
                FILING_KEYS["pipedrive"],
                system.create_org_by == "account",
                "create_org_id",
                system.create_org_id,
                lambda names: org_calls(len(names)),
                "organizations_by_system",
            )
        elif isinstance(system, SalesforceSystem | HubSpotSystem):
            filings[name] = AccountFiling(
                FILING_KEYS[system.kind],
                True,
                "none",
                None,
                account_calls if isinstance(system, SalesforceSystem) else company_calls,
                "accounts_by_system",
            )
    return filings


def account_of(deal: Deal | None) -> str | None:
    account = deal.extra.get("account") if deal is not None else None
    return account.strip() if isinstance(account, str) and account.strip() else None


def filed_of(create: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """The key a plan create names its account under, and that value; None where it names
    none (an instance that files no deal by account, a plan saved before creates named it)."""
    for key in FILING_KEYS.values():
        value = create.get(key)
        if isinstance(value, Mapping):
            return key, value
    return None


def filing_note(create: Mapping[str, Any], kind: str) -> str | None:
    """Why a plan create's copy goes under none of its account's name though its instance (of
    `kind`) files by account, when its source named an account it could not tell (None
    otherwise)."""
    filed = filed_of(create)
    if filed is None or kind not in _INSTEAD:
        return None
    value = filed[1]
    if value.get("by") == "account" or not value.get("reason"):
        return None
    return f"{value['reason']}: {_INSTEAD[kind]}"


def account_name_of(create: Mapping[str, Any]) -> str | None:
    """The account name a plan create's copy goes under; None: its instance's fallback (and so
    for a plan saved before creates named one)."""
    filed = filed_of(create)
    if filed is not None and filed[1].get("by") == "account" and filed[1].get("name"):
        return str(filed[1]["name"])
    return None


def with_accounts(
    plan: Plan,
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, AccountFiling],
) -> Plan:
    """`plan` whose creates in `filings`' instances name their account, and whose estimated
    calls there count what looking up its distinct account names may cost."""
    if not filings or not any(c["system"] in filings for c in plan.creates):
        return plan
    names: dict[str, dict[str, str]] = {}  # system -> name_key -> name
    creates = [with_account(c, entities, deals, filings) for c in plan.creates]
    for create in creates:
        if (name := account_name_of(create)) is not None:
            names.setdefault(create["system"], {}).setdefault(name_key(name), name)
    summary = dict(plan.summary)
    calls = dict(summary.get("api_calls") or {})
    filed = {c["system"] for c in creates if c["system"] in filings}
    counts: dict[str, dict[str, int]] = {filings[s].summary: {} for s in filed}
    for system, distinct in sorted(names.items()):
        filing = filings[system]
        calls[system] = calls.get(system, 0) + filing.lookup_calls(list(distinct.values()))
        counts[filing.summary][system] = len(distinct)
    summary["api_calls"] = dict(sorted(calls.items()))
    summary.update(counts)
    return replace(plan, creates=tuple(creates), summary=summary)


def as_planned(
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, AccountFiling],
) -> Callable[[Create], Mapping[str, Any]]:
    """A diff's create as the plan holds it, its account named (`with_account`)."""
    return lambda create: with_account(plan_create(create), entities, deals, filings)


def with_account(
    create: Mapping[str, Any],
    entities: Mapping[str, Mapping[str, Ref]],
    deals: Mapping[Ref, Deal],
    filings: Mapping[str, AccountFiling],
) -> Mapping[str, Any]:
    """A plan create naming its account, where its instance files deals under them: what the
    plan holds, and what a refused copy's letter is compared with (sync/stale_letters.py)."""
    filing = filings.get(create["system"])
    if filing is None:
        return create
    name = _account(create, entities, deals) if filing.by_account else None
    if name is not None:
        filed: dict[str, Any] = {"by": "account", "name": name, "id": None}
    else:
        filed = {"by": filing.fallback, "name": None, "id": filing.fallback_id}
        why = _unresolved(create, deals) if filing.by_account else None
        if why is not None:
            filed["reason"] = why
    return {**create, filing.key: filed}


def org_calls(names: int) -> int:
    """At most the calls that filing Pipedrive copies under `names` distinct account names
    costs (the connector's rule, connectors/pipedrive_orgs.py): a search each and a POST each
    for up to SEARCH_MAX names; past it at most K list pages, a search each only if the
    organizations need more pages than that, and a POST each."""
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
