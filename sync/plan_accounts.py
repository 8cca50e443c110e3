"""What a dry run finds of the accounts its copies go under, so a reviewer learns before the
apply that "Krusty" names 2 Salesforce Accounts (none will be chosen) or "Clearwater SA" none.

The account names of each instance's creates are looked up once, as the apply looks them up
(`connectors.base.found_accounts`: a read, none made), and each create's `account` or
`organization` object gains `"found"`: the ids bearing its name (sorted strings), or
`"not_looked_up"`: why not (the lookup failed, which fails no dry run; a name too long for
any account; accounts the API user may not read). Names may change before the apply, which
looks them up again: `found_since` says where it found otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.account_names import AccountMatch, name_key
from connectors.base import found_accounts
from connectors.errors import ConnectorError
from sync.create_accounts import ACCOUNT_WORDS, account_name_of, filed_of
from sync.plan import Plan

__all__ = ["found_in_plan", "found_line", "found_since", "look_up_accounts", "with_found"]

_log = logging.getLogger("crmsync.reconcile")
# What a lookup's answer for one instance is: name_key -> match, or why it failed.
Looked = Mapping[str, AccountMatch] | str
# How a note names several accounts of a kind.
_MANY = {"pipedrive": "organizations", **{k: w.many for k, w in ACCOUNT_WORDS.items()}}


def look_up_accounts(plan: Plan, connectors: Mapping[str, object]) -> Plan:
    """`plan` whose creates say what their instance's lookup finds of their account's name
    (`with_found`); one lookup per instance, none where no create names an account."""
    names: dict[str, dict[str, str]] = {}  # system -> name_key -> name
    for create in plan.creates:
        if (name := account_name_of(create)) is not None:
            names.setdefault(create["system"], {}).setdefault(name_key(name), name)
    looked: dict[str, Looked] = {}
    for system, distinct in sorted(names.items()):
        connector = connectors.get(system)
        if connector is None:
            continue
        try:
            found = found_accounts(connector, list(distinct.values()))
        except ConnectorError as exc:
            # The plan is made all the same, saying so per create: the apply looks them up.
            _log.warning("%s: account names not looked up: %s", system, exc)
            looked[system] = str(exc)
            continue
        if found is not None:
            looked[system] = found
    if not looked:
        return plan
    creates = tuple(with_found(c, looked.get(c["system"])) for c in plan.creates)
    return replace(plan, creates=creates)


def with_found(create: Mapping[str, Any], looked: Looked | None) -> Mapping[str, Any]:
    """A plan create whose account object says what its instance's lookup (`looked`) found of
    its name; as it was where it names none or no lookup answered of it."""
    filed, name = filed_of(create), account_name_of(create)
    if looked is None or filed is None or name is None:
        return create
    key, value = filed
    if isinstance(looked, str):
        said: dict[str, Any] = {"not_looked_up": looked}
    elif (match := looked.get(name_key(name))) is None:
        return create
    elif match.found is None:
        said = {"not_looked_up": match.note or "unknown"}
    else:
        said = {"found": sorted(match.found)}
    return {**create, key: {**value, **said}}


def found_in_plan(create: Mapping[str, Any]) -> bool:
    """Whether a plan create says what a dry run found of its account name."""
    filed = filed_of(create)
    return filed is not None and isinstance(filed[1].get("found"), list)


def found_since(
    create: Mapping[str, Any], looked: Mapping[str, AccountMatch], kind: str
) -> str | None:
    """What the apply's lookup (`looked`) found of a create's account name otherwise than its
    plan says the dry run found ("the plan found no Accounts named 'Krusty', the apply 1
    (001...)"), or None: as planned, or either not known."""
    filed, name = filed_of(create), account_name_of(create)
    if filed is None or name is None or not found_in_plan(create):
        return None
    planned = sorted(str(i) for i in filed[1]["found"])
    match = looked.get(name_key(name))
    if match is None or match.found is None or sorted(match.found) == planned:
        return None
    many = _MANY.get(kind, "accounts")
    return (
        f"{many} named {name.strip()!r} changed since the plan: it found {_ids(planned)}, "
        f"the apply {_ids(sorted(match.found))}"
    )


def _ids(ids: Sequence[str]) -> str:
    return f"{len(ids)} ({_listed(ids)})" if ids else "none"


def _listed(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")


def found_line(filed: Mapping[str, Any], one: str, makes: bool) -> str | None:
    """The plan table's line of what the dry run found of a create's account name (`filed`:
    its `account` or `organization` object, by account); None where it looked none up.
    `one`: how the CRM names an account; `makes`: whether the apply makes one none bears
    (Pipedrive) or files the copy under none (Salesforce, HubSpot)."""
    name = filed.get("name")
    if "not_looked_up" in filed:
        return f"{one} {name}: not looked up: {filed['not_looked_up']}"
    found = filed.get("found")
    if not isinstance(found, list):
        return None
    ids = [str(i) for i in found]
    if len(ids) == 1:
        return f"{one} {name} (found: {ids[0]})" if makes else f"{one} {name} ({ids[0]})"
    if not ids and makes:
        return f"{one} {name} (made at apply)"
    if not ids:
        return f"no {one} is named {name!r}: created without one"
    then = "filed under create_org_id" if makes else "none will be chosen"
    return f"{one} {name}: {len(ids)} are named so ({_listed(ids)}): {then}"
