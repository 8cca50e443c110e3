"""Incremental reconcile: look only at what changed since the last run, and what it left open.

The engine (sync/match.py, sync/diff.py) skips entities none of whose members are in a
`changed` set, trusting the caller that every other entity was left *settled*: complete (a
member in every instance), every member equal to the base, nothing in the plan about it. This
module keeps that promise. The store flags refs in its `pending` table: deals an incremental
pull saved or saw deleted, and every member of an entity an analysis left unsettled. The next
incremental analysis loads only the flagged deals, the other members of their entities, and
the deals their link fields name — never the whole store.

Not proportional by design: a full pull, a changed config, a read-only report and the first
run look at everything (see :func:`choose_scope`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mapping import deal_from_json
from mapping.model import Deal, Ref
from sync.diff import DiffResult
from sync.match import MatchResult, is_deleted, paused_gc
from sync.normalize import MatchKey, match_keys
from sync.store import Store
from sync.store_keys import key_digest

__all__ = ["Loaded", "Scope", "choose_scope", "key_digests", "load_changed", "unsettled"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Whether an analysis may skip settled entities, and why (shown in the run's result)."""

    incremental: bool
    reason: str


def choose_scope(
    state: Mapping[str, Any] | None, *, fingerprint: str, remember: bool, full: bool
) -> Scope:
    """The one place that decides between a full and an incremental analysis.

    Full when nothing vouches that the skipped entities are settled: a read-only analysis
    (the report: it persists nothing, so it must not rely on what it would not maintain), a
    full pull (asked for, or a first run), no recorded state (first run, a full pull since,
    a store upgraded from v1), or a config whose policies, stage maps or matching changed
    (every entity may now diff differently).
    """
    if not remember:
        return Scope(False, "read-only analysis (report)")
    if full:
        return Scope(False, "full pull")
    if state is None:
        return Scope(False, "no incremental state (first run, or a full pull since)")
    if state.get("config_fingerprint") != fingerprint:
        return Scope(False, "config changed since the last run")
    return Scope(True, "incremental: changed deals and unsettled entities only")


@dataclass(frozen=True, slots=True)
class Loaded:
    by_instance: dict[str, list[Deal]]
    changed: frozenset[Ref]  # flagged refs and the other members of their entities
    untouched: int  # stored entities not loaded at all (settled, so skipped)


def load_changed(
    store: Store,
    instances: Collection[str],
    flagged: Iterable[Ref],
    links: Mapping[Ref, str],
    keys: Sequence[str] = (),
) -> Loaded:
    """The deals an incremental match and diff need, and nothing else.

    1. flagged refs and every member of their stored entities (the diff compares members);
    2. the stored deals whose match key (`keys`) a flagged deal has, with their entities'
       members: a settled deal and a new or renamed one of the same key are a same-key
       duplicate, as a full analysis reports; these count as changed (match keys them);
    3. the deals their external-id fields and link markers name, with their entities' members
       (match resolves those claims, and a named deal that is gone is a dangling link).
    Key matching needs no more: a new deal can only join an entity lacking its instance, and
    incomplete entities are never settled, so their members are flagged and loaded already.
    Deals of instances the config no longer has are never loaded, as in a full analysis.
    """
    members: dict[str, list[Ref]] = defaultdict(list)
    for ref, entity in links.items():
        if ref.system in instances:
            members[entity].append(ref)
    changed = _with_entities({r for r in flagged if r.system in instances}, links, members)
    deals = _fetch(store, changed)
    if keys:
        digests = {d for d in key_digests(deals, keys).values() if d is not None}
        same_key = {Ref(i, d) for i, d in store.refs_with_match_keys(digests) if i in instances}
        twins = _with_entities(same_key - changed, links, members) - changed
        changed |= twins
        deals.update(_fetch(store, twins))
    named: set[Ref] = set()
    for deal in deals.values():
        named.update(
            Ref(other, native_id)
            for other, native_id in deal.external_ids.items()
            if other in instances and native_id
        )
        if deal.link_id:
            named.update(members.get(deal.link_id, ()))
    extra = _with_entities(named, links, members) - changed
    deals.update(_fetch(store, extra))
    touched = {links[r] for r in deals if r in links}
    by_instance: dict[str, list[Deal]] = {instance: [] for instance in instances}
    for ref in sorted(deals, key=lambda r: (r.system, r.id)):
        by_instance[ref.system].append(deals[ref])
    return Loaded(by_instance, frozenset(changed), len(members) - len(touched))


