"""One reconcile run up to the plan: pull -> load -> match -> diff -> plan.

Writes nothing to any CRM: applying a plan is sync/apply.py's job (a dry run simply stops here).
It does persist what it learned in the state store — new links and the values all systems
agree on (the diff's base) — because both are facts about the CRMs, not intentions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from config import Config
from connectors.base import Connector, lookup_lag
from mapping import MappingContext, deal_from_json
from mapping.model import Deal, Ref
from sync.create_accounts import account_filings, as_planned, with_accounts
from sync.dead_letters import copies_tried
from sync.diff import LEFT_OUT, LEFT_OUT_WHY, PICKED, DiffResult, Pick, diff
from sync.incremental import Scope, choose_scope, key_digests, load_changed, unsettled
from sync.known_writes import with_known_writes
from sync.link_review import EXPLICIT, apart, split_entity_ids
from sync.locks import Budget
from sync.match import MatchConfig, MatchResult, match, paused_gc, ref_order
from sync.moves import moves_for
from sync.plan import Plan, build_plan, decode_held, decode_value, encode_value
from sync.policy import DIFF_FIELDS, Policy
from sync.pull import Progress, PullReport, failure_of, pull
from sync.schema import one_snapshot
from sync.stale_letters import compared_failures, stale_failures
from sync.store import Store
from sync.store_records import ROLLBACK_PLAN_PREFIX, Link, LinkMethod
from sync.stored_owners import base_owners, deals_owners
from sync.undone_deletions import undone_deletions
from sync.writes import (
    BATCH_SIZES,
    can_express_for,
    creatable,
    stage_tied_fields,
    with_kept_currencies,
    with_stage_landings,
)

__all__ = [
    "BATCH_SIZES",
    "Phase",
    "ReconcileResult",
    "analyze",
    "load_deals",
    "plan_run",
    "policies_from_config",
]

# What an analysis does now and over how many deals (a progress bar on a terminal); None: over.
Phase = Callable[[str | None, int], None]


@dataclass
class ReconcileResult:
    plan: Plan
    matched: MatchResult
    diffed: DiffResult
    pulls: dict[str, PullReport]
    contexts: dict[str, MappingContext]
    deals: dict[Ref, Deal]
    by_instance: dict[str, list[Deal]]  # the deals loaded (all of them unless incremental)
    scope: Scope = field(default_factory=lambda: Scope(False, "full"))
    entities_diffed: int = 0  # entities the diff looked at (the rest were settled)
    # Every record the CRMs hold that cannot be mapped now, not only those this pull read.
    mapping_errors: list[dict[str, str]] = field(default_factory=list)
    # entity -> the values its copies last agreed on, as the diff read them (of the entities
    # analysed: every one unless incremental)
    bases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # failures (dead or retried) whose write the plan no longer holds, forgotten by this
    # analysis (sync/stale_letters.py)
    letters_settled: int = 0


def policies_from_config(config: Config) -> dict[str, Policy]:
    return {field: config.policy_for(field) for field in DIFF_FIELDS}


def load_deals(store: Store, instances: list[str]) -> dict[str, list[Deal]]:
    """Every stored deal of the instances, deleted ones included (they keep their links)."""
    with paused_gc():
        return {
            instance: [deal_from_json(p) for p in store.iter_deals(instance, include_deleted=True)]
            for instance in instances
        }


_MARKS = (LEFT_OUT, PICKED)  # a base's keys of marks, {diff field: {ref: value}}, not fields
# Every key of marks: LEFT_OUT_WHY's hold instance names, not values of their field.
_ALL_MARKS = (*_MARKS, LEFT_OUT_WHY)


def base_to_json(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {f: encode_value(value) for f, value in values.items() if f not in _ALL_MARKS}
    for key in _ALL_MARKS:
        encode = _why_to_json if key == LEFT_OUT_WHY else _mark_to_json
        marks = {
            field: [encode(ref, value) for ref, value in sorted(held.items())]
            for field, held in values.get(key, {}).items()
            if held
        }
        if marks:
            out[key] = marks
    return out


def _why_to_json(ref: Ref, changed_in: tuple[str, ...]) -> list[Any]:
    return [ref.system, ref.id, list(changed_in)]


def _why_from_json(field: str, mark: Sequence[Any]) -> tuple[Ref, tuple[str, ...]]:
    if not (isinstance(mark, list) and len(mark) == 3 and isinstance(mark[2], list)):
        raise ValueError(f"{field}: a left-out mark's why is [system, id, [instance, ...]]")
    system, deal_id, changed_in = mark
    return Ref(system, deal_id), tuple(str(name) for name in changed_in)


def _mark_to_json(ref: Ref, value: Any) -> list[Any]:
    if value is Pick.NOT_SEEN:
        return [ref.system, ref.id]
    return [ref.system, ref.id, encode_value(value)]


def base_from_json(values: Mapping[str, Any], entity: str | None = None) -> dict[str, Any]:
    """The decoded base; ValueError naming its `entity` when it does not decode."""
    where = f"the stored base of entity {entity}" if entity else "a stored base"
    try:
        out = {f: decode_value(f, v, money=True) for f, v in values.items() if f not in _ALL_MARKS}
        for key in _ALL_MARKS:
            decode = _why_from_json if key == LEFT_OUT_WHY else _mark_from_json
            if marks := values.get(key):
                out[key] = {
                    field: dict(decode(field, mark) for mark in held)
                    for field, held in marks.items()
                }
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{where} is unreadable ({exc})") from None
    return out


def _mark_from_json(field: str, mark: Sequence[Any]) -> tuple[Ref, Any]:
    if not isinstance(mark, list) or len(mark) not in (2, 3):
        raise ValueError(f"{field}: a mark is [system, id] or [system, id, value]")
    system, deal_id, *value = mark
    held = decode_held(field, value[0]) if value else Pick.NOT_SEEN
    return Ref(system, deal_id), held


def plan_run(
    config: Config,
    store: Store,
    connectors: Mapping[str, Connector],
    *,
    run_id: str,
    full: bool = False,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    pull_wait: Budget | None = None,
    phase: Phase | None = None,
) -> ReconcileResult:
    """Pull every instance (waiting for another process's pull of one of them up to what is
    left of `pull_wait`, see :func:`sync.pull.pull`), then plan from the refreshed store."""
    pulls = pull(config, store, connectors, full=full, run_id=run_id, progress=progress,
                 wait=pull_wait)  # fmt: skip
    if (failure := failure_of(pulls)) is not None:
        raise failure
    contexts = {name: p.context for name, p in pulls.items() if p.context is not None}
    full = full or any(p.full for p in pulls.values())
    # A record written by the last apply that this pull did not read again (not in HubSpot's
    # search yet) would show its values from before the write, taken for a person's edit; a
    # copy it created, for one missing. A copy older than its CRM's lookup lag that the pull
    # did not find is gone.
    at = now()
    unread_since = {name: at - lookup_lag(c) for name, c in connectors.items()}
    result = analyze(
        config,
        store,
        run_id=run_id,
        contexts=contexts,
        now=now,
        full=full,
        phase=phase,
        known_writes=True,
        unread_since=unread_since,
    )
    result.pulls = pulls
    result.mapping_errors = store.mapping_errors(list(config.systems))
    result.plan = _with_mapping_errors(result.plan, result.mapping_errors)
    return result


def analyze(
    config: Config,
    store: Store,
    *,
    run_id: str,
    contexts: Mapping[str, MappingContext] | None = None,
    remember: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    full: bool = False,
    phase: Phase | None = None,
    known_writes: bool = False,
    unread_since: Mapping[str, datetime] | None = None,
) -> ReconcileResult:
    """Match, diff and plan over the stored snapshot (no CRM calls).

    Without `contexts` (the report), targets' ability to hold a value is not checked, and
    nothing is written to the store unless `remember`. A remembering analysis after an
    incremental pull looks only at changed deals and unsettled entities (sync/incremental.py);
    `full` (a full pull) makes it look at everything. `known_writes`: the deals as crmsync last
    knows them, with the writes it made since their snapshots (sync/known_writes.py); the
    report may run between an apply and the next pull, and a pull may not read again a record
    crmsync wrote (HubSpot's search lags its writes). `unread_since`: see `with_known_writes`.
    """
    # Every step allocates per deal (loading, links, bases, dangling links); with hundreds of
    # thousands of deals alive, each cyclic collection rescans them all, for no cycles.
    show = phase or _quiet
    try:
        # One state of the store however long the reading takes: a pull (which takes no
        # reconcile lock), or for the report an apply, may write meanwhile.
        with paused_gc(), one_snapshot(store.engine):
            return _analyze(
                config,
                store,
                run_id,
                contexts,
                remember,
                now,
                full,
                show,
                known_writes,
                unread_since,
            )
    finally:
        show(None, 0)


def _quiet(step: str | None, deals: int) -> None:
    """No progress to show (no terminal)."""


def _analyze(
    config: Config,
    store: Store,
    run_id: str,
    contexts: Mapping[str, MappingContext] | None,
    remember: bool,
    now: Callable[[], datetime],
    full: bool,
    phase: Phase,
    known_writes: bool = False,
    unread_since: Mapping[str, datetime] | None = None,
) -> ReconcileResult:
    fingerprint = config.fingerprint()
    epoch = store.reconcile_epoch()  # before anything is read: see Store.reconcile_state
    scope = choose_scope(
        store.reconcile_state(), fingerprint=fingerprint, remember=remember, full=full
    )
    flagged = store.pending() if remember else {}
    stored = {Ref(i, d): e for (i, d), e in store.links().items()}
    changed: frozenset[Ref] | None = None
    untouched = letters_settled = 0
    phase("loading deals", 0)
    if scope.incremental:
        loaded = load_changed(
            store,
            config.systems,
            (Ref(i, d) for i, d in flagged),
            stored,
            keys=config.matching.keys,
        )
        by_instance, changed, untouched = loaded.by_instance, loaded.changed, loaded.untouched
    else:
        by_instance = load_deals(store, list(config.systems))
    if known_writes:
        written = {name: config.stages_written(name) for name in config.systems}
        funnels = {name: dict(config.system(name).pipeline_funnels) for name in config.systems}
        by_instance = with_known_writes(store, by_instance, written, unread_since, funnels)
    # Stored values meet freshly mapped ones here: read through the aliases (sync/stored_owners)
    aliases = config.owner_aliases
    by_instance = deals_owners(by_instance, aliases)
    deals = {d.ref: d for group in by_instance.values() for d in group}
    phase("matching", len(deals))
    matched = match(
        by_instance,
        stored,
        _match_config(config),
        changed=changed,
        apart=apart(store),  # people's corrections (sync/link_review.py)
        retired=split_entity_ids(store),
    )
    entity_ids = None if changed is None else list(matched.entities)
    bases = {
        e: base_owners(base_from_json(v, e), aliases) for e, v in store.bases(entity_ids).items()
    }
    named = dangling_links(by_instance, matched.entity_of(), changed)
    # A record the CRM still holds but that cannot be mapped (listed in the plan's errors) is
    # not deleted: only its copies are held back from being created again.
    unreadable = {Ref(g["system"], g["id"]) for g in store.mapping_errors(list(config.systems))}
    vanished = [d for d in named if _gone(d) not in unreadable]
    named_live = {Ref(r["system"], r["id"]) for d in named for r in d["live"]}
    targets = [t for t in config.push_targets if contexts is None or t in contexts]
    hold = _held(matched) | named_live  # creates held back (reported, never guessed)
    phase("diffing", len(deals))
    diffed = diff(
        matched.entities,
        deals,
        bases,
        policies_from_config(config),
        targets,
        can_express_for(contexts, deals) if contexts is not None else None,
        funnels=config.funnels,
        propagate_deletes=config.push.propagate_deletes,
        create_in=targets if config.push.create_missing else (),
        create_from=config.push.create_from,
        # a deal someone deleted is reported (`vanished`), not created again
        hold=hold,
        changed=changed,
        with_stage=stage_tied_fields(contexts) if contexts is not None else {},
        move=(
            moves_for(contexts, deals)
            if contexts is not None and config.push.move_between_pipelines
            else None
        ),
    )
    if contexts is not None and diffed.creates:
        diffed = creatable(diffed, deals, contexts)
    phase("planning", len(deals))
    plan = build_plan(
        matched,
        diffed,
        deals,
        run_id=run_id,
        created_at=now(),
        config_fingerprint=fingerprint,
        batch_sizes={n: BATCH_SIZES.get(config.system(n).kind, 1) for n in config.systems},
        hold=unconfirmed(store, matched, diffed) if config.push.confirmed_only else None,
    )
    if contexts is not None:
        plan = with_kept_currencies(plan, deals, contexts)
        plan = with_stage_landings(plan, deals, contexts)
    filings = account_filings(config)
    plan = with_accounts(plan, matched.entities, deals, filings)
    plan = _with_dangling_links(plan, vanished)
    if any(d["propagate"] for d in plan.deleted):
        plan = _not_our_deletes(plan, store.journal.deletes_in_doubt())
    # Entries that already give a reason (dangling links, deletes held in doubt) are no
    # deletion crmsync spread: their deals are not read.
    members = [
        (r["system"], r["id"])
        for d in plan.deleted
        if "reason" not in d
        for r in (*d["deleted"], *d["live"])
    ]
    if members:
        plan = undone_deletions(
            plan, store.audit.deletes_of(members), store.deletion_marks(members)
        )
    if untouched:
        # Settled entities left unloaded are still entities the systems share.
        summary = dict(plan.summary)
        summary["entities"] += untouched
        summary["matched"] += untouched
        plan = dataclasses.replace(plan, summary=summary)
    if remember:
        phase("saving links and bases", len(deals))
        store.checkpoint()  # the reconcile lock still holds: no other analysis writes
        _remember(store, matched, diffed, bases)
        store.save_match_keys(
            key_digests(deals, config.matching.keys, matched), replace=not scope.incremental
        )
        dangling = {Ref(r["system"], r["id"]) for d in plan.deleted for r in d["live"]}
        open_refs = unsettled(
            matched,
            diffed,
            deals,
            len(config.systems),
            also=dangling | named_live,
            examined=changed,
        )
        # The CRMs' agreement is a fact like a base: a failure whose write this plan no longer
        # holds goes with the flags of the entities it compared (one transaction).
        compared = config.systems if contexts is None else contexts
        letters = compared_failures(store.failures.records(), matched.entities, changed, compared)
        # The journal is read for those alone (the last value or copy each refused)
        tried = store.failures.last_tried([f for f in letters if f.field]) if letters else {}
        copies = copies_tried(store, letters)
        planned = as_planned(matched.entities, deals, filings)  # accounts named
        stale = stale_failures(letters, matched.entities, diffed, hold, tried, copies, planned)
        letters_settled = store.settle_pending(
            flagged,
            sorted((r.system, r.id) for r in open_refs),
            {"config_fingerprint": fingerprint, "run_id": run_id, "epoch": epoch},
            stale,
        )
    examined = sum(
        1
        for members in matched.entities.values()
        if changed is None or not changed.isdisjoint(members.values())
    )
    return ReconcileResult(
        plan,
        matched,
        diffed,
        {},
        dict(contexts or {}),
        deals,
        by_instance,
        scope,
        examined,
        bases=bases,
        letters_settled=letters_settled,
    )


def unconfirmed(
    store: Store, matched: MatchResult, diffed: DiffResult
) -> dict[str, list[dict[str, str]]]:
    """Entity -> its links nobody vouches for, for the matched entities the diff would write
    to (push.confirmed_only). Links this run makes are confirmed by explicit evidence only;
    stored ones as recorded (`crmsync links confirm`). A lone deal's create is never held: it
    rests on no match."""
    writing = {c.entity for c in diffed.changes} | {c.entity for c in diffed.creates}
    writing |= {d.entity for d in diffed.deleted if d.propagate}
    writing = {e for e in writing if len(matched.entities.get(e, {})) > 1}
    if not writing:
        return {}
    stored = {(r.instance, r.deal_id): r for r in store.link_records(sorted(writing))}
    methods = matched.methods
    held: dict[str, list[dict[str, str]]] = {}
    for entity in sorted(writing):
        links = []
        for ref in sorted(matched.entities[entity].values(), key=ref_order):
            record = stored.get((ref.system, ref.id))
            if ref in methods:  # linked by this run
                method, confirmed = methods[ref], methods[ref] in EXPLICIT
            elif record is not None:
                method, confirmed = record.method, record.confirmed
            else:
                method, confirmed = LinkMethod.STORED, False
            if not confirmed:
                links.append({"system": ref.system, "id": ref.id, "method": str(method)})
        if links:
            held[entity] = links
    return held


def _match_config(config: Config) -> MatchConfig:
    fuzzy = config.matching.fuzzy
    return MatchConfig(
        keys=tuple(config.matching.keys),
        fuzzy_enabled=fuzzy.enabled,
        fuzzy_threshold=float(fuzzy.threshold),
    )


def _held(matched: MatchResult) -> set[Ref]:
    held: set[Ref] = set()
    for item in matched.ambiguous:
        held.add(item.ref)
        held.update(item.candidates)
    for dup in matched.duplicates:
        held.update(Ref(dup.instance, i) for i in dup.ids)
    return held


def _remember(
    store: Store,
    matched: MatchResult,
    diffed: DiffResult,
    bases: Mapping[str, Mapping[str, Any]],
) -> None:
    methods = matched.methods
    links = [
        Link(entity, ref.system, ref.id, methods[ref], confirmed=methods[ref] in EXPLICIT)
        for ref, entity in matched.new_links.items()
    ]
    if links or diffed.agreed:
        store.save_links_and_bases(links, _merged_bases(diffed.agreed, bases))


def _merged_bases(
    agreed: Mapping[str, Mapping[str, Any]], bases: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Agreed values over the bases the diff read, as JSON to store. An entity whose members
    agree on one field while differing on another agrees on that field only: saved alone, it
    would drop the others' bases, and a later one-sided change there would be decided as on a
    first sync."""
    return {e: base_to_json(rebased(bases.get(e, {}), v)) for e, v in agreed.items()}


def rebased(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` over a (decoded) base. A field taking a new agreed value has no marked member
    any more (see `sync.base_marks.left_out` and `picked`): its marks go, unless `values` marks some
    anew (under its own LEFT_OUT or PICKED key, where no member marks a field's marks away)."""
    out = {f: v for f, v in base.items() if f not in _ALL_MARKS}
    out |= {f: v for f, v in values.items() if f not in _ALL_MARKS}
    for key in _ALL_MARKS:
        fresh = values.get(key, {})
        marks = {f: held for f, held in base.get(key, {}).items() if f not in values} | fresh
        if marks := {f: held for f, held in marks.items() if held}:
            out[key] = marks
    return out


def dangling_links(
    by_instance: Mapping[str, list[Deal]],
    entity_of: Mapping[Ref, str],
    among: Collection[Ref] | None = None,
) -> list[dict[str, Any]]:
    """Live deals whose external id names a deal the other instance does not have live.

    A deal deleted in one CRM before crmsync ever saw it leaves exactly this trace in the
    others: their link field still names it. Reported as deleted-in-one-live-in-another.
    `among`: only these deals' link fields are checked (an incremental run loads the deals
    they name, not those named by the other deals it loads).
    """
    live = {
        (instance, d.id)
        for instance, deals in by_instance.items()
        for d in deals
        if not d.extra.get("deleted")
    }
    missing: dict[Ref, list[Ref]] = {}
    for deals in by_instance.values():
        for deal in deals:
            if deal.extra.get("deleted") or (among is not None and deal.ref not in among):
                continue
            for other, other_id in sorted(deal.external_ids.items()):
                if other in by_instance and other_id and (other, other_id) not in live:
                    missing.setdefault(Ref(other, other_id), []).append(deal.ref)
    return [
        {
            "entity": entity_of.get(refs[0], ""),
            "deleted": [{"system": gone.system, "id": gone.id}],
            "live": [{"system": r.system, "id": r.id} for r in sorted(refs, key=ref_order)],
            "propagate": False,
            "reason": f"linked {gone.system} deal {gone.id} is deleted there (or not visible)",
        }
        for gone, refs in sorted(missing.items(), key=lambda item: ref_order(item[0]))
    ]


def _gone(dangling: Mapping[str, Any]) -> Ref:
    gone = dangling["deleted"][0]
    return Ref(gone["system"], gone["id"])


def _with_dangling_links(plan: Plan, dangling: list[dict[str, Any]]) -> Plan:
    # Every deleted deal the plan lists, not each entry's first: an entity deleted in two CRMs
    # (its copies crmsync deleted, once the deal they followed is restored) names both.
    known = {(g["system"], g["id"]) for d in plan.deleted for g in d["deleted"]}
    extra = [
        item
        for item in dangling
        if (item["deleted"][0]["system"], item["deleted"][0]["id"]) not in known
    ]
    if not extra:
        return plan
    summary = {**plan.summary, "deleted": len(plan.deleted) + len(extra)}
    return dataclasses.replace(plan, deleted=(*plan.deleted, *extra), summary=summary)


def _not_our_deletes(plan: Plan, ours: Mapping[tuple[str, str], str]) -> Plan:
    """An entity whose deleted deals crmsync deleted itself, by a call that failed part-way (a
    rollback deleting the copies its run created, say), lost no deal to a person: nothing is
    propagated for it. `ours`: (instance, deal id) -> the plan whose delete is in doubt."""
    if not ours:
        return plan
    deleted = []
    for item in plan.deleted:
        plans = {ours.get((g["system"], g["id"])) for g in item["deleted"]}
        if item["propagate"] and plans and None not in plans:
            again = ", ".join(
                f"`crmsync rollback {p.removeprefix(ROLLBACK_PLAN_PREFIX)} --apply`"
                if p.startswith(ROLLBACK_PLAN_PREFIX)
                else f"plan {p}"
                for p in sorted(str(p) for p in plans)
            )
            why = (
                "deleted by crmsync itself, not yet confirmed; not propagated: the next "
                f"reconcile that applies checks it, or run {again} again"
            )
            item = {**item, "propagate": False, "reason": why}
        deleted.append(item)
    return dataclasses.replace(plan, deleted=tuple(deleted))


def _with_mapping_errors(plan: Plan, gaps: Sequence[Mapping[str, str]]) -> Plan:
    """Records that cannot be mapped belong in the plan's `errors`, beside the diff's."""
    extra = tuple(dict(error) for error in gaps)
    if not extra:
        return plan
    errors = tuple(plan.errors) + extra
    summary = {**plan.summary, "errors": len(errors)}
    return dataclasses.replace(plan, errors=errors, summary=summary)
