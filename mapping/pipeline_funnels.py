"""Which funnel a pipeline is named like: the `pipeline_funnels` guess `crmsync init` writes.

A product line's pipeline is usually named after it ("Renewals" for funnel `renewal`). A funnel
other than the default whose key's every word is a word of the pipeline's label or id (with an
ending: renewal, Renewals) is proposed, the one with the most such words where several are;
a tie, or no match, proposes nothing, for a person to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mapping.names import same_word, words

__all__ = ["FunnelGuess", "propose_pipeline_funnel"]

_DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class FunnelGuess:
    funnel: str
    why: str


def _matched(funnel: str, name_words: Sequence[str]) -> int:
    """How many words the funnel key has, where every one is in the name; 0 otherwise."""
    own = words(funnel).split()
    every = all(any(same_word(o, w) for w in name_words) for o in own)
    return len(own) if own and every else 0


def propose_pipeline_funnel(
    label: str, pipeline_id: str, funnels: Iterable[str]
) -> FunnelGuess | None:
    """The funnel (not the default) a pipeline is named like, or None."""
    name_words = [*words(label).split(), *words(pipeline_id).split()]
    scored = {f: _matched(f, name_words) for f in funnels if f != _DEFAULT}
    best = max(scored.values(), default=0)
    chosen = [f for f, score in scored.items() if score == best]
    if best == 0 or len(chosen) != 1:
        return None
    return FunnelGuess(chosen[0], f"pipeline {label!r} is named like funnel {chosen[0]}")
