"""The rules of `crmsync forget`: which instance's state may be removed, and what becomes of the
runs that wrote to one removed since (README "Retiring an instance").

An instance is forgotten only once the config no longer names it (a named one is read again by
the next run), while the store holds something of it, and while none of its writes is in doubt
(a killed apply's, which the next apply to it settles: forgotten, they would never be).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from config import Config
from sync.errors import CrmsyncError
from sync.store import Holdings, Store
from sync.store_records import RunKind

__all__ = [
    "ForgetRefused",
    "check_forgettable",
    "forgotten_line",
    "forgotten_note",
    "forgotten_since",
]


class ForgetRefused(CrmsyncError):
    """The instance cannot be forgotten now; the message says why and what to do first."""

    exit_code = 2


def check_forgettable(config: Config, store: Store, instance: str) -> Holdings:
    """What the store holds of `instance`, or ForgetRefused."""
    name, file = instance, config.path.name
    if name in config.systems:
        raise ForgetRefused(
            f"{name} is in {file}: only an instance the config no longer names can be "
            f"forgotten; nothing removed: retire it first (delete systems.{name} and every key "
            'naming it, README "Retiring an instance")'
        )
    if name not in store.known_instances():
        raise ForgetRefused(_unknown(config, store, name))
    # no plan is named "": the writes in doubt of every plan
    doubt = [r for r in store.journal.in_doubt_elsewhere("") if r.entry.instance == name]
    if doubt:
        runs = ", ".join(sorted({r.run_id for r in doubt}))
        raise ForgetRefused(
            f"{len(doubt)} write(s) to {name} are in doubt (run {runs} stopped before recording "
            f"them); nothing removed: add systems.{name} back to {file} and run `crmsync "
            "reconcile` (or roll that run back) to settle them, then retire it again"
        )
    return store.holdings(name)


def _unknown(config: Config, store: Store, name: str) -> str:
    line = f"the state store holds nothing of {name!r}"
    earlier = _forget_runs(store).get(name)
    if earlier:
        line += f" (run {earlier[-1][0]} forgot it)"
    retired = sorted(store.known_instances() - set(config.systems))
    then = f"retired instances it holds: {', '.join(retired)}" if retired else "none is retired"
    return f"{line}; nothing removed ({then})"


def _forget_runs(store: Store) -> dict[str, list[tuple[str, datetime]]]:
    """Instance -> the forget runs of it (id, start), oldest first."""
    found: dict[str, list[tuple[str, datetime]]] = {}
    for run in reversed(store.runs.recent(None, kind=RunKind.FORGET)):
        instance = run.counts.get("instance")
        if isinstance(instance, str):
            found.setdefault(instance, []).append((run.id, run.started_at))
    return found


def forgotten_since(
    store: Store, started_at: datetime, instances: Collection[str] | None
) -> dict[str, str]:
    """Those of `instances` (None: any) a forget run removed after `started_at` (a run's
    start): instance -> that forget run. The run's writes there are no longer crmsync's to
    undo: the deals they went to are gone from the store, and the name may stand for another
    account by now."""
    return {
        name: next(run for run, at in runs if at >= started_at)
        for name, runs in _forget_runs(store).items()
        if (instances is None or name in instances) and any(at >= started_at for _, at in runs)
    }


def forgotten_line(
    run_id: str, forgotten: Mapping[str, str], *, dry: bool = False, entities: Sequence[str] = ()
) -> str:
    """Why a rollback of `run_id` is refused, `forgotten` (instance -> forget run) naming the
    instances it wrote to whose state was removed since: a run is undone whole or not at all; a
    partial one (`entities`) is refused where it would write there (a copy the run made in an
    entity). `dry`: the line ending a dry view, which lists those writes above it."""
    why = _wrote_to_forgotten(run_id, forgotten)
    if entities:
        why += f", and the rollback of {', '.join(entities)} would write there"
    if dry:
        return f"dry run: nothing written; --apply refuses it: {why}: undo those writes by hand"
    listed = " ".join(["crmsync rollback", run_id, *(f"--entity {e}" for e in entities)])
    whole = "" if entities else ", and a run is undone whole"
    return (
        f"{why}; nothing written: crmsync no longer knows the deals it wrote to there{whole}: "
        f"undo those writes by hand (`{listed}` lists them)"
    )


def forgotten_note(run_id: str, forgotten: Mapping[str, str]) -> str:
    """What a partial rollback of `run_id` leaves of its writes to the `forgotten` instances."""
    return (
        f"{_wrote_to_forgotten(run_id, forgotten)}: this rollback leaves its writes there alone "
        "(their deals are in no entity now); undo them by hand"
    )


def _wrote_to_forgotten(run_id: str, forgotten: Mapping[str, str]) -> str:
    names = ", ".join(sorted(forgotten))
    by = ", ".join(forgotten[n] for n in sorted(forgotten))
    return f"run {run_id} wrote to {names}, whose state crmsync forgot since (run {by})"
