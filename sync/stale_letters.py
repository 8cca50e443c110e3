"""Dead letters (and failures still retried) whose write the plan no longer holds: settled.

A failure is kept for a write crmsync keeps planning: a field change (instance, record, field)
or a copy (instance, entity id, no field). Once the CRMs agree on the field (a person's edit),
the deal is deleted, or the config no longer asks for the write (a policy, `push.targets`,
`push.create_missing`), the plan holds nothing for it: the failure waits for a release that
would send nothing, and lists as work for a person that there is not.

Only what the analysis compared proves that: an incremental one diffs just the entities with a
member in its `changed` set (sync/incremental.py), so a failure of any other entity, or of an
instance the run did not pull, is left as it is (a full analysis, `reconcile --full`, compares
them all). A failure of a deal no stored entity holds is left too: nothing compared it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet

from mapping.model import Ref
from sync.diff_result import DiffResult
from sync.store_records import FailureRecord

__all__ = ["stale_failures"]


def stale_failures(
    failures: Iterable[FailureRecord],
    entities: Mapping[str, Mapping[str, Ref]],
    changed: AbstractSet[Ref] | None,
    diffed: DiffResult,
    compared: Collection[str],
) -> list[FailureRecord]:
    """The `failures` whose write the diff of `entities` no longer holds, of the entities it
    compared (`changed`: see `sync.diff.diff`; None, all of them) and of the instances it
    compared (`compared`: those pulled; a push target left out of the config is compared, and
    holds nothing). `diffed` is the diff's result with its creates a target cannot hold taken
    out (listed as errors): the writes the plan holds, those held for confirmation included."""
    failures = [f for f in failures if f.instance in compared]
    if not failures:  # the usual night: no entity need be walked
        return []
    copies = {f.deal_id for f in failures if not f.field}  # their entity ids
    records = {Ref(f.instance, f.deal_id) for f in failures if f.field}
    looked_at: set[str] = set()  # of `copies`: the entities compared
    members: set[Ref] = set()  # of `records`: the deals of the entities compared
    for entity, refs in entities.items():
        if changed is None or not changed.isdisjoint(refs.values()):
            if entity in copies:
                looked_at.add(entity)
            if not records.isdisjoint(refs.values()):
                members.update(records.intersection(refs.values()))
    planned = {(c.system, c.entity) for c in diffed.creates}
    writes = {(c.target.system, c.target.id, c.field) for c in diffed.changes}
    stale = []
    for f in failures:
        if not f.field:  # a copy, under its entity id
            if f.deal_id in looked_at and (f.instance, f.deal_id) not in planned:
                stale.append(f)
        elif Ref(f.instance, f.deal_id) in members and (
            (f.instance, f.deal_id, f.field) not in writes
        ):
            stale.append(f)
    return stale