def key_digests(
    deals: Mapping[Ref, Deal], keys: Sequence[str], matched: MatchResult | None = None
) -> dict[tuple[str, str], str | None]:
    """(instance, deal id) -> digest of its match key (None: deleted, or no key), to store.

    The keys `matched` built are reused (a full match built every live deal's); only the rest
    are built here (the settled deals an incremental match skipped, or all without `matched`)."""
    digests: dict[tuple[str, str], str | None] = {}
    if matched is not None:
        digests.update(zip(matched.keyed, map(_digest, matched.keys), strict=True))
    rest = [d for ref, d in deals.items() if ref not in digests]
    found = match_keys([d for d in rest if not is_deleted(d)], keys) if keys else []
    live = iter(found)
    digests.update(
        ((d.ref.system, d.ref.id), None if is_deleted(d) else _digest(next(live))) for d in rest
    )
    return digests


def _digest(key: MatchKey | None) -> str | None:
    return None if key is None else key_digest(key)


def _with_entities(
    refs: set[Ref], links: Mapping[Ref, str], members: Mapping[str, list[Ref]]
) -> set[Ref]:
    out = set(refs)
    for entity in {links[r] for r in refs if r in links}:
        out.update(members[entity])
    return out


def _fetch(store: Store, refs: Iterable[Ref]) -> dict[Ref, Deal]:
    ids: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        ids[ref.system].append(ref.id)
    found: dict[Ref, Deal] = {}
    with paused_gc():
        for instance, wanted in sorted(ids.items()):
            for deal_id, payload in store.get_deals(instance, sorted(wanted)).items():
                found[Ref(instance, deal_id)] = deal_from_json(payload)
    return found


def unsettled(
    matched: MatchResult,
    diffed: DiffResult,
    deals: Mapping[Ref, Deal],
    instances: int,
    also: Iterable[Ref] = (),
    examined: Collection[Ref] | None = None,
) -> set[Ref]:
    """Members of the examined entities the next incremental run must look at again.

    An entity with a live member is unsettled when it lacks an instance (a new deal may key-
    match into it; creates), or the plan says anything about it: a change, conflict, create,
    deletion or error, or a member that is ambiguous, duplicated or in `also` (e.g. dangling
    links). Fully deleted entities are settled: nothing about them can be planned.
    `examined` (incremental runs): only entities with a member in it were diffed; the others
    were loaded to resolve claims and keep their settled state.
    """
    open_entities = {c.entity for c in diffed.changes}
    open_entities.update(c.entity for c in diffed.conflicts)
    open_entities.update(c.entity for c in diffed.creates)
    open_entities.update(d.entity for d in diffed.deleted)
    flagged = {e.ref for e in diffed.errors} | set(also)
    for item in matched.ambiguous:
        flagged.add(item.ref)
        flagged.update(item.candidates)
    for dup in matched.duplicates:
        flagged.update(Ref(dup.instance, i) for i in dup.ids)
    out: set[Ref] = set()
    for entity, refs in matched.entities.items():
        members = refs.values()
        skipped = examined is not None and all(r not in examined for r in members)
        if skipped and not flagged.intersection(members):
            continue
        if all(is_deleted(deals[r]) for r in members):
            continue
        if len(refs) < instances or entity in open_entities or flagged.intersection(members):
            out.update(members)
    return out
