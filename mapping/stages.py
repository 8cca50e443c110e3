"""Stage maps: how well one covers the discovered stages, and the proposal `crmsync init` writes.

A proposal is deterministic (same stages in, same map out) and says how sure it is: closed/won
flags and exact name matches are "exact", keyword and position matches are a "guess" the user
should review before trusting the map, and a stage only a person can place is left unmapped
("none", no funnel key, `why` says what to decide): `crmsync check` lists it, which is safe,
where a wrong map would write wrong stages into every CRM.

Where a map gives several native stages of a pipeline one open funnel stage, the one a deal
moved to that funnel stage is written in (`stage_write`) is proposed too: the one named like the
funnel stage rather than one placed there by its position (Pipedrive's "Proposal Made", not its
"Demo Scheduled", for proposal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mapping.context import NativeStage
from mapping.funnel import Funnel, FunnelStage
from mapping.names import same_word as _same_word
from mapping.names import words as _words

__all__ = [
    "KEYWORDS",
    "Coverage",
    "Proposal",
    "WriteProposal",
    "coverage",
    "propose_stage_map",
    "propose_stage_write",
    "stage_map_from_proposals",
]


@dataclass(frozen=True, slots=True)
class Coverage:
    mapped: tuple[str, ...]  # native stage ids with a funnel key, pipeline order
    unmapped: tuple[str, ...]  # discovered native stage ids the map does not mention
    unknown: tuple[str, ...]  # ids the map mentions that the CRM does not have (typos, removed)

    @property
    def complete(self) -> bool:
        return not self.unmapped and not self.unknown


@dataclass(frozen=True, slots=True)
class Proposal:
    funnel_key: str | None  # None: left for a person to map
    confidence: Literal["exact", "guess", "none"]
    why: str


@dataclass(frozen=True, slots=True)
class WriteProposal:
    """The native stage a funnel stage is written as, where several map to it."""

    native_stage: str
    confidence: Literal["exact", "guess"]
    why: str


# German, French and Spanish words (accents removed) beside the English ones below.
_NEGOTIATION = ("verhandl", "vertrag", "negoci", "contrat")
_PROPOSAL = ("angebot", "proposition", "devis", "propuesta", "cotizacion")

# Name keywords -> funnel key of the default funnel, tried in this order (first match wins);
# each must start a word of the label, compared without accents.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("negotiation", ("negotiat", "contract", "review", "decision", *_NEGOTIATION)),
    ("proposal", ("proposal", "quote", "presentation", "value", *_PROPOSAL)),
    ("qualified", ("qualif", "discovery", "analysis", "appointment", "calific")),
    ("lead", ("lead", "new", "prospect", "neu", "nouveau", "nuevo")),
)

# Words that name a closed stage. An open stage named so is one a person must place: Pipedrive
# keeps won and lost as a deal's status, so its "Lost" stage holds open deals too, and a
# "Closed Won - Pending Signature" a CRM keeps open is neither won nor like any open stage.
_CLOSED_NAME = re.compile(
    r"\b(closed|won|lost|dead|disqualif\w*|unqualif\w*|not qualified|no decision"
    r"|gewonnen|verloren|gagne\w*|perdu\w*|ganad[oa]|perdid[oa])\b"
)


def coverage(
    stage_map: Mapping[str, Mapping[str, str]], native_stages: Mapping[str, Sequence[NativeStage]]
) -> dict[str, Coverage]:
    """Per pipeline (discovered or mapped): which native stages the map covers."""
    result: dict[str, Coverage] = {}
    for pipeline in [*native_stages, *(p for p in stage_map if p not in native_stages)]:
        mapping = stage_map.get(pipeline, {})
        ids = [s.id for s in native_stages.get(pipeline, ())]
        result[pipeline] = Coverage(
            mapped=tuple(i for i in ids if i in mapping),
            unmapped=tuple(i for i in ids if i not in mapping),
            unknown=tuple(sorted(set(mapping) - set(ids))),
        )
    return result


def _named(stage: NativeStage, candidates: Sequence[FunnelStage]) -> FunnelStage | None:
    name = _words(stage.label)
    return next((c for c in candidates if name in (_words(c.key), _words(c.label))), None)


def _closed(stage: NativeStage, funnel: Funnel) -> Proposal:
    """A stage the CRM flags closed: won, or the lost stage its name says when there are several."""
    if stage.is_won:
        return Proposal(funnel.won_stage.key, "exact", "flagged closed and won")
    lost = funnel.lost_stages
    if len(lost) == 1:
        return Proposal(lost[0].key, "exact", "flagged closed and not won")
    named = _named(stage, lost)
    if named is not None:
        why = f"flagged closed and not won, and named {stage.label!r} like the funnel stage"
        return Proposal(named.key, "exact", why)
    name = _words(stage.label)
    within = [c for c in lost if re.search(rf"\b{re.escape(_words(c.key))}\b", name)]
    if len(within) == 1:
        why = f"flagged closed and not won, and {stage.label!r} contains {within[0].key!r}"
        return Proposal(within[0].key, "guess", why)
    keys = ", ".join(c.key for c in lost)
    why = f"flagged closed and not won; pick one of the funnel's lost stages ({keys})"
    return Proposal(None, "none", why)


def _by_name(stage: NativeStage, funnel: Funnel) -> Proposal | None:
    name = _words(stage.label)
    exact = _named(stage, funnel.open_stages)
    if exact is not None:
        return Proposal(exact.key, "exact", f"name {stage.label!r} is the funnel stage")
    closed = _CLOSED_NAME.search(name)
    if closed is not None:
        why = (
            f"open in the CRM but named {closed.group(0)!r} like a closed stage: map it by hand "
            "(an open funnel stage, or won/lost if its deals are)"
        )
        return Proposal(None, "none", why)
    for key, words in KEYWORDS:
        if key not in funnel or funnel.stage(key).is_closed:
            continue
        for word in words:
            if re.search(rf"\b{word}", name):
                return Proposal(key, "guess", f"name {stage.label!r} contains {word!r}")
    return _by_own_word(stage, funnel)


_KEYWORD_KEYS = frozenset(key for key, _ in KEYWORDS)


def _by_own_word(stage: NativeStage, funnel: Funnel) -> Proposal | None:
    """A config funnel's own open stages have no keywords: a native stage named with a word of
    one's key or label ("Quote Sent" for quoted) is a guess for it, the first in funnel order.
    The words the funnel itself is named by tell no stage apart ("Renewal Committed" in a
    renewal funnel is committed, not renewal_due): they count only where nothing else does."""
    words = _words(stage.label).split()
    named = _words(funnel.name).split()
    telling = [w for w in words if not any(_same_word(w, n) for n in named)]
    return _own_word_in(stage, funnel, telling) or _own_word_in(stage, funnel, words)


def _own_word_in(stage: NativeStage, funnel: Funnel, words: Sequence[str]) -> Proposal | None:
    for candidate in funnel.open_stages:
        if candidate.key in _KEYWORD_KEYS:
            continue
        own = {*_words(candidate.key).split(), *_words(candidate.label).split()}
        for word in words:
            if any(_same_word(word, o) for o in own):
                return Proposal(candidate.key, "guess", f"name {stage.label!r} contains {word!r}")
    return None


def _pre_sale(funnel: Funnel) -> tuple[FunnelStage, ...]:
    """The open stages before won: where a stage of a sales pipeline can be by its position."""
    won = funnel.won_stage.order
    before = tuple(s for s in funnel.open_stages if s.order < won)
    return before or funnel.open_stages


_EXACT_WEIGHT = 1000


def _weight(stage: NativeStage, proposal: Proposal) -> int:
    """How much a name match says: the funnel stage's own name, its own word, a related word."""
    if proposal.confidence == "exact":
        return _EXACT_WEIGHT
    own = dict(KEYWORDS).get(proposal.funnel_key or "", ("",))[0]
    return 10 if own and re.search(rf"\b{own}", _words(stage.label)) else 1


