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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import combinations

from mapping.model import Deal, Ref
from sync.normalize import MATCH_KEYS, MatchKey, close_month, key_function, normalize_name

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


class LinkMethod(StrEnum):
    STORED = "stored"
    EXTERNAL_ID = "external_id"
    LINK_ID = "link_id"
    KEY = "key"
    FUZZY = "fuzzy"


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


def _link_stored(linker: _Linker, stored_links: Mapping[Ref, str]) -> None:
    if not stored_links:
        return
    get, by_fixed = stored_links.get, linker.by_fixed
    for i, deal in enumerate(linker.deals):
        entity = get(deal.ref)
        if entity is not None:
            handle = by_fixed.get(entity)
            if handle is None:
                linker.new(i, LinkMethod.STORED, fixed=entity)
            else:
                linker.attach(i, handle, LinkMethod.STORED, older_wins=True)


def _claims(linker: _Linker, config: MatchConfig) -> list[tuple[int, str | None, list[int]]]:
    """(deal, link marker, external-id targets) of deals whose evidence is not yet satisfied,
    oldest first so that the survivor of a duplicate pair is deterministic."""
    index = {(d.ref.system, d.ref.id): i for i, d in enumerate(linker.deals)}
    trusted = config.id_field_systems
    entity, by_fixed = linker.entity, linker.by_fixed
    open_claims = []
    for i, deal in enumerate(linker.deals):
        if not deal.external_ids and not deal.link_id:
            continue
        targets: list[int] = []
        if deal.external_ids and (trusted is None or deal.ref.system in trusted):
            for other, native_id in sorted(deal.external_ids.items()):
                j = index.get((other, native_id))
                if j is not None and other != deal.ref.system:
                    targets.append(j)
        marker = deal.link_id or None
        here = entity[i]
        done = here >= 0 and all(entity[j] == here for j in targets)
        if not (done and (marker is None or by_fixed.get(marker) == here)):
            open_claims.append((i, marker, targets))
    open_claims.sort(key=lambda c: (linker.system[c[0]], linker.age(c[0])))
    return open_claims


def _link_claims(linker: _Linker, config: MatchConfig) -> None:
    claims = _claims(linker, config)
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
    linker: _Linker, live: Mapping[str, Sequence[int]], keys: Mapping[int, MatchKey]
) -> None:
    deals = linker.deals
    for a, b in combinations(sorted(live), 2):
        left: dict[MatchKey, list[int]] = defaultdict(list)
        for i in linker.candidates(live[a], b):
            key = keys.get(i)
            if key is not None:
                left[key].append(i)
        right: dict[MatchKey, list[int]] = defaultdict(list)
        for j in linker.candidates(live[b], a):
            key = keys.get(j)
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


def _key_duplicates(
    linker: _Linker, live: Mapping[str, Sequence[int]], keys: Mapping[int, MatchKey]
) -> Iterator[Duplicate]:
    for system in sorted(live):
        seen: dict[MatchKey, list[int]] = {}
        for i in live[system]:
            key = keys.get(i)
            if key is not None:
                seen.setdefault(key, []).append(i)
        if len(seen) == len(live[system]):
            continue
        for indices in seen.values():
            if len(indices) > 1:
                ids = tuple(sorted(linker.deals[i].ref.id for i in indices))
                yield Duplicate(system, ids, "same match key in one system")


def match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
) -> MatchResult:
    """Group the deals of all instances into entities; see the module docstring."""
    with paused_gc():
        return _match(deals, stored_links, config)


def _match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
) -> MatchResult:
    everything = [d for system in sorted(deals) for d in deals[system]]
    linker = _Linker(everything)
    _link_stored(linker, stored_links)
    _link_claims(linker, config)
    # Input order does not leak out: keys are joined in sorted order, reports are sorted.
    live: dict[str, list[int]] = {system: [] for system in sorted(deals)}
    for i, deal in enumerate(everything):
        if not deal.extra.get("deleted"):
            live[linker.system[i]].append(i)
    keys: dict[int, MatchKey] = {}
    if config.keys:
        key_of = key_function(config.keys)
        for indices in live.values():
            for i in indices:
                key = key_of(everything[i])
                if key is not None:
                    keys[i] = key
        _link_keys(linker, live, keys)
    if config.fuzzy_enabled:
        _link_fuzzy(linker, live, config.fuzzy_threshold)
    for i in range(len(everything)):
        if linker.entity[i] < 0:
            linker.new(i, LinkMethod.STORED)
    return _result(linker, live, keys)


def _result(
    linker: _Linker,
    live: Mapping[str, Sequence[int]],
    keys: Mapping[int, MatchKey],
) -> MatchResult:
    deals = linker.deals
    names: list[str] = [""] * len(linker.members)
    named: dict[str, dict[str, Ref]] = {}
    for handle, members in enumerate(linker.members):
        if members is None:
            continue
        order = members if len(members) == 1 else sorted(members)
        refs = {system: deals[members[system]].ref for system in order}
        entity = linker.fixed.get(handle) or entity_id_for(refs.values())
        names[handle] = entity
        named[entity] = refs
    entities = {e: named[e] for e in sorted(named)}
    new_links: dict[Ref, str] = {}
    methods: dict[Ref, LinkMethod] = {}
    unmatched: dict[str, list[Ref]] = defaultdict(list)
    for i, deal in enumerate(deals):
        handle = linker.entity[i]
        members = linker.members[handle]
        assert members is not None
        if len(members) > 1:
            entity = names[handle]
            # A stored member never changes entity: merges keep the stored side's id.
            if linker.method[i] is not LinkMethod.STORED:
                new_links[deal.ref] = entity
                methods[deal.ref] = linker.method[i]  # type: ignore[assignment]
    if len(live) > 1:
        for system, indices in live.items():
            for i in indices:
                if len(linker.members[linker.entity[i]]) == 1:  # type: ignore[arg-type]
                    unmatched[system].append(deals[i].ref)
    duplicates = linker.duplicates | set(_key_duplicates(linker, live, keys))
    return MatchResult(
        entities=entities,
        methods=dict(sorted(methods.items(), key=lambda m: ref_order(m[0]))),
        new_links=dict(sorted(new_links.items(), key=lambda m: ref_order(m[0]))),
        unmatched={s: tuple(sorted(refs, key=ref_order)) for s, refs in sorted(unmatched.items())},
        ambiguous=tuple(
            sorted(
                set(linker.ambiguous),
                key=lambda a: (ref_order(a.ref), a.instance, [ref_order(c) for c in a.candidates]),
            )
        ),
        duplicates=tuple(sorted(duplicates, key=lambda d: (d.instance, d.ids, d.reason))),
    )
