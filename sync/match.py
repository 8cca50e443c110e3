"""Matching: deals of different system instances that are the same real deal become one entity.

Evidence, strongest first: stored links -> our link marker (`Deal.link_id`) and explicit
external-id fields -> normalised keys -> optional fuzzy names within an owner + close-month
block. Every step is a hash-join (dicts keyed by ref, entity or key), never a nested loop over
deals. Ambiguous candidates are reported, never guessed. An entity holds at most one deal per
instance; a second deal claiming the same slot is reported as a duplicate.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import combinations

from mapping.model import Deal, Ref
from sync.normalize import MATCH_KEYS, MatchKey, close_month, match_key, normalize_name

__all__ = [
    "Ambiguity",
    "Duplicate",
    "LinkMethod",
    "MatchConfig",
    "MatchResult",
    "entity_id_for",
    "is_deleted",
    "match",
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
    entity_of: Mapping[Ref, str]
    methods: Mapping[Ref, LinkMethod]  # how each member of a multi-member entity joined it
    new_links: Mapping[Ref, str]  # links the store does not hold yet
    unmatched: Mapping[str, tuple[Ref, ...]]  # instance -> live deals matched nowhere
    ambiguous: tuple[Ambiguity, ...]
    duplicates: tuple[Duplicate, ...]


def is_deleted(deal: Deal) -> bool:
    return bool(deal.extra.get("deleted"))


def entity_id_for(refs: Iterable[Ref]) -> str:
    """A deterministic id from the member refs, so two runs on the same data agree."""
    text = "\n".join(sorted(f"{r.system}\x00{r.id}" for r in refs))
    return "E" + hashlib.sha1(text.encode()).hexdigest()[:24]


def _age(deal: Deal) -> tuple[datetime, str]:
    return deal.created_at, deal.id


def ref_order(ref: Ref) -> tuple[str, str]:
    return ref.system, ref.id


class _Linker:
    """Entities under construction: integer handles, merged only when that stays one-to-one."""

    def __init__(self, deals: Mapping[Ref, Deal]) -> None:
        self.deals = deals
        self.members: list[dict[str, Ref] | None] = []
        self.entity_of: dict[Ref, int] = {}
        self.fixed: dict[int, str] = {}  # handle -> entity id from the store or a link marker
        self.by_fixed: dict[str, int] = {}
        self.methods: dict[Ref, LinkMethod] = {}
        self.duplicates: set[Duplicate] = set()
        self.ambiguous: list[Ambiguity] = []

    def new(self, ref: Ref, method: LinkMethod, fixed: str | None = None) -> int:
        handle = len(self.members)
        self.members.append({ref.system: ref})
        self.entity_of[ref] = handle
        self.methods[ref] = method
        if fixed is not None:
            self.fixed[handle] = fixed
            self.by_fixed[fixed] = handle
        return handle

    def attach(self, ref: Ref, handle: int, method: LinkMethod) -> None:
        members = self.members[handle]
        assert members is not None
        held = members.get(ref.system)
        if held is None:
            members[ref.system] = ref
            self.entity_of[ref] = handle
            self.methods[ref] = method
        elif held != ref:
            ids = tuple(sorted((held.id, ref.id)))
            reason = f"both are linked to the same deal (by {method.value})"
            self.duplicates.add(Duplicate(ref.system, ids, reason))

    def join(self, ref: Ref, handle: int, method: LinkMethod) -> None:
        """Put `ref` into entity `handle`, merging its current entity when that is safe."""
        current = self.entity_of.get(ref)
        if current is None:
            self.attach(ref, handle, method)
        elif current != handle:
            self.merge(handle, current, ref, method)

    def link(self, a: Ref, b: Ref, method: LinkMethod) -> None:
        ea = self.entity_of.get(a)
        if ea is None:
            eb = self.entity_of.get(b)
            if eb is None:
                ea = self.new(a, method)
                self.attach(b, ea, method)
            else:
                self.attach(a, eb, method)
        else:
            self.join(b, ea, method)

    def merge(self, keep: int, other: int, ref: Ref, method: LinkMethod) -> None:
        kept, moved = self.members[keep], self.members[other]
        assert kept is not None and moved is not None
        if (keep in self.fixed and other in self.fixed) or kept.keys() & moved.keys():
            anchor = next(iter(kept.values()))
            reason = f"{method.value} evidence links it to a deal already matched elsewhere"
            self.ambiguous.append(Ambiguity(ref, anchor.system, (anchor,), reason))
            return
        if other in self.fixed:
            keep, other, kept, moved = other, keep, moved, kept
        for system, member in moved.items():
            kept[system] = member
            self.entity_of[member] = keep
            self.methods.setdefault(member, method)
        self.members[other] = None

    def candidates(self, deals: Iterable[Deal], other: str) -> Iterable[Deal]:
        """Live deals whose entity has no member in instance `other` yet."""
        for deal in deals:
            handle = self.entity_of.get(deal.ref)
            if handle is None or other not in self.members[handle]:  # type: ignore[operator]
                yield deal


def _link_stored(linker: _Linker, stored_links: Mapping[Ref, str]) -> None:
    groups: dict[str, list[Ref]] = defaultdict(list)
    for ref, entity in stored_links.items():
        if ref in linker.deals:
            groups[entity].append(ref)
    for entity in sorted(groups):
        refs = sorted(groups[entity], key=lambda r: _age(linker.deals[r]))
        handle = linker.new(refs[0], LinkMethod.STORED, fixed=entity)
        for ref in refs[1:]:
            linker.attach(ref, handle, LinkMethod.STORED)


def _link_markers(linker: _Linker, ordered: Sequence[Deal], config: MatchConfig) -> None:
    groups: dict[str, list[Ref]] = defaultdict(list)
    for deal in ordered:
        if deal.link_id:
            groups[deal.link_id].append(deal.ref)
    for marker in sorted(groups):
        refs = groups[marker]
        handle = linker.by_fixed.get(marker)
        if handle is None:
            linked = [linker.entity_of[r] for r in refs if r in linker.entity_of]
            handle = linked[0] if linked else linker.new(refs[0], LinkMethod.LINK_ID, marker)
        for ref in refs:
            linker.join(ref, handle, LinkMethod.LINK_ID)
    trusted = config.id_field_systems
    for deal in ordered:
        if not deal.external_ids or (trusted is not None and deal.system not in trusted):
            continue
        for other, native_id in sorted(deal.external_ids.items()):
            target = Ref(other, native_id)
            if other != deal.system and native_id and target in linker.deals:
                linker.link(deal.ref, target, LinkMethod.EXTERNAL_ID)


def _ambiguous(deals: Sequence[Deal], other: Sequence[Deal], how: str) -> list[Ambiguity]:
    candidates = tuple(sorted((d.ref for d in other), key=ref_order))
    system = candidates[0].system
    reason = f"{len(candidates)} {system} deals have the same {how}"
    return [Ambiguity(d.ref, system, candidates, reason) for d in deals]


def _link_keys(
    linker: _Linker, live: Mapping[str, Sequence[Deal]], keys: Mapping[Ref, MatchKey]
) -> None:
    for a, b in combinations(sorted(live), 2):
        left: dict[MatchKey, list[Deal]] = defaultdict(list)
        for deal in linker.candidates(live[a], b):
            key = keys.get(deal.ref)
            if key is not None:
                left[key].append(deal)
        right: dict[MatchKey, list[Deal]] = defaultdict(list)
        for deal in linker.candidates(live[b], a):
            key = keys.get(deal.ref)
            if key is not None and key in left:
                right[key].append(deal)
        for key in sorted(right):
            la, rb = left[key], right[key]
            if len(la) == 1 and len(rb) == 1:
                linker.link(la[0].ref, rb[0].ref, LinkMethod.KEY)
                continue
            if len(rb) > 1:
                linker.ambiguous.extend(_ambiguous(la, rb, "match key"))
            if len(la) > 1:
                linker.ambiguous.extend(_ambiguous(rb, la, "match key"))


def _block(deal: Deal) -> tuple[str, str] | None:
    month = close_month(deal)
    if not deal.owner_email or month is None:
        return None
    return deal.owner_email.strip().lower(), month


def _link_fuzzy(linker: _Linker, live: Mapping[str, Sequence[Deal]], threshold: float) -> None:
    from rapidfuzz import fuzz, process  # imported lazily: only configs with fuzzy use it

    for a, b in combinations(sorted(live), 2):
        blocks: dict[tuple[str, str], tuple[list[Deal], list[Deal]]] = defaultdict(lambda: ([], []))
        for side, (mine, other) in enumerate(((a, b), (b, a))):
            for deal in linker.candidates(live[mine], other):
                block = _block(deal)
                if block is not None:
                    blocks[block][side].append(deal)
        for block in sorted(blocks):
            left, right = (sorted(side, key=lambda d: d.id) for side in blocks[block])
            if not left or not right:
                continue
            scores = process.cdist(
                [normalize_name(d.name) for d in left],
                [normalize_name(d.name) for d in right],
                scorer=fuzz.token_set_ratio,
                score_cutoff=threshold,
            )
            _resolve_fuzzy(linker, left, right, scores)


def _resolve_fuzzy(linker: _Linker, left: list[Deal], right: list[Deal], scores: object) -> None:
    """Link mutual unique best pairs; a tie at the top is ambiguous (cutoff scores are 0)."""
    rows: list[list[float]] = scores.tolist()  # type: ignore[attr-defined]
    cols = list(zip(*rows, strict=True))
    how = "best fuzzy name score"
    for i, row in enumerate(rows):
        best = max(row)
        picks = [j for j, s in enumerate(row) if s == best]
        if best <= 0:
            continue
        if len(picks) > 1:
            linker.ambiguous.extend(_ambiguous([left[i]], [right[j] for j in picks], how))
            continue
        col = cols[picks[0]]
        if [k for k, s in enumerate(col) if s == max(col)] == [i]:
            linker.link(left[i].ref, right[picks[0]].ref, LinkMethod.FUZZY)
    for j, col in enumerate(cols):
        best = max(col)
        tops = [left[k] for k, s in enumerate(col) if s == best]
        if best > 0 and len(tops) > 1:
            linker.ambiguous.extend(_ambiguous([right[j]], tops, how))


def _key_duplicates(
    live: Mapping[str, Sequence[Deal]], keys: Mapping[Ref, MatchKey]
) -> Iterable[Duplicate]:
    for system in sorted(live):
        seen: dict[MatchKey, list[str]] = defaultdict(list)
        for deal in live[system]:
            key = keys.get(deal.ref)
            if key is not None:
                seen[key].append(deal.id)
        for ids in seen.values():
            if len(ids) > 1:
                yield Duplicate(system, tuple(sorted(ids)), "same match key in one system")


def match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
) -> MatchResult:
    """Group the deals of all instances into entities; see the module docstring."""
    by_ref = {d.ref: d for system in sorted(deals) for d in deals[system]}
    linker = _Linker(by_ref)
    _link_stored(linker, stored_links)
    # Oldest first, so the deterministic survivor of a duplicate pair is the oldest deal.
    ordered = sorted(
        (d for d in by_ref.values() if d.link_id or d.external_ids),
        key=lambda d: (d.system, d.created_at, d.id),
    )
    _link_markers(linker, ordered, config)
    live = {
        system: sorted((d for d in deals[system] if not is_deleted(d)), key=_age)
        for system in sorted(deals)
    }
    keys: dict[Ref, MatchKey] = {}
    if config.keys:
        for system_deals in live.values():
            for deal in system_deals:
                key = match_key(deal, config.keys)
                if key is not None:
                    keys[deal.ref] = key
        _link_keys(linker, live, keys)
    if config.fuzzy_enabled:
        _link_fuzzy(linker, live, config.fuzzy_threshold)
    for deal in by_ref.values():
        if deal.ref not in linker.entity_of:
            linker.new(deal.ref, LinkMethod.STORED)
    return _result(linker, stored_links, live, keys)


def _result(
    linker: _Linker,
    stored_links: Mapping[Ref, str],
    live: Mapping[str, Sequence[Deal]],
    keys: Mapping[Ref, MatchKey],
) -> MatchResult:
    named: dict[str, dict[str, Ref]] = {}
    for handle, members in enumerate(linker.members):
        if members is not None:
            entity = linker.fixed.get(handle) or entity_id_for(members.values())
            named[entity] = dict(sorted(members.items()))
    entities = {e: named[e] for e in sorted(named)}
    entity_of = {ref: e for e, members in entities.items() for ref in members.values()}
    multi = {e for e, members in entities.items() if len(members) > 1}
    methods = {r: linker.methods[r] for r, e in entity_of.items() if e in multi}
    new_links = {r: e for r, e in entity_of.items() if e in multi and stored_links.get(r) != e}
    unmatched: dict[str, tuple[Ref, ...]] = {}
    if len(live) > 1:
        for system, system_deals in live.items():
            alone = sorted(
                (d.ref for d in system_deals if entity_of[d.ref] not in multi), key=ref_order
            )
            if alone:
                unmatched[system] = tuple(alone)
    duplicates = linker.duplicates | set(_key_duplicates(live, keys))
    return MatchResult(
        entities=entities,
        entity_of=entity_of,
        methods=methods,
        new_links=new_links,
        unmatched=unmatched,
        ambiguous=tuple(
            sorted(
                set(linker.ambiguous),
                key=lambda a: (ref_order(a.ref), a.instance, [ref_order(c) for c in a.candidates]),
            )
        ),
        duplicates=tuple(sorted(duplicates, key=lambda d: (d.instance, d.ids, d.reason))),
    )