def _rank(rank: Mapping[str, int], proposal: Proposal) -> int:
    assert proposal.funnel_key is not None  # only stages placed by their name are ranked
    return rank[proposal.funnel_key]


def _in_pipeline_order(
    named: Sequence[NativeStage], proposals: Mapping[str, Proposal], rank: Mapping[str, int]
) -> set[str]:
    """The ids of the heaviest run of `named` (in pipeline order) whose funnel stages never go
    back: exact matches belong to it, and of equally heavy runs the earliest is kept."""
    keys = [_rank(rank, proposals[s.id]) for s in named]
    weight = [_weight(s, proposals[s.id]) for s in named]
    best = [0] * len(named)  # best[i]: the heaviest run starting at i
    for i in reversed(range(len(named))):
        tail = [best[j] for j in range(i + 1, len(named)) if keys[j] >= keys[i]]
        best[i] = weight[i] + max(tail, default=0)
    kept: set[str] = set()
    need, floor = max(best, default=0), -1
    for i, stage in enumerate(named):
        if need and keys[i] >= floor and best[i] == need:
            kept.add(stage.id)
            need, floor = need - weight[i], keys[i]
    return kept


def _propose_pipeline(stages: Sequence[NativeStage], funnel: Funnel) -> dict[str, Proposal]:
    proposals: dict[str, Proposal] = {}
    ordered = sorted(stages, key=lambda s: (s.order, s.id))
    for stage in ordered:
        if stage.is_closed:
            proposals[stage.id] = _closed(stage, funnel)
        else:
            named = _by_name(stage, funnel)
            if named is not None:
                proposals[stage.id] = named
    # An open stage of probability 0 among likelier ones is a parking stage (on hold, nurture),
    # no step of the sales sequence: its place in the funnel is for a person to say.
    likely = any(s.probability for s in ordered if not s.is_closed)
    for stage in ordered:
        if likely and stage.probability == 0 and not stage.is_closed and stage.id not in proposals:
            why = (
                "open with probability 0 while the pipeline's other open stages have one: a "
                "parking stage (on hold, nurture)? map it by hand"
            )
            proposals[stage.id] = Proposal(None, "none", why)
    # A stage left to a person takes no position in the spread.
    open_native = [
        s
        for s in ordered
        if not s.is_closed and (s.id not in proposals or proposals[s.id].funnel_key)
    ]
    # Pipeline order is evidence too: a name that would send a stage back behind the stages
    # before it (a Salesforce 'Id. Decision Makers' to negotiation, ahead of its 'Proposal/Price
    # Quote') yields to its position.
    rank = {stage.key: i for i, stage in enumerate(funnel.stages)}
    by_name = {s.id: proposals[s.id] for s in open_native if s.id in proposals}
    kept = _in_pipeline_order([s for s in open_native if s.id in by_name], by_name, rank)
    backwards = {sid: proposals.pop(sid).why for sid in by_name if sid not in kept}
    anchors = [(i, _rank(rank, by_name[s.id])) for i, s in enumerate(open_native) if s.id in kept]
    targets = _pre_sale(funnel)
    for position, stage in enumerate(open_native):
        if stage.id in proposals:
            continue
        if not targets:
            why = f"open, and funnel {funnel.name!r} has no open stage to map it to"
            proposals[stage.id] = Proposal(None, "none", why)
            continue
        # Spread the open native stages evenly over the funnel's open stages before won, never
        # past a stage placed by its name on either side.
        span = len(open_native) - 1
        target = targets[int(position * (len(targets) - 1) / span + 0.5) if span else 0]
        low = max((r for i, r in anchors if i < position), default=-1)
        high = min((r for i, r in anchors if i > position), default=len(rank))
        allowed = [t for t in targets if low <= rank[t.key] <= high]
        if allowed and target not in allowed:
            target = allowed[0] if rank[target.key] < low else allowed[-1]
        why = f"open stage {position + 1} of {len(open_native)} in pipeline order"
        if stage.id in backwards:
            why += f" ({backwards[stage.id]}, which would run back in pipeline order)"
        proposals[stage.id] = Proposal(target.key, "guess", why)
    return {s.id: proposals[s.id] for s in ordered if s.id in proposals}


