"""Matching: deals of different system instances that are the same real deal become one entity.

Evidence, strongest first: stored links -> our link marker (`Deal.link_id`) and explicit
external-id fields -> normalised keys -> optional fuzzy names within an owner + close-month
block. Every step is a hash-join (dicts keyed by ref, entity or key), never a nested loop over
deals. Ambiguous candidates are reported, never guessed. An entity holds at most one deal per
instance; a second deal claiming the same slot is reported as a duplicate, and so are deals of
one instance sharing a key, unless a person split them (or deals matched with them) apart.
"""

from __future__ import annotations

import gc
import hashlib
from collections import defaultdict
from collections.abc import Collection, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from operator import attrgetter, itemgetter

from mapping.model import Deal, Ref
from sync.linker import Ambiguity, Duplicate, Handle, Linker, group_stored
from sync.normalize import MATCH_KEYS, MatchKey, close_month, match_keys, normalize_name
from sync.store_records import LinkMethod

__all__ = [
    "Ambiguity",
    "Duplicate",
    "LinkMethod",
    "MatchConfig",
    "MatchResult",
    "entity_id_for",
    "is_archived",
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
class MatchResult:
    # entity id -> {instance: ref}, instances sorted. In no particular order: consumers sort
    # what they show, and a sort of a million ids is a second at that size.
    entities: Mapping[str, Mapping[str, Ref]]
    new_links: Mapping[Ref, str]  # links of multi-member entities the store does not hold yet
    methods: Mapping[Ref, LinkMethod]  # how each new link was found
    unmatched: Mapping[str, tuple[Ref, ...]]  # instance -> live deals matched nowhere
    ambiguous: tuple[Ambiguity, ...]
    duplicates: tuple[Duplicate, ...]
    # Entities all of whose members are deleted (a rolled-back copy, a deal deleted in every
    # CRM): still grouped, for the deletes they may carry, but no deal the systems share.
    dead: int = 0
    # The deals whose match key this match built (every live deal; an incremental match skips
    # the settled ones) and their keys (None: a component is missing), in the same order, for
    # callers that store them. In input order, so not part of the result's equality.
    keyed: Sequence[Ref] = field(default=(), compare=False, repr=False)
    keys: Sequence[MatchKey | None] = field(default=(), compare=False, repr=False)

    def entity_of(self) -> dict[Ref, str]:
        """Ref -> entity id (built on demand: at a million deals it is not free)."""
        return {ref: e for e, members in self.entities.items() for ref in members.values()}


def is_deleted(deal: Deal) -> bool:
    return bool(deal.extra.get("deleted"))


def is_archived(deal: Deal) -> bool:
    """Archived in Pipedrive: out of its active views, not deleted (mapping/pipedrive.py)."""
    return bool(deal.extra.get("archived"))


def entity_id_for(refs: Iterable[Ref], *taken: Container[object]) -> str:
    """A deterministic id from the member refs, so two runs on the same data agree; an id in
    one of `taken` (ids other entities hold, or held before a person split them: CRM records
    carry those as crmsync's marker) is passed over for the next one in a fixed sequence."""
    text = "\n".join(sorted(f"{r.system}\x00{r.id}" for r in refs))
    entity, n = "E" + hashlib.sha1(text.encode()).hexdigest()[:24], 0
    while any(entity in ids for ids in taken):
        n += 1
        entity = "E" + hashlib.sha1(f"{text}\n#{n}".encode()).hexdigest()[:24]
    return entity


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
            # What the block allocated is still young to the collector, and its first pass
            # would scan it all (the deals and indexes, nearly all alive: 0.1 s of a first
            # analysis at 10k deals per CRM) to promote it: promoted at once instead (frozen,
            # then back in the oldest generation, which full collections still scan). Not
            # when the process froze objects of its own: unfreezing would thaw them too.
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def ref_order(ref: Ref) -> tuple[str, str]:
    return ref.system, ref.id


_NATIVE_ID = itemgetter(1)  # Ref.id, as a C-level getter for bulk index builds
_FIRST = itemgetter(0)  # an item's Ref: sorted in C, in ref_order (a Ref is a (system, id) tuple)
_RARE = attrgetter("external_ids", "link_id", "extra")


@dataclass(slots=True)
class _Scan:
    claimers: list[int]  # deals carrying external ids or a link marker
    live: dict[str, list[int]]  # instance -> deals not deleted
    deleted: set[int]
    archived: set[int]  # in Pipedrive's archive: matched, never reported alone
    keys: list[MatchKey | None]  # per deal
    keyed: Sequence[int]  # the deals whose key was built
    found: Sequence[MatchKey | None]  # their keys
    duplicates: list[Duplicate]  # same key twice in one instance


def _scan(linker: Linker, stored_links: Mapping[Ref, str]) -> _Scan:
    """Stored links, claimers and live deals, in bulk passes over the deals."""
    deals = linker.deals
    if stored_links:
        stored: list[Handle | None] = list(map(stored_links.get, linker.refs))
        group_stored(linker, stored)
    # One pass over the deals for the rare ones (claims, extras); then sort those out.
    rare = [i for i, (ids, marker, extra) in enumerate(map(_RARE, deals)) if ids or marker or extra]
    claimers = [i for i in rare if deals[i].external_ids or deals[i].link_id]
    deleted = {i for i in rare if is_deleted(deals[i])}
    archived = {i for i in rare if is_archived(deals[i])}
    live = {
        system: [i for i in span if i not in deleted] if deleted else list(span)
        for system, span in linker.spans.items()
    }
    return _Scan(claimers, live, deleted, archived, [None] * len(deals), (), (), [])


def _keys(
    linker: Linker, scan: _Scan, components: Sequence[str], changed: Collection[Ref] | None
) -> None:
    """Keys of the live deals, and same-key groups within one instance as duplicates.

    With `changed`, a deal settled by a stored link into an entity present in every instance
    and not in `changed` gets no key: it can join nothing new, and any same-key twin it had
    was reported by the run that settled it.
    """
    deals, keys = linker.deals, scan.keys
    if changed is not None:
        settled = _settled(linker, changed)
        scan.live = {s: [i for i in live if i not in settled] for s, live in scan.live.items()}
    # One batch over all instances: the same deal usually has the same name everywhere.
    everything = [i for indices in scan.live.values() for i in indices]
    if len(everything) == len(deals):  # every deal, in order: no copies of a million refs
        found = scan.keys = match_keys(deals, components)
        scan.keyed = range(len(deals))
    else:
        found = match_keys([deals[i] for i in everything], components)
        for i, key in zip(everything, found, strict=True):
            keys[i] = key
        scan.keyed = everything
    scan.found = found
    start = 0
    for system, indices in scan.live.items():
        part = found[start : start + len(indices)]
        start += len(indices)
        distinct = set(part)
        distinct.discard(None)
        if len(distinct) < len(part) - part.count(None):
            _same_key_twins(linker, scan, system, indices, part)


def _same_key_twins(
    linker: Linker, scan: _Scan, system: str, indices: list[int], keys: list[MatchKey | None]
) -> None:
    seen: dict[MatchKey, int] = {}
    twins: dict[MatchKey, list[int]] = {}
    for i, key in zip(indices, keys, strict=True):
        if key is not None:
            first = seen.setdefault(key, i)
            if first != i:
                twins.setdefault(key, [first]).append(i)
    reason = "same match key in one system"
    for group in twins.values():
        for twin in _possible_twins(linker, group):
            ids = tuple(sorted(linker.refs[i].id for i in twin))
            scan.duplicates.append(Duplicate(system, ids, reason))


def _possible_twins(linker: Linker, group: list[int]) -> list[list[int]]:
    """The deals of a same-key `group` that may be one deal entered twice: the group, or where
    a person split some of them apart, the group once per set of its split members that were
    not split from each other (each with all its other members).

    A split says two deals are different real deals, and so are the deals matched with each,
    crmsync's copies first: the copy of a split-off deal made in the other's CRM has the
    other's key, and taking the two for duplicates held the other's own copy back for good.
    Being in two entities is no such word: a deal entered twice in one CRM, each twin then
    linked to a deal of its own elsewhere (entered twice there too), is still a duplicate.
    Only the few members a split touches are compared with each other: a member no split
    touches is kept apart from none, and a group of thousands stays one pass."""
    touched = [i for i in group if linker.touched_by_split(i)]
    if len(touched) < 2:
        return [group]
    parts: list[list[int]] = []
    for i in touched:
        for part in parts:
            if not any(linker.kept_apart(i, linker.entity[j], j) for j in part):
                part.append(i)
                break
        else:
            parts.append([i])
    if len(parts) == 1:
        return [group]
    split = set(touched)
    rest = [i for i in group if i not in split]
    return [twins for part in parts if len(twins := rest + part) > 1]


def _settled(linker: Linker, changed: Collection[Ref]) -> set[int]:
    changed = changed if isinstance(changed, set | frozenset) else set(changed)
    stored, refs, entity, complete = (
        LinkMethod.STORED,
        linker.refs,
        linker.entity,
        linker.complete(),
    )
    return {
        i
        for i, method in enumerate(linker.method)
        if method is stored and entity[i] in complete and refs[i] not in changed
    }


def _claims(
    linker: Linker, claimers: Sequence[int], config: MatchConfig
) -> list[tuple[int, str | None, list[int]]]:
    """(deal, link marker, external-id targets) of deals whose evidence is not yet satisfied,
    oldest first so that the survivor of a duplicate pair is deterministic."""
    deals, refs, entity, slots = linker.deals, linker.refs, linker.entity, linker.slots
    trusted = config.id_field_systems
    pending: list[tuple[int, str | None, list[tuple[str, str]]]] = []
    # Deleted deals no stored link holds, such as the copies a rollback deleted and forgot.
    orphans: set[int] = set()
    for i in claimers:
        deal = deals[i]
        here = entity[i]
        if here is None and is_deleted(deal):
            orphans.add(i)
        claims: list[tuple[str, str]] = []
        ids = deal.external_ids
        if ids and (trusted is None or deal.ref.system in trusted):
            for other, native_id in sorted(ids.items()) if len(ids) > 1 else ids.items():
                if other == deal.ref.system or not native_id:
                    continue
                slot = slots.get(other)
                j = slot.get(here) if slot is not None and here is not None else None
                if j is None or refs[j].id != native_id:  # not already linked that way
                    claims.append((other, native_id))
        marker = deal.link_id or None
        if claims or (marker is not None and here != marker):
            pending.append((i, marker, claims))
    if not pending:
        return []
    # Only now index deals by native id, and only the ids claimed: a dict of an instance's
    # million ids costs more than the claims.
    wanted: dict[str, set[str]] = defaultdict(set)
    for _, _, claims in pending:
        for other, native_id in claims:
            wanted[other].add(native_id)
    index: dict[str, dict[str, int]] = {}
    for other, claimed in wanted.items():
        span = linker.spans.get(other, range(0))
        native = map(_NATIVE_ID, refs[span.start : span.stop])
        index[other] = {n: i for n, i in zip(native, span, strict=True) if n in claimed}
    resolved = [
        (
            i,
            marker,
            [j for other, native_id in claims if (j := index[other].get(native_id)) is not None],
        )
        for i, marker, claims in pending
    ]
    if orphans:
        resolved = [
            _unsynced(linker, *claim) if claim[0] in orphans else claim for claim in resolved
        ]
    resolved.sort(key=lambda c: (linker.system[c[0]], linker.age(c[0])))
    return resolved


def _unsynced(
    linker: Linker, i: int, marker: str | None, targets: list[int]
) -> tuple[int, str | None, list[int]]:
    """The claims of deleted deal `i` no stored link holds, without those into an entity of
    stored links: it has nothing left to sync, and joining one by its marker or ids would only
    make that entity's live deals look deleted in its CRM (a delete to propagate). A rollback
    leaves its deleted copies so, marker and ids pointing at their sources included."""
    synced = marker is not None and linker.exists(marker)
    return i, None if synced else marker, [j for j in targets if linker.entity[j] is None]


def _link_claims(linker: Linker, claimers: Sequence[int], config: MatchConfig) -> None:
    claims = _claims(linker, claimers, config)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, marker, _ in claims:
        if marker is not None:
            groups[marker].append(i)
    for marker in sorted(groups):
        indices = groups[marker]
        handle: Handle | None = marker if linker.exists(marker) else None
        if handle is None:
            linked = [h for i in indices if (h := linker.entity[i]) is not None]
            handle = linked[0] if linked else linker.new(indices[0], LinkMethod.LINK_ID, marker)
        for i in indices:
            if not linker.kept_apart(i, handle):
                linker.join(i, handle, LinkMethod.LINK_ID)
    for i, _, targets in claims:
        for j in targets:
            linker.link(i, j, LinkMethod.EXTERNAL_ID)
    _unmet_claims(linker, claimers, config)


def _unmet_claims(linker: Linker, claimers: Sequence[int], config: MatchConfig) -> None:
    """Note the deals whose trusted external-id field names a deal of another instance that is
    not in their entity (not pulled, deleted and gone, another org's id, or a slot held by
    another deal): such a deal says which deal it is there, so a key or a fuzzy name must not
    pair it with a different one (Salesforce's clone of an opportunity has its name, owner
    and close month)."""
    deals, entity, slots, trusted = (
        linker.deals,
        linker.entity,
        linker.slots,
        config.id_field_systems,
    )
    for i in claimers:
        deal = deals[i]
        if not deal.external_ids or (trusted is not None and deal.ref.system not in trusted):
            continue
        here = entity[i]
        for other, native_id in deal.external_ids.items():
            slot = slots.get(other)
            unmet = slot is not None and (here is None or here not in slot)
            if unmet and native_id and other != deal.ref.system:
                linker.claiming.setdefault(other, set()).add(i)


def _ambiguous(deals: Sequence[Deal], other: Sequence[Deal], how: str) -> list[Ambiguity]:
    candidates = tuple(sorted((d.ref for d in other), key=ref_order))
    system = candidates[0].system
    reason = f"{len(candidates)} {system} deals have the same {how}"
    return [Ambiguity(d.ref, system, candidates, reason) for d in deals]


def _link_keys(
    linker: Linker, live: Mapping[str, Sequence[int]], keys: Sequence[MatchKey | None]
) -> None:
    deals, entity = linker.deals, linker.entity
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
                i, j = la[0], rb[0]
                if (entity[i] is None and entity[j] is None) or _keys_agree(linker, keys, i, j):
                    linker.link(i, j, LinkMethod.KEY)
                continue
            lefts, rights = [deals[i] for i in la], [deals[j] for j in rb]
            if len(rb) > 1:
                linker.ambiguous.extend(_ambiguous(lefts, rights, "match key"))
            if len(la) > 1:
                linker.ambiguous.extend(_ambiguous(rights, lefts, "match key"))


def _keys_agree(linker: Linker, keys: Sequence[MatchKey | None], i: int, j: int) -> bool:
    """Do the live deals already matched with `i` or `j` (by stored links, ids or markers) have
    their key too? 'Globex' in HubSpot, linked to 'Acme' in Salesforce, is no evidence that
    'Globex' in Pipedrive is the Acme deal: when one disagrees, the pair is ambiguous."""
    key = keys[i]
    fellows = [*_fellows(linker, i, linker.entity[i]), *_fellows(linker, j, linker.entity[j])]
    disagree = [x for x in fellows if (other := keys[x]) is not None and other != key]
    if not disagree:
        return True
    deals = linker.deals
    reason = "match key matches, but not the keys of the deals matched with them"
    anchor = deals[j].ref
    linker.ambiguous.append(Ambiguity(deals[i].ref, anchor.system, (anchor,), reason))
    return False


def _block(deal: Deal) -> tuple[str, str] | None:
    month = close_month(deal)
    if not deal.owner_email or month is None:
        return None
    return deal.owner_email.strip().lower(), month


def _link_fuzzy(linker: Linker, live: Mapping[str, Sequence[int]], threshold: float) -> None:
    """Fuzzy names within owner + close-month blocks. Deals the keys found ambiguous (either
    side) stay out: a fuzzy score picking one of several same-key candidates is a guess, and
    the report would call the deal ambiguous while crmsync writes along the link."""
    from rapidfuzz import fuzz, process  # imported lazily: only configs with fuzzy use it

    deals = linker.deals
    unsure = {ref for a in linker.ambiguous for ref in (a.ref, *a.candidates)}
    for a, b in combinations(sorted(live), 2):
        blocks: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for side, (mine, other) in enumerate(((a, b), (b, a))):
            for i in linker.candidates(live[mine], other):
                block = _block(deals[i])
                if block is not None and not (unsure and deals[i].ref in unsure):
                    blocks[block][side].append(i)
        for block in sorted(blocks):
            left, right = (sorted(side, key=lambda i: deals[i].ref.id) for side in blocks[block])
            if not left or not right:
                continue
            names = [normalize_name(deals[i].name) for i in left]
            others = [normalize_name(deals[j].name) for j in right]
            scores = process.cdist(
                names, others, scorer=fuzz.token_set_ratio, score_cutoff=threshold
            )
            rows = scores.tolist()
            _drop_other_numbers(rows, names, others)
            _resolve_fuzzy(linker, left, right, rows, threshold)


def _numbers(name: str) -> frozenset[str]:
    """The words of a normalised name that hold a digit ('q1', '2025', '10')."""
    return frozenset(word for word in name.split() if not word.isalpha())


def _drop_other_numbers(rows: list[list[float]], names: list[str], others: list[str]) -> None:
    """Scores of names whose numbers differ become 0 (below any cutoff): 'Deal 10' and 'Deal
    100', 'Renewal Q1' and 'Renewal Q2', 'Renewal 2025' and 'Renewal 2026' score over 90 yet
    are different deals, and a number is the one part of a name no typo explains."""
    mine, theirs = list(map(_numbers, names)), list(map(_numbers, others))
    if not any(mine) and not any(theirs):
        return
    for numbers, row in zip(mine, rows, strict=True):
        for j, score in enumerate(row):
            if score and numbers != theirs[j]:
                row[j] = 0.0


def _resolve_fuzzy(
    linker: Linker, left: list[int], right: list[int], rows: list[list[float]], threshold: float
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
            a, b = left[i], right[picks[0]]
            if _fuzzy_agrees(linker, a, b, threshold):
                linker.link(a, b, LinkMethod.FUZZY)
            else:
                anchor = deals[b].ref
                reason = "fuzzy name matches, but not the names of the deals matched with them"
                linker.ambiguous.append(Ambiguity(deals[a].ref, anchor.system, (anchor,), reason))
    for j, col in enumerate(cols):
        best = max(col)
        tops = [deals[left[k]] for k, s in enumerate(col) if s == best]
        if best > 0 and len(tops) > 1:
            linker.ambiguous.extend(_ambiguous([deals[right[j]]], tops, how))


def _fuzzy_agrees(linker: Linker, a: int, b: int, threshold: float) -> bool:
    """Does every deal of `a`'s entity pass the fuzzy test against every deal of `b`'s in
    another instance? Fuzzy scores are not transitive: 'Acme Renewal' scores 100 against
    both 'Acme Renewal Europe' and 'Acme Renewal Americas', which must not become one deal
    through it."""
    from rapidfuzz import fuzz

    entity, deals, system = linker.entity, linker.deals, linker.system
    mine = _fellows(linker, a, entity[a])
    theirs = _fellows(linker, b, entity[b])
    for x in mine:
        for y in theirs:
            if (x, y) == (a, b) or system[x] == system[y]:
                continue
            name, other = normalize_name(deals[x].name), normalize_name(deals[y].name)
            if _numbers(name) != _numbers(other) or fuzz.token_set_ratio(name, other) < threshold:
                return False
    return True


def _fellows(linker: Linker, i: int, handle: Handle | None) -> list[int]:
    return [i] if handle is None else list(linker.members(handle).values())


def match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
    *,
    changed: Collection[Ref] | None = None,
    apart: Collection[frozenset[Ref]] = (),
    retired: Container[str] = frozenset(),
) -> MatchResult:
    """Group the deals of all instances into entities; see the module docstring.

    `changed` (optional, for incremental runs): the refs whose deal is new or differs from the
    previous run. Deals settled by stored links into complete entities and not in `changed`
    then skip key computation, so same-key duplicates are only looked for among the other
    deals (duplicates among settled deals were reported by the run that settled them).
    `apart`: pairs of deals a person split (sync/link_review.py); no evidence links them.
    `retired`: ids of entities a person split; no new group of deals is named so.
    """
    with paused_gc():
        return _match(deals, stored_links, config, changed, apart, retired)


def _match(
    deals: Mapping[str, Sequence[Deal]],
    stored_links: Mapping[Ref, str],
    config: MatchConfig,
    changed: Collection[Ref] | None,
    apart: Collection[frozenset[Ref]],
    retired: Container[str],
) -> MatchResult:
    systems = sorted(deals)
    everything = [d for system in systems for d in deals[system]]
    spans: dict[str, range] = {}
    for system in systems:
        start = len(spans) and next(reversed(spans.values())).stop
        spans[system] = range(start, start + len(deals[system]))
    linker = Linker(everything, spans, apart)
    scan = _scan(linker, stored_links)
    _link_claims(linker, scan.claimers, config)
    # Input order does not leak out: keys are joined in sorted order, reports are sorted.
    if config.keys:
        _keys(linker, scan, config.keys, changed)
        _link_keys(linker, scan.live, scan.keys)
    if config.fuzzy_enabled:
        _link_fuzzy(linker, scan.live, config.fuzzy_threshold)
    for i in [i for i, handle in enumerate(linker.entity) if handle is None]:
        linker.new(i, LinkMethod.STORED)
    return _result(linker, scan, retired)


def _groups(linker: Linker) -> dict[Handle, dict[str, Ref]]:
    """Handle -> {instance: ref}, instances in sorted order."""
    refs = linker.refs
    groups: dict[Handle, dict[str, Ref]] = {}
    for system in sorted(linker.slots):
        slot = linker.slots[system]
        if not groups:
            groups = {handle: {system: refs[i]} for handle, i in slot.items()}
            continue
        get = groups.get
        for handle, i in slot.items():
            group = get(handle)
            if group is None:
                groups[handle] = {system: refs[i]}
            else:
                group[system] = refs[i]
    return groups


def _result(linker: Linker, scan: _Scan, retired: Container[str]) -> MatchResult:
    refs = linker.refs
    groups = _groups(linker)
    # Int handles are 0 .. handles-1; a handle merged into another entity has no group. A new
    # group never takes the id of an entity of this run (a stored or marked one) or of a split
    # one: two groups under one id would be one, and a CRM record marked with it another's.
    names: dict[Handle, str] = {
        h: entity_id_for(groups[h].values(), groups, retired)
        for h in range(linker.handles)
        if h in groups
    }
    gone = {refs[i] for i in scan.deleted}
    shelved = {refs[i] for i in scan.archived}
    # Only the entities of deleted deals can be dead: proportional to the deletions.
    dead = sum(
        all(ref in gone for ref in groups[h].values())
        for h in {linker.entity[i] for i in scan.deleted}
        if h in groups
    )
    alone: dict[str, list[Ref]] = {system: [] for system in scan.live}
    for group in groups.values():
        if len(group) == 1:
            [(system, ref)] = group.items()
            if ref not in gone and ref not in shelved:
                alone[system].append(ref)
    new_links: dict[Ref, str] = {}
    methods: dict[Ref, LinkMethod] = {}
    stored, entity = LinkMethod.STORED, linker.entity
    # A stored member never changes entity: merges keep the stored side's id.
    for i in [i for i, m in enumerate(linker.method) if m is not stored and m is not None]:
        owner = entity[i]
        assert owner is not None
        if len(groups[owner]) > 1:
            new_links[refs[i]] = owner if isinstance(owner, str) else names[owner]
            methods[refs[i]] = linker.method[i]  # type: ignore[assignment]
    unmatched = {
        system: tuple(sorted(refs))  # a Ref sorts as (system, id): ref_order, compared in C
        for system, refs in alone.items()
        if refs and len(alone) > 1
    }
    duplicates = _merged(linker.duplicates, scan.duplicates)
    for handle, name in names.items():  # renamed in place: a copy costs a second at 1M
        groups[name] = groups.pop(handle)
    return MatchResult(
        entities=groups,  # type: ignore[arg-type]  # every handle is now a str
        methods=dict(sorted(methods.items(), key=_FIRST)),
        new_links=dict(sorted(new_links.items(), key=_FIRST)),
        unmatched=unmatched,
        ambiguous=tuple(
            sorted(
                set(linker.ambiguous),
                key=lambda a: (ref_order(a.ref), a.instance, [ref_order(c) for c in a.candidates]),
            )
        ),
        duplicates=duplicates,
        dead=dead,
        keyed=refs if isinstance(scan.keyed, range) else list(map(refs.__getitem__, scan.keyed)),
        keys=scan.found,
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
