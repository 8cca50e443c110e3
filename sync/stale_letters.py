"""Dead letters (and failures still retried) whose write the plan no longer holds: settled.

A failure is kept for a write crmsync keeps planning: a field change (instance, record, field)
or a copy (instance, entity id, no field). Once the CRMs agree on the field (a person's edit),
the deal is deleted, or the config no longer asks for the write (a policy, `push.targets`,
`push.create_missing`), the plan holds nothing for it: the failure waits for a release that
would send nothing, and lists as work for a person that there is not. A field's failure is of
the value refused (the journal's last failed write of it), a copy's of what it copied (the
digest journaled with its create, sync/copy_digest.py): a plan writing another value there, or
a copy of other content, now holds another write, tried afresh (a rule refusing amounts above a
limit passes a corrected one; a Pipedrive copy refused because its account's organization
could not be made goes through under a corrected account name).

Only what the analysis compared proves that: an incremental one diffs just the entities with a
member in its `changed` set (sync/incremental.py), so a failure of any other entity, or of an
instance the run did not pull, is left as it is (a full analysis, `reconcile --full`, compares
them all). A failure of a deal no stored entity holds is left too: nothing compared it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from mapping.model import Ref
from sync.copy_digest import create_digest, values_digest
from sync.diff_result import Create, DiffResult
from sync.plan import encode_value
from sync.store_failures import TriedCopy
from sync.store_records import FailureRecord

__all__ = ["compared_failures", "stale_failures"]


def compared_failures(
    failures: Iterable[FailureRecord],
    entities: Mapping[str, Mapping[str, Ref]],
    changed: AbstractSet[Ref] | None,
    compared: Collection[str],
) -> list[FailureRecord]:
    """The `failures` of the entities the analysis compared (`changed`: see `sync.diff.diff`;
    None, all of them) and of the instances it compared (`compared`: those pulled; a push
    target left out of the config is compared, and holds nothing): the only ones a plan can
    tell stale. A failure of a copy is under its entity id."""
    failures = [f for f in failures if f.instance in compared]
    if not failures:  # the usual night: no entity need be walked
        return []
    refused_copies = {f.deal_id for f in failures if not f.field}  # their entity ids
    records = {Ref(f.instance, f.deal_id) for f in failures if f.field}
    looked_at: set[str] = set()  # of `refused_copies`: the entities compared
    members: set[Ref] = set()  # of `records`: the deals of the entities compared
    for entity, refs in entities.items():
        if changed is None or not changed.isdisjoint(refs.values()):
            if entity in refused_copies:
                looked_at.add(entity)
            if not records.isdisjoint(refs.values()):
                members.update(records.intersection(refs.values()))
    return [
        f
        for f in failures
        if (f.deal_id in looked_at if not f.field else Ref(f.instance, f.deal_id) in members)
    ]


def stale_failures(
    failures: Iterable[FailureRecord],
    entities: Mapping[str, Mapping[str, Ref]],
    diffed: DiffResult,
    held: AbstractSet[Ref],
    tried: Mapping[tuple[str, str, str], Any],
    copies: Mapping[tuple[str, str], TriedCopy],
    as_planned: Callable[[Create], Mapping[str, Any]],
) -> list[FailureRecord]:
    """Of the `failures` the analysis compared (`compared_failures`), those whose write the
    diff of `entities` no longer holds. `diffed` is the diff's result with its creates a
    target cannot hold taken out (listed as errors): the writes the plan holds, those held for
    confirmation included. A copy of an entity with a member in `held` (an ambiguous match, a
    duplicate: the diff holds its creates back) is not planned, and keeps its letter. `tried`:
    (instance, record, field) -> the value (encoded) of the field's last refused write, where
    the journal holds one; `copies`: (instance, entity id) -> the last refused create of it
    the journal holds; `as_planned`: a create as the plan holds it (with its organization, as
    `sync.create_accounts.with_account` names it), which is what the copy carries."""
    planned = {(c.system, c.entity): c for c in diffed.creates}
    writes = {
        (c.target.system, c.target.id, c.field): encode_value(c.to_value) for c in diffed.changes
    }
    stale = []
    for f in failures:
        if not f.field:  # a copy, under its entity id
            create = planned.get((f.instance, f.deal_id))
            if create is None:
                members = entities.get(f.deal_id, {}).values()
                if held.isdisjoint(members):
                    stale.append(f)
            elif _other_copy(copies.get((f.instance, f.deal_id)), as_planned(create)):
                stale.append(f)
        elif _other_write(f, writes, tried):
            stale.append(f)
    return stale


def _other_copy(refused: TriedCopy | None, create: Mapping[str, Any]) -> bool:
    """Whether the copy planned now (`create`, as the plan holds it) carries other content than
    the one refused. A copy refused before crmsync journaled all it carries is compared by what
    was journaled then, its source and values: a correction of its account alone cannot be told
    for it, so it waits for a release, rather than every such letter being sent again at the
    first reconcile after an upgrade. Unknown where the journal holds no digest: the same copy."""
    if refused is None:
        return False
    if refused.carried is not None:
        return refused.carried != create_digest(create)
    if refused.content is not None:
        return refused.content != values_digest(create)
    return False


def _other_write(
    failure: FailureRecord,
    writes: Mapping[tuple[str, str, str], Any],
    tried: Mapping[tuple[str, str, str], Any],
) -> bool:
    """Whether the plan holds no write of the failure's field, or one of another value than
    the one refused (the journal holds a write's value as `encode_value` gives it; unknown
    where it holds none: then it is the same write)."""
    key = (failure.instance, failure.deal_id, failure.field)
    if key not in writes:
        return True
    # Not read through owners.aliases (sync/stored_owners.py): an owner refused before its
    # email became an alias is another write now, tried afresh, as it may go to another user
    # (the one holding the email the alias stands for).
    return bool(tried.get(key, writes[key]) != writes[key])
