"""Owner emails crmsync stored, read through the `owners.aliases` of the config in use.

Deal snapshots, bases and their marks, the audit log and the journal hold owner emails as the
mapping gave them when they were stored. An alias added since makes an email stand for another,
and what the CRMs give carries that one once mapped: compared with it, a stored `ana@acme.com`
that `ana@acme-eu.com` now stands for looked like an edit made since (a false conflict, or a
person's edit taken back under `priority`), or a rollback's written value like one someone
changed since.

Read through the aliases where they are loaded, not rewritten once in the store when the map
changes: the audit log and the journal record what was written, and stay so; a base saved
under the alias already holds the email it stands for, and reading it again changes nothing
(an alias never names another alias), so nothing has to know under which map a value was
stored (no one-off rewrite of every base to interrupt half-way, no second fingerprint beside
the pull's); and it costs a lookup per value, none without aliases. A base an analysis saves
again holds the canonical email from then on. An alias taken out of the map cannot be undone
this way: a base saved under it holds the email it stood for, and which CRM knew the person by
the alias is no longer known.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mapping.model import Deal
from mapping.owners import canonical_email, canonical_owner
from sync.base_marks import LEFT_OUT, PICKED

__all__ = ["base_owners", "deals_owners", "values_owners"]

_OWNER = "owner_email"


def values_owners(values: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """`{field: value}` (decoded or encoded: an email is text either way) with its owner email
    read through `aliases`."""
    if not aliases or _OWNER not in values:
        return dict(values)
    return {**values, _OWNER: canonical_owner(_OWNER, values[_OWNER], aliases)}


def base_owners(base: dict[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """A decoded base (`sync.reconcile.base_from_json`) with its owner email, and the owner
    emails its left-out and pick marks hold, read through `aliases`."""
    if not aliases:
        return base
    marked = [key for key in (LEFT_OUT, PICKED) if _OWNER in (base.get(key) or ())]
    owner = base.get(_OWNER)
    read = canonical_owner(_OWNER, owner, aliases)
    if read == owner and not marked:
        return base  # nearly every base: no copy of it (a million of them on a large store)
    out = {**base, _OWNER: read} if _OWNER in base else dict(base)
    for key in marked:
        marks = base[key]
        held = {ref: canonical_owner(_OWNER, v, aliases) for ref, v in marks[_OWNER].items()}
        out[key] = {**marks, _OWNER: held}
    return out


def deals_owners(
    by_instance: Mapping[str, list[Deal]], aliases: Mapping[str, str]
) -> dict[str, list[Deal]]:
    """Stored deals with their owner emails read through `aliases`: snapshots a pull saved before
    the map changed, and writes crmsync made laid over them (sync/known_writes.py)."""
    if not aliases:
        return dict(by_instance)
    return {
        instance: [_deal_owner(deal, aliases) for deal in deals]
        for instance, deals in by_instance.items()
    }


def _deal_owner(deal: Deal, aliases: Mapping[str, str]) -> Deal:
    if deal.owner_email is None:
        return deal
    owner = canonical_email(deal.owner_email, aliases)
    return deal if owner == deal.owner_email else dataclasses.replace(deal, owner_email=owner)
