"""Data quality, cross-system consistency and threshold checks of a health report. Pure."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import combinations
from typing import Any

from mapping.model import Deal, Ref
from sync.create_accounts import account_of
from sync.diff_result import Mismatch
from sync.health_model import (
    Consolidated,
    CrossSystem,
    DataQuality,
    DeletedRow,
    FieldCompleteness,
    InstanceQuality,
    MismatchRow,
    PairMatch,
    SyncInfo,
    ThresholdResult,
)
from sync.kpis import ratio
from sync.match import is_archived
from sync.plan import encode_value
from sync.record_links import record_url
from sync.stage_names import StageNames, stage_key, stage_name

__all__ = [
    "THRESHOLDS",
    "UnknownThreshold",
    "copies_without_account",
    "cross_system",
    "data_quality",
    "evaluate_thresholds",
]

COMPLETENESS_FIELDS = ("amount", "close_date", "owner_email")


class UnknownThreshold(ValueError):
    """A configured threshold name the report does not compute."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown report threshold {name!r}: use one of {', '.join(sorted(THRESHOLDS))}"
        )


def _filled(deal: Deal, field: str) -> bool:
    value = {"amount": deal.value, "close_date": deal.close_date, "owner_email": deal.owner_email}
    return value[field] not in (None, "")


def copies_without_account(
    notes: Sequence[Mapping[str, Any]], deals: Mapping[str, Sequence[Deal]]
) -> tuple[Mapping[str, Any], ...]:
    """The copies the applies' account `notes` (newest first) name that still have no account
    as last pulled: one attached since drops off; a deleted copy (not in `deals`) too."""
    bare = {d.ref for own in deals.values() for d in own if account_of(d) is None}
    kept: dict[Ref, Mapping[str, Any]] = {}
    for note in notes:
        ref = Ref(str(note.get("system")), str(note.get("id")))
        if ref in bare:
            kept.setdefault(ref, dict(note))
    return tuple(kept[ref] for ref in sorted(kept, key=lambda r: (r.system, r.id)))


