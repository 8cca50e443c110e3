"""What an apply does with each deal found in one CRM only, read from the plan alone.

The plan lists such deals as `unmatched`, and apart from them the copies it makes (`creates`,
by `source`), the copies it cannot make (`errors` "no copy can be made in X: ...") and the deals
it holds back (`ambiguous`, `duplicates`, and a deal listed live in `deleted` whose id field
names a deal gone in another CRM: never copied). Read side by side, "837 creates, 1145
unmatched" did not say which deal would be copied and which would stay.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["CopyRules", "Fate", "FateKind", "fate_counts", "unmatched_fates"]

NO_COPY = "no copy can be made in "  # how `sync.diff` words a copy its target cannot hold


class FateKind(StrEnum):
    COPIED = "copied"
    CANNOT = "cannot be copied"
    HELD = "held back"
    STAYS = "not copied"


@dataclass(frozen=True, slots=True)
class Fate:
    kind: FateKind
    text: str  # the plan table's "on apply" cell


@dataclass(frozen=True, slots=True)
class CopyRules:
    """What the config says of copies: `push.create_missing`, `push.create_from` (None: every
    instance's deals), `push.targets` and the config's instances."""

    create_missing: bool
    create_from: tuple[str, ...] | None
    targets: tuple[str, ...]
    instances: tuple[str, ...]

    def why_not(self, system: str) -> str:
        """The first rule, in this order, that keeps a deal of `system` from being copied."""
        if not self.create_missing:
            return "push.create_missing is off"
        if self.create_from is not None and system not in self.create_from:
            return f"push.create_from leaves {system} out"
        lacking = [i for i in self.instances if i != system]
        if not set(lacking) & set(self.targets):
            verb = "is" if len(lacking) == 1 else "are"
            return f"{', '.join(lacking)} {verb} not in push.targets" if lacking else "no other CRM"
        # What no rule says (sync.diff's `_create_sources`): an archived deal is the source of
        # no copy (it would revive it), nor under push.create_from a copy crmsync made.
        if self.create_from is None:
            return "it is archived"
        return "it is archived, or a copy crmsync made (push.create_from copies originals only)"


_Key = tuple[str, str]
# Without the config: every rule that may keep it.
_ANY_RULE = "push.create_missing is off, push.create_from leaves its CRM out, or no target lacks it"


def unmatched_fates(
    plan: Mapping[str, Any],
    dead: Collection[tuple[str, str, str]] = (),
    rules: CopyRules | None = None,
) -> dict[_Key, Fate]:
    """(instance, id) of each unmatched deal -> what the apply does with it. `dead`: the
    store's dead letters (instance, a copy's entity, "" for a whole record): no apply sends
    those copies until they are released. `rules`: the config's, to say which keeps a deal
    that stays uncopied from being copied."""
    copied: dict[_Key, set[str]] = defaultdict(set)
    unsent: dict[_Key, set[str]] = defaultdict(set)
    for create in plan.get("creates", []):
        source = create.get("source") or {}
        key = (str(source.get("system")), str(source.get("id")))
        is_dead = (create["system"], create.get("entity"), "") in dead
        (unsent if is_dead else copied)[key].add(str(create["system"]))
    refused: dict[_Key, set[str]] = defaultdict(set)
    for error in plan.get("errors", []):
        reason = str(error.get("reason") or "")
        if reason.startswith(NO_COPY):
            refused[(error["system"], error["id"])].add(reason[len(NO_COPY) :].split(":")[0])
    ambiguous = {
        key
        for item in plan.get("ambiguous", [])
        for key in (
            (item.get("system"), item.get("id")),
            *((item.get("instance"), c) for c in item.get("candidates", [])),
        )
    }
    duplicated = {(d["system"], i) for d in plan.get("duplicates", []) for i in d.get("ids", [])}
    naming_gone = {(r["system"], r["id"]) for d in plan.get("deleted", []) for r in d["live"]}
    fates: dict[_Key, Fate] = {}
    for deal in plan.get("unmatched", []):
        key = (deal["system"], deal["id"])
        held = (
            "ambiguous: see Ambiguous" if key in ambiguous
            else "duplicated: see Duplicates" if key in duplicated
            else "a deal it is linked to is deleted: see Deleted" if key in naming_gone
            else None
        )  # fmt: skip
        why = _ANY_RULE if rules is None else rules.why_not(key[0])
        fates[key] = _fate(copied[key], refused[key], unsent[key], held, why)
    return fates


def _fate(
    copied: set[str], refused: set[str], unsent: set[str], held: str | None, why: str
) -> Fate:
    reasons = []
    if refused:
        reasons.append(f"no copy in {', '.join(sorted(refused))}: see Errors")
    if unsent:
        where = ", ".join(sorted(unsent))
        reasons.append(f"copy dead-lettered in {where}: not sent until released")
    cannot = "; ".join(reasons)
    if copied:
        text = f"copied to {', '.join(sorted(copied))}"
        return Fate(FateKind.COPIED, f"{text}; {cannot}" if cannot else text)
    if cannot:
        return Fate(FateKind.CANNOT, cannot)
    if held is not None:
        return Fate(FateKind.HELD, f"not copied while {held}")
    return Fate(FateKind.STAYS, f"not copied: {why}")


def fate_counts(fates: Mapping[_Key, Fate]) -> str:
    """ "5: 1 copied, 1 cannot be copied, ..." in FateKind order, kinds of none left out."""
    counts = Counter(fate.kind for fate in fates.values())
    parts = [f"{counts[kind]} {kind.value}" for kind in FateKind if counts[kind]]
    return f"{len(fates)}: {', '.join(parts)}" if parts else str(len(fates))
