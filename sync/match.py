"""Matching: deals of different system instances that are the same real deal become one entity.

Evidence, strongest first: stored links -> our link marker (`Deal.link_id`) and explicit
external-id fields -> normalised keys -> optional fuzzy names within an owner + close-month
block. Every step is a hash-join (dicts keyed by ref, entity or key), never a nested loop over
deals. Ambiguous candidates are reported, never guessed. An entity holds at most one deal per
instance; a second deal claiming the same slot is reported as a duplicate.
"""

from __future__ import annotations

import gc
import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations, islice
from operator import itemgetter

from mapping.model import Deal, Ref
from sync.normalize import MATCH_KEYS, MatchKey, close_month, match_keys, normalize_name
from sync.store_records import LinkMethod

__all__ = [
    "Ambiguity",
    "Duplicate",
    "LinkMethod",
    "MatchConfig",
    "MatchResult",
    "entity_id_for",
    "is_deleted",
    "match",
    "paused_gc",
    "ref_order",
]


@dataclass(frozen=True, slots=True)
class MatchConfig:
    keys: tuple[str, ...] = ("name", "close_month")
    fuzzy_enabled: bool = False
    fuzzy_threshold: float = 90.0  # rapidfuzz token_set_ratio, 0..100
    # Instances whose external-id fields are trusted; None trusts every instance.
    id_field_systems: frozenset[str] | None = None

    def __post_init__(self) -> None:
        unknown = [k for k in self.keys if k not in MATCH_KEYS]
        if unknown:
            raise ValueError(
                f"unknown match key {', '.join(unknown)} (use {', '.join(sorted(MATCH_KEYS))})"
            )
        if not 0 <= self.fuzzy_threshold <= 100:
            raise ValueError(f"fuzzy_threshold must be within 0..100, not {self.fuzzy_threshold}")


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """`ref` has several equally good candidates in `instance`; it stays unmatched there."""

    ref: Ref
    instance: str
    candidates: tuple[Ref, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Deals of one instance that are the same real deal (same entity or same match key)."""

    instance: str
    ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    entities: Mapping[str, Mapping[str, Ref]]  # entity id -> {instance: ref}, sorted by id
    new_links: Mapping[Ref, str]  # links of multi-member entities the store does not hold yet
    methods: Mapping[Ref, LinkMethod]  # how each new link was found
    unmatched: Mapping[str, tuple[Ref, ...]]  # instance -> live deals matched nowhere
    ambiguous: tuple[Ambiguity, ...]
    duplicates: tuple[Duplicate, ...]

    def entity_of(self) -> dict[Ref, str]:
        """Ref -> entity id (built on demand: at a million deals it is not free)."""
        return {ref: e for e, members in self.entities.items() for ref in members.values()}


def is_deleted(deal: Deal) -> bool:
    return bool(deal.extra.get("deleted"))


def entity_id_for(refs: Iterable[Ref]) -> str:
    """A deterministic id from the member refs, so two runs on the same data agree."""
    text = "\n".join(sorted(f"{r.system}\x00{r.id}" for r in refs))
    return "E" + hashlib.sha1(text.encode()).hexdigest()[:24]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk matching allocates millions of acyclic dicts and tuples; the cyclic collector would
    rescan every live deal each time and doubles the run time, so it waits until the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ref_order(ref: Ref) -> tuple[str, str]:
    return ref.system, ref.id


class _Linker:
    """Entities under construction. Deals are integer indices and entities integer handles, so
    the hot loops hash ints and tuples, never dataclasses."""

    def __init__(self, deals: Sequence[Deal]) -> None:
        self.deals = deals
        self.system = [d.ref.system for d in deals]
        self.entity = [-1] * len(deals)
        self.method: list[LinkMethod | None] = [None] * len(deals)
        self.members: list[dict[str, int] | None] = []
        self.fixed: dict[int, str] = {}  # handle -> entity id from the store or a link marker
        self.by_fixed: dict[str, int] = {}
        self.duplicates: set[Duplicate] = set()
        self.ambiguous: list[Ambiguity] = []

    def age(self, i: int) -> tuple[datetime, str]:
        return self.deals[i].created_at, self.deals[i].ref.id

    def new(self, i: int, method: LinkMethod, fixed: str | None = None) -> int:
        handle = len(self.members)
        self.members.append({self.system[i]: i})
        self.entity[i] = handle
        self.method[i] = method
        if fixed is not None:
            self.fixed[handle] = fixed
            self.by_fixed[fixed] = handle
        return handle

    def attach(self, i: int, handle: int, method: LinkMethod, older_wins: bool = False) -> None:
        members = self.members[handle]
        assert members is not None
        system = self.system[i]
        held = members.get(system)
        if held is None or (older_wins and self.age(i) < self.age(held)):
            members[system] = i
            self.entity[i] = handle
            self.method[i] = method
            if held is None:
                return
            self.entity[held], self.method[held] = -1, None
        if held != i:
            ids = tuple(sorted((self.deals[held].ref.id, self.deals[i].ref.id)))
            reason = f"both are linked to the same deal (by {method.value})"
            self.duplicates.add(Duplicate(system, ids, reason))

    def join(self, i: int, handle: int, method: LinkMethod) -> None:
        """Put deal `i` into entity `handle`, merging its current entity when that is safe."""
        current = self.entity[i]
        if current < 0:
            self.attach(i, handle, method)
        elif current != handle:
            self.merge(handle, current, i, method)

    def link(self, a: int, b: int, method: LinkMethod) -> None:
        ea = self.entity[a]
        if ea >= 0:
            self.join(b, ea, method)
        elif self.entity[b] >= 0:
            self.attach(a, self.entity[b], method)
        else:
            self.attach(b, self.new(a, method), method)

    def merge(self, keep: int, other: int, i: int, method: LinkMethod) -> None:
        kept, moved = self.members[keep], self.members[other]
        assert kept is not None and moved is not None
        if (keep in self.fixed and other in self.fixed) or kept.keys() & moved.keys():
            anchor = self.deals[next(iter(kept.values()))].ref
            reason = f"{method.value} evidence links it to a deal already matched elsewhere"
            self.ambiguous.append(Ambiguity(self.deals[i].ref, anchor.system, (anchor,), reason))
            return
        if other in self.fixed:
            keep, other, kept, moved = other, keep, moved, kept
        for system, member in moved.items():
            kept[system] = member
            self.entity[member] = keep
            if self.method[member] is None:
                self.method[member] = method
        self.members[other] = None

    def candidates(self, indices: Iterable[int], other: str) -> Iterator[int]:
        """Deals whose entity has no member in instance `other` yet."""
        entity, members = self.entity, self.members
        for i in indices:
            handle = entity[i]
            if handle < 0 or other not in members[handle]:  # type: ignore[operator]
                yield i


@dataclass(slots=True)
class _Scan:
    claimers: list[int]  # deals carrying external ids or a link marker
    live: dict[str, list[int]]  # instance -> deals not deleted
    keys: list[MatchKey | None]  # per deal
    duplicates: list[Duplicate]  # same key twice in one instance


def _scan(
    linker: _Linker, stored_links: Mapping[Ref, str], config: MatchConfig, instances: list[str]
) -> _Scan:
    """One pass over every deal: stored links, claimers and live deals; then the keys of the
    live deals in one batch, and same-key duplicates. At a million deals the work is
    memory-bound and per-deal calls dominate, so the common paths are inlined."""
    get, by_fixed, fixed, stored = (
        stored_links.get,
        linker.by_fixed,
        linker.fixed,
        LinkMethod.STORED,
    )
    members, systems, entities, methods = (
        linker.members,
        linker.system,
        linker.entity,
        linker.method,
    )
    scan = _Scan([], {system: [] for system in instances}, [None] * len(linker.deals), [])
    claim = scan.claimers.append
    live_of = {system: indices.append for system, indices in scan.live.items()}
    for i, deal in enumerate(linker.deals):
        system = systems[i]
        entity = get(deal.ref) if stored_links else None
        if entity is not None:
            handle = by_fixed.get(entity)
            if handle is None:  # linker.new, inlined
                handle = by_fixed[entity] = len(members)
                members.append({system: i})
                fixed[handle] = entity
                entities[i], methods[i] = handle, stored
            elif system in members[handle]:  # type: ignore[operator]
                linker.attach(i, handle, stored, older_wins=True)
            else:
                members[handle][system] = i  # type: ignore[index]
                entities[i], methods[i] = handle, stored
        if deal.external_ids or deal.link_id:
            claim(i)
        if deal.extra and deal.extra.get("deleted"):
            continue
        live_of[system](i)
    return scan


def _keys(
    linker: _Linker, scan: _Scan, components: Sequence[str], changed: Collection[Ref] | None
) -> None:
    """Keys of the live deals, and same-key groups within one instance as duplicates.

    With `changed`, a deal settled by a stored link into an entity present in every instance
    and not in `changed` gets no key: it can join nothing new, and any same-key twin it had
    was reported by the run that settled it.
    """
    deals, keys = linker.deals, scan.keys
    if changed is not None:
        settled = _settled(linker, len(scan.live), changed)
        scan.live = {s: [i for i in live if i not in settled] for s, live in scan.live.items()}
    # One batch over all instances: the same deal usually has the same name everywhere.
    everything = [i for indices in scan.live.values() for i in indices]
    batch = iter(match_keys([deals[i] for i in everything], components))
    for system, indices in scan.live.items():
        found = list(islice(batch, len(indices)))
        seen: dict[MatchKey, int] = {}
        twins: dict[MatchKey, list[int]] = {}
        first_of = seen.setdefault
        for i, key in zip(indices, found, strict=True):
            if key is not None:
                keys[i] = key
                first = first_of(key, i)
                if first != i:
                    twins.setdefault(key, [first]).append(i)
        for group in twins.values():
            ids = tuple(sorted(deals[i].ref.id for i in group))
            scan.duplicates.append(Duplicate(system, ids, "same match key in one system"))


def _settled(linker: _Linker, instances: int, changed: Collection[Ref]) -> set[int]:
    changed = changed if isinstance(changed, set | frozenset) else set(changed)
    stored, deals, members, entity = LinkMethod.STORED, linker.deals, linker.members, linker.entity
    return {
        i
        for i, method in enumerate(linker.method)
        if method is stored
        and len(members[entity[i]]) == instances  # type: ignore[arg-type]
        and deals[i].ref not in changed
    }


def _claims(
    linker: _Linker, claimers: Sequence[int], config: MatchConfig
) -> list[tuple[int, str | None, list[int]]]:
    """(deal, link marker, external-id targets) of deals whose evidence is not yet satisfied,
    oldest first so that the survivor of a duplicate pair is deterministic."""
    deals, entity, members, by_fixed = linker.deals, linker.entity, linker.members, linker.by_fixed
    trusted = config.id_field_systems
    pending: list[tuple[int, str | None, list[tuple[str, str]]]] = []
    for i in claimers:
        deal = deals[i]
        here = entity[i]
        held = members[here] if here >= 0 else None
        claims: list[tuple[str, str]] = []
        if deal.external_ids and (trusted is None or deal.ref.system in trusted):
            for other, native_id in sorted(deal.external_ids.items()):
                if other == deal.ref.system or not native_id:
                    continue
                j = held.get(other) if held else None
                if j is None or deals[j].ref.id != native_id:  # not already linked that way
                    claims.append((other, native_id))
        marker = deal.link_id or None
        if claims or (marker is not None and by_fixed.get(marker) != here):
            pending.append((i, marker, claims))
    if not pending:
        return []
    # Only now, and only for the instances claimed, index deals by native id.
    wanted = {other for _, _, claims in pending for other, _ in claims}
    index: dict[str, dict[str, int]] = {other: {} for other in wanted}
    for i, deal in enumerate(deals):
        ids = index.get(linker.system[i])
        if ids is not None:
            ids[deal.ref.id] = i
    resolved = [
        (
            i,
            marker,
            [j for other, native_id in claims if (j := index[other].get(native_id)) is not None],
        )
        for i, marker, claims in pending
    ]
    resolved.sort(key=lambda c: (linker.system[c[0]], linker.age(c[0])))
    return resolved


def _link_claims(linker: _Linker, claimers: Sequence[int], config: MatchConfig) -> None:
    claims = _claims(linker, claimers, config)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, marker, _ in claims:
        if marker is not None:
            groups[marker].append(i)
    for marker in sorted(groups):
        indices = groups[marker]
        handle = linker.by_fixed.get(marker)
        if handle is None:
            linked = [linker.entity[i] for i in indices if linker.entity[i] >= 0]
            handle = linked[0] if linked else linker.new(indices[0], LinkMethod.LINK_ID, marker)
        for i in indices:
            linker.join(i, handle, LinkMethod.LINK_ID)
    for i, _, targets in claims:
        for j in targets:
            linker.link(i, j, LinkMethod.EXTERNAL_ID)


def _ambiguous(deals: Sequence[Deal], other: Sequence[Deal], how: str) -> list[Ambiguity]:
    candidates = tuple(sorted((d.ref for d in other), key=ref_order))
    system = candidates[0].system
    reason = f"{len(candidates)} {system} deals have the same {how}"
    return [Ambiguity(d.ref, system, candidates, reason) for d in deals]


def _link_keys(
    linker: _Linker, live: Mapping[str, Sequence[int]], keys: Sequence[MatchKey | None]
) -> None:
    deals = linker.deals
    for a, b in combinations(sorted(live), 2):
        left: dict[MatchKey, list[int]] = defaultdict(list)
        for i in linker.candidates(live[a], b):
            key = keys[i]
            if key is not None:
                left[key].append(i)
        right: dict[MatchKey, list[int]] = defaultdict(list)
        for j in linker.candidates(live[b], a):
            key = keys[j]
            if key is not None and key in left:
                right[key].append(j)
        for key in sorted(right):
            la, rb = left[key], right[key]
            if len(la) == 1 and len(rb) == 1:
                linker.link(la[0], rb[0], LinkMethod.KEY)
                continue
            lefts, rights = [deals[i] for i in la], [deals[j] for j in rb]
            if len(rb) > 1:
                linker.ambiguous.extend(_ambiguous(lefts, rights, "match key"))
            if len(la) > 1:
                linker.ambiguous.extend(_ambiguous(rights, lefts, "match key"))


def _block(deal: Deal) -> tuple[str, str] | None:
    month = close_month(deal)
    if not deal.owner_email or month is None:
        return None
    return deal.owner_email.strip().lower(), month


def _link_fuzzy(linker: _Linker, live: Mapping[str, Sequence[int]], threshold: float) -> None:
    from rapidfuzz import fuzz, process  # imported lazily: only configs with fuzzy use it

    deals = linker.deals
    for a, b in combinations(sorted(live), 2):
        blocks: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for side, (mine, other) in enumerate(((a, b), (b, a))):
            for i in linker.candidates(live[mine], other):
                block = _block(deals[i])
                if block is not None:
                    blocks[block][side].append(i)
        for block in sorted(blocks):
            left, right = (sorted(side, key=lambda i: deals[i].ref.id) for side in blocks[block])
            if not left or not right:
                continue
            scores = process.cdist(
                [normalize_name(deals[i].name) for i in left],
                [normalize_name(deals[j].name) for j in right],
                scorer=fuzz.token_set_ratio,
                score_cutoff=threshold,
            )
            _resolve_fuzzy(linker, left, right, scores.tolist())


def _resolve_fuzzy(
    linker: _Linker, left: list[int], right: list[int], rows: list[list[float]]
) -> None:
    """Link mutual unique best pairs; a tie at the top is ambiguous (cutoff scores are 0)."""
    deals, how = linker.deals, "best fuzzy name score"
    cols = list(zip(*rows, strict=True))
    for i, row in enumerate(rows):
        best = max(row)
        picks = [j for j, s in enumerate(row) if s == best]
        if best <= 0:
            continue
        if len(picks) > 1:
            rivals = [deals[right[j]] for j in picks]
            linker.ambiguous.extend(_ambiguous([deals[left[i]]], rivals, how))
            continue
        col = cols[picks[0]]
        if [k for k, s in enumerate(col) if s == max(col)] == [i]:
            linker.link(left[i], right[picks[0]], LinkMethod.FUZZY)
    for j, col in enumerate(cols):
        best = max(col)
        tops = [deals[left[k]] for k, s in enumerate(col) if s == best]
        if best > 0 and len(tops) > 1:
            linker.ambiguous.extend(_ambiguous([deals[right[j]]], tops, how))


def match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
    *,
    changed: Collection[Ref] | None = None,
) -> MatchResult:
    """Group the deals of all instances into entities; see the module docstring.

    `changed` (optional, for incremental runs): the refs whose deal is new or differs from the
    previous run. Deals settled by stored links into complete entities and not in `changed`
    then skip key computation, so same-key duplicates are only looked for among the other
    deals (duplicates among settled deals were reported by the run that settled them).
    """
    with paused_gc():
        return _match(deals, stored_links, config, changed)


def _match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
    changed: Collection[Ref] | None,
) -> MatchResult:
    everything = [d for system in sorted(deals) for d in deals[system]]
    linker = _Linker(everything)
    scan = _scan(linker, stored_links, config, sorted(deals))
    _link_claims(linker, scan.claimers, config)
    # Input order does not leak out: keys are joined in sorted order, reports are sorted.
    if config.keys:
        _keys(linker, scan, config.keys, changed)
        _link_keys(linker, scan.live, scan.keys)
    if config.fuzzy_enabled:
        _link_fuzzy(linker, scan.live, config.fuzzy_threshold)
    for i in range(len(everything)):
        if linker.entity[i] < 0:
            linker.new(i, LinkMethod.STORED)
    return _result(linker, scan)


def _result(linker: _Linker, scan: _Scan) -> MatchResult:
    deals, fixed, member_lists = linker.deals, linker.fixed, linker.members
    names: list[str] = [""] * len(member_lists)
    alone: dict[str, list[Ref]] = {system: [] for system in scan.live}
    named: list[tuple[str, dict[str, Ref]]] = []
    for handle, members in enumerate(member_lists):
        if members is None:
            continue
        if len(members) == 1:
            [(system, i)] = members.items()
            refs = {system: deals[i].ref}
            if not is_deleted(deals[i]):
                alone[system].append(refs[system])
        elif len(members) == 2:  # the common pair, without a sort call
            (s1, i1), (s2, i2) = members.items()
            if s2 < s1:
                s1, i1, s2, i2 = s2, i2, s1, i1
            refs = {s1: deals[i1].ref, s2: deals[i2].ref}
        else:
            refs = {system: deals[members[system]].ref for system in sorted(members)}
        entity = names[handle] = fixed.get(handle) or entity_id_for(refs.values())
        named.append((entity, refs))
    named.sort(key=itemgetter(0))
    new_links: dict[Ref, str] = {}
    methods: dict[Ref, LinkMethod] = {}
    stored = LinkMethod.STORED
    for i, method in enumerate(linker.method):
        # A stored member never changes entity: merges keep the stored side's id.
        if method is not stored and method is not None:
            handle = linker.entity[i]
            if len(member_lists[handle]) > 1:  # type: ignore[arg-type]
                new_links[deals[i].ref] = names[handle]
                methods[deals[i].ref] = method
    unmatched = {
        system: tuple(sorted(refs, key=ref_order))
        for system, refs in alone.items()
        if refs and len(alone) > 1
    }
    duplicates = _merged(linker.duplicates, scan.duplicates)
    return MatchResult(
        entities=dict(named),
        methods=dict(sorted(methods.items(), key=lambda m: ref_order(m[0]))),
        new_links=dict(sorted(new_links.items(), key=lambda m: ref_order(m[0]))),
        unmatched=unmatched,
        ambiguous=tuple(
            sorted(
                set(linker.ambiguous),
                key=lambda a: (ref_order(a.ref), a.instance, [ref_order(c) for c in a.candidates]),
            )
        ),
        duplicates=duplicates,
    )


def _merged(*found: Iterable[Duplicate]) -> tuple[Duplicate, ...]:
    """One entry per (instance, ids), sorted: a pair found both by a link and by its key is
    one duplicate with both reasons."""
    reasons: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for group in found:
        for dup in group:
            reasons[dup.instance, dup.ids].add(dup.reason)
    return tuple(
        Duplicate(instance, ids, "; ".join(sorted(reasons[instance, ids])))
        for instance, ids in sorted(reasons)
    )