def propose_stage_map(
    pipelines: Mapping[str, Sequence[NativeStage]], funnel: Funnel | Mapping[str, Funnel]
) -> dict[str, dict[str, Proposal]]:
    """A proposal for every discovered stage; `funnel` may be one per pipeline."""
    result = {}
    for pipeline, stages in pipelines.items():
        chosen = funnel if isinstance(funnel, Funnel) else funnel[pipeline]
        result[pipeline] = _propose_pipeline(stages, chosen)
    return result


def stage_map_from_proposals(
    proposals: Mapping[str, Mapping[str, Proposal]],
) -> dict[str, dict[str, str]]:
    """The map the proposals make: a stage left to a person is not in it."""
    return {
        p: {sid: prop.funnel_key for sid, prop in stages.items() if prop.funnel_key is not None}
        for p, stages in proposals.items()
    }


def _name_evidence(stage: NativeStage, key: str, funnel: Funnel) -> int:
    """How surely a stage's name says it is `key`, as `_weight` counts it (its very name, the
    funnel stage's own word, a related word); 0 when its name says nothing of `key`."""
    named = _by_name(stage, funnel)
    return _weight(stage, named) if named is not None and named.funnel_key == key else 0


def propose_stage_write(
    stages: Sequence[NativeStage], mapping: Mapping[str, str], funnel: Funnel
) -> dict[str, WriteProposal]:
    """Open funnel key -> the native stage of this pipeline to write it as, for each key that
    `mapping` (native -> key: the map as it stands, a person's entries included) gives several
    discovered stages: the one whose name says the funnel stage most surely (its very name, then
    its own word, as "Proposal/Price Quote" over "Value Proposition", then a related one), the
    first in pipeline order among equals."""
    shared: dict[str, list[NativeStage]] = {}
    for stage in sorted(stages, key=lambda s: (s.order, s.id)):
        key = mapping.get(stage.id)
        if key is not None and key in funnel and not funnel.stage(key).is_closed:
            shared.setdefault(key, []).append(stage)
    result = {}
    for key, candidates in shared.items():
        if len(candidates) < 2:
            continue
        evidence = [_name_evidence(s, key, funnel) for s in candidates]
        best = max(evidence)
        chosen = candidates[evidence.index(best)]
        labels = ", ".join(repr(s.label) for s in candidates)
        if evidence.count(best) > 1:  # alike: pipeline order decides
            why = f"first in pipeline order of {labels}"
        else:
            why = f"of {labels}, the one named like the funnel stage"
        confident = best == _EXACT_WEIGHT and evidence.count(best) == 1
        result[key] = WriteProposal(chosen.id, "exact" if confident else "guess", why)
    return result