def data_quality(
    deals: Mapping[str, Sequence[Deal]],
    mapping_errors: Sequence[Mapping[str, str]],
    plan: Mapping[str, Any] | None,
    without_account: Sequence[Mapping[str, Any]] = (),
    names: StageNames | None = None,
) -> DataQuality:
    """Field completeness, unmapped stages (of the deals the report covers: with --since, those
    in the window; keyed by their ids, named as their CRM shows them by `names`), mapping
    errors, in-system duplicates and the copies created without an account
    (`copies_without_account`)."""
    duplicates = tuple(dict(d) for d in (plan or {}).get("duplicates", ()))
    errors_by = Counter(str(e.get("system")) for e in mapping_errors)
    duplicates_by = Counter(str(d.get("system")) for d in duplicates)
    instances = sorted(set(deals) | set(errors_by) | set(duplicates_by))
    quality = {}
    for instance in instances:
        own = deals.get(instance, ())
        unmapped: Counter[str] = Counter()
        named: dict[str, str] = {}
        for deal in own:
            if deal.stage is None:
                key = stage_key(deal.pipeline, deal.native_stage)
                unmapped[key] += 1
                named[key] = stage_name(names or {}, instance, deal.pipeline, deal.native_stage)
        completeness = tuple(
            FieldCompleteness(
                field=f,
                filled=(filled := sum(_filled(d, f) for d in own)),
                total=len(own),
                share=ratio(filled, len(own)),
            )
            for f in COMPLETENESS_FIELDS
        )
        quality[instance] = InstanceQuality(
            instance=instance,
            deals=len(own),
            completeness=completeness,
            unmapped_stages=dict(sorted(unmapped.items())),
            mapping_errors=errors_by[instance],
            duplicates=duplicates_by[instance],
            unmapped_stage_names=dict(sorted(named.items())),
        )
    return DataQuality(
        instances=quality,
        mapping_errors=tuple(dict(e) for e in mapping_errors),
        duplicates=duplicates,
        copies_without_account=tuple(without_account),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _ref(item: Mapping[str, Any]) -> Ref:
    return Ref(str(item.get("system")), str(item.get("id")))


def _funnel_spans(
    entities: Sequence[Mapping[str, Ref]], funnel_of: Mapping[Ref, str]
) -> dict[Ref, str]:
    """Each copy of a matched deal whose live copies follow different funnels -> the funnel of
    each copy ("hubspot: default, pipedrive: renewal")."""
    spans: dict[Ref, str] = {}
    for group in entities:
        funnels = {ref: funnel_of[ref] for ref in group.values() if ref in funnel_of}
        if len(set(funnels.values())) > 1:
            named = ", ".join(f"{r.system}: {funnels[r]}" for r in sorted(funnels))
            spans.update(dict.fromkeys(group.values(), named))
    return spans


def _across_funnels(reason: str, field: object, ref: Ref, spans: Mapping[Ref, str]) -> str:
    """A stage row's reason, saying where the deal's copies follow different funnels: a stage
    key of one funnel is none of the other's, so no policy can make those copies agree."""
    named = spans.get(ref)
    if field != "stage" or named is None:
        return reason
    return (
        f"{reason}; the copies follow different funnels ({named}): their CRMs file the deal "
        "under different product lines (pipeline_funnels, push.move_between_pipelines)"
    )


def cross_system(
    deals: Mapping[str, Sequence[Deal]],
    entities: Sequence[Mapping[str, Ref]],
    entity_of: Mapping[Ref, str],
    plan: Mapping[str, Any] | None,
    sync_status: Mapping[str, Mapping[str, Any]],
    dead_letters: Sequence[Mapping[str, Any]],
    instance_urls: Mapping[str, tuple[str, str]],
    now: datetime,
    *,
    window: bool = False,
    live: Collection[Ref] = (),
    archived_open: Collection[Ref] = (),
    mismatched: Sequence[Mismatch] = (),
    funnel_of: Mapping[Ref, str] | None = None,
) -> CrossSystem:
    """Matching per instance pair, mismatches per field (counted per entity), conflicts,
    deletions seen in one system only, dead letters and sync freshness.

    A matched deal mismatches on a field where its copies disagree on it, whether or not the
    plan writes the difference (`mismatched`, from the plan's diff): the plan's changes and
    conflicts are rows, and so is each copy no change is planned into (kind `kept`, its reason
    saying why: a read-only instance, a `never` policy, ...).

    `window` (--since): `deals` are those in the window, and the mismatches and the pairs count
    only the matched deals in it, each when any of its copies is (as the consolidated figures
    do), with its `live` copies outside the window (`live`: every live deal's ref).
    `archived_open`: open deals archived in Pipedrive, in none of `deals`; in the pairs, a
    matched one counts as matched (its CRM holds it), and never as one-sided.
    `funnel_of`: each live copy's funnel; a stage row of a deal whose copies follow different
    funnels says so (`_across_funnels`)."""
    plan = plan or {}
    spans = _funnel_spans(entities, funnel_of or {})
    present = {instance: {d.ref for d in own} for instance, own in deals.items()}
    covered = {ref for refs in present.values() for ref in refs}
    in_window: set[Ref] | None = None
    if window:
        entities = [group for group in entities if not covered.isdisjoint(group.values())]
        in_window = covered | {ref for group in entities for ref in group.values()}

    def url(system: str, record_id: str) -> str | None:
        kind, base = instance_urls.get(system, ("", ""))
        return record_url(kind, base, record_id) if base else None

    def entity(ref: Ref) -> str:
        return entity_of.get(ref, str(ref))

    rows: list[MismatchRow] = []
    for change in plan.get("changes", ()):
        ref = _ref(change)
        if in_window is not None and ref not in in_window:
            continue
        rows.append(
            MismatchRow(
                entity=entity(ref),
                kind="change",
                field=str(change.get("field")),
                system=ref.system,
                id=ref.id,
                value_from=_text(change.get("from")),
                value_to=_text(change.get("to")),
                reason=_across_funnels(
                    str(change.get("reason", "")), change.get("field"), ref, spans
                ),
                url=url(ref.system, ref.id),
            )
        )
    conflicts = [
        c
        for c in plan.get("conflicts", ())
        if in_window is None or not in_window.isdisjoint(map(_ref, c.get("values", ())))
    ]
    for conflict in conflicts:
        for value in conflict.get("values", ()):
            ref = _ref(value)
            if in_window is not None and ref not in in_window:  # an instance --system leaves out
                continue
            rows.append(
                MismatchRow(
                    entity=entity(ref),
                    kind="conflict",
                    field=str(conflict.get("field")),
                    system=ref.system,
                    id=ref.id,
                    value_from=None,
                    value_to=_text(value.get("value")),
                    reason=_across_funnels(
                        str(conflict.get("reason", "")), conflict.get("field"), ref, spans
                    ),
                    url=url(ref.system, ref.id),
                )
            )
    fields: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        fields[row.field].add(row.entity)
    for mismatch in mismatched:
        if in_window is not None and in_window.isdisjoint(mismatch.refs):
            continue
        label = entity(mismatch.refs[0])
        fields[mismatch.field].add(label)
        rows.extend(
            MismatchRow(
                entity=label,
                kind="kept",
                field=mismatch.field,
                system=kept.ref.system,
                id=kept.ref.id,
                value_from=_text(encode_value(kept.value)),
                value_to=_text(encode_value(kept.to)),
                reason=_across_funnels(kept.reason, mismatch.field, kept.ref, spans),
                url=url(kept.ref.system, kept.ref.id),
            )
            for kept in mismatch.unwritten
        )
    # The plan lists, per entity, every deleted copy; the report shows one row per copy.
    deleted = tuple(
        DeletedRow(
            entity=str(item.get("entity")),
            deleted_system=str(gone.get("system")),
            deleted_id=str(gone.get("id")),
            live=tuple(_ref(live) for live in item.get("live", ())),
        )
        for item in plan.get("deleted", ())
        for gone in item.get("deleted", ())
    )
    letters = tuple(dict(d) for d in dead_letters)
    return CrossSystem(
        plan_available=bool(plan),
        entities=len(entities),
        pairs=_pairs(
            present, entities, {*live, *archived_open}, _archived(deals) | set(archived_open)
        ),
        # Only deals the report covers: with --since, the plan still lists every unmatched deal.
        unmatched_by_system=_count_by_system(
            u for u in plan.get("unmatched", ()) if _ref(u) in covered
        ),
        ambiguous=len(plan.get("ambiguous", ())),
        mismatched_entities=len(set().union(*fields.values())),
        mismatches_by_field={f: len(fields[f]) for f in sorted(fields)},
        mismatches=tuple(rows),
        conflicts=len(conflicts),
        deleted=deleted,
        dead_letters=letters,
        dead_letters_by_system=_count_by_system(letters),
        plan_errors=len(plan.get("errors", ())),
        sync=tuple(_sync_info(i, sync_status[i], now) for i in sorted(sync_status)),
    )


def _count_by_system(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(str(item.get("system")) for item in items)
    return dict(sorted(counts.items()))


def _archived(deals: Mapping[str, Sequence[Deal]]) -> set[Ref]:
    return {d.ref for own in deals.values() for d in own if is_archived(d)}


def _pairs(
    present: Mapping[str, set[Ref]],
    entities: Sequence[Mapping[str, Ref]],
    live: set[Ref],
    archived: set[Ref],
) -> tuple[PairMatch, ...]:
    """For each pair of instances: entities holding a live deal in both, and deals of either
    side matched with nothing on the other. An instance's side: its deals in the report, and
    the live copies it holds of the matched deals in it (`entities`), so with --since a matched
    deal counts as matched when any of its copies is in the window. An `archived` deal counts
    only when matched: crmsync never copies one that has no live copy, nor lists it unmatched."""
    sides = {
        instance: refs | {r for group in entities if (r := group.get(instance)) in live}
        for instance, refs in present.items()
    }
    pairs = []
    for a, b in combinations(sorted(sides), 2):
        matched_a: set[Ref] = set()
        matched_b: set[Ref] = set()
        for group in entities:
            ref_a, ref_b = group.get(a), group.get(b)
            if ref_a in sides[a] and ref_b in sides[b]:
                matched_a.add(ref_a)
                matched_b.add(ref_b)
        pairs.append(
            PairMatch(
                a=a,
                b=b,
                matched=len(matched_a),
                only_a=len(sides[a] - matched_a - archived),
                only_b=len(sides[b] - matched_b - archived),
            )
        )
    return tuple(pairs)


def _sync_info(instance: str, status: Mapping[str, Any], now: datetime) -> SyncInfo:
    last = status.get("last_success")
    age = None
    if isinstance(last, datetime):
        age = (Decimal(int((now - last).total_seconds())) / Decimal(3600)).quantize(Decimal("0.1"))
    return SyncInfo(
        instance=instance,
        last_success=last if isinstance(last, datetime) else None,
        age_hours=age,
        api_calls=int(status.get("api_calls", 0) or 0),
    )


# name -> what it measures; a `min_` name is a floor (breached below), any other a ceiling.
_Metric = Callable[[Consolidated, DataQuality, CrossSystem, int], Decimal | None]


def _min_completeness(q: DataQuality) -> Decimal | None:
    shares = [f.share for i in q.instances.values() for f in i.completeness if f.share is not None]
    return min(shares, default=None)


def _max_sync_age(x: CrossSystem) -> Decimal | None:
    if any(s.last_success is None for s in x.sync):
        return Decimal("Infinity")  # an instance that never synced is older than any limit
    ages = [s.age_hours for s in x.sync if s.age_hours is not None]
    return max(ages, default=None)


def _unmatched_share(x: CrossSystem, deals: int) -> Decimal | None:
    return ratio(sum(x.unmatched_by_system.values()), deals) if x.plan_available else None


THRESHOLDS: dict[str, _Metric] = {
    "mismatch_rate": lambda c, q, x, n: (
        ratio(x.mismatched_entities, x.entities) if x.plan_available else None
    ),
    "stale_share": lambda c, q, x, n: ratio(c.stale, c.open),
    "past_due_share": lambda c, q, x, n: ratio(c.past_due, c.open),
    "unmatched_share": lambda c, q, x, n: _unmatched_share(x, n),
    "min_completeness": lambda c, q, x, n: _min_completeness(q),
    "min_win_rate": lambda c, q, x, n: c.win_rate.rate,
    "max_conflicts": lambda c, q, x, n: Decimal(x.conflicts) if x.plan_available else None,
    "max_dead_letters": lambda c, q, x, n: Decimal(len(x.dead_letters)),
    "max_mapping_errors": lambda c, q, x, n: Decimal(len(q.mapping_errors)),
    "max_sync_age_hours": lambda c, q, x, n: _max_sync_age(x),
}


def evaluate_thresholds(
    thresholds: Mapping[str, Decimal],
    consolidated: Consolidated,
    quality: DataQuality,
    cross: CrossSystem,
    all_deals: int,
) -> tuple[ThresholdResult, ...]:
    """Every configured threshold with its value; breached ones first, then by name."""
    results = []
    for name in sorted(thresholds):
        if name not in THRESHOLDS:
            raise UnknownThreshold(name)
        limit = Decimal(thresholds[name])
        value = THRESHOLDS[name](consolidated, quality, cross, all_deals)
        floor = name.startswith("min_")
        breached = value is not None and (value < limit if floor else value > limit)
        results.append(
            ThresholdResult(
                name=name,
                value=value,
                limit=limit,
                comparison=">=" if floor else "<=",
                breached=breached,
            )
        )
    return tuple(sorted(results, key=lambda r: not r.breached))
