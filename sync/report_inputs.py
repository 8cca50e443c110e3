"""Gather what the health report needs from the state store and the config (no CRM calls)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from config import Config
from mapping.model import Deal, DealStatus, Ref
from sync.consolidate import COUNTED_FIELDS
from sync.health_model import HealthInputs, ReportFilters
from sync.match import is_archived, is_deleted
from sync.plan_json import plan_to_json
from sync.reconcile import ReconcileResult
from sync.store import RunRecord, Store

__all__ = ["account_notes", "health_inputs", "last_syncs"]

# A report run pulled (and so synced) only with --refresh: only then does it hold calls.
_SYNC_KINDS = ("reconcile", "reconcile-dry-run", "pull", "report")


_NEVER = datetime.min.replace(tzinfo=UTC)
# The runs that create copies, and how many of each kind the report reads the notes of.
_APPLY_KINDS = ("reconcile", "apply")
_NOTED_RUNS = 200


def account_notes(store: Store) -> list[dict[str, Any]]:
    """The account notes of the last applies (`ApplyReport.account_notes`), newest first, each
    with its run's id (`run`)."""
    runs = [r for kind in _APPLY_KINDS for r in store.runs.recent(_NOTED_RUNS, kind=kind)]
    runs.sort(key=lambda r: r.started_at, reverse=True)
    return [
        {**note, "run": run.id}
        for run in runs
        for note in (run.counts or {}).get("account_notes") or ()
        if isinstance(note, dict)
    ]


def last_syncs(store: Store, instances: list[str]) -> dict[str, RunRecord]:
    """Per instance pulled by one: the last successful run that pulled it."""
    last: dict[str, RunRecord] = {}
    ends: dict[str, datetime] = {}
    # Per kind: a series of plain `report` runs must not push the last sync out of the window.
    for kind in _SYNC_KINDS:
        for run in store.runs.recent(200, kind=kind):
            if run.status.value != "ok" or run.finished_at is None:
                continue
            for instance in instances:
                if instance in run.calls and run.finished_at > ends.get(instance, _NEVER):
                    last[instance], ends[instance] = run, run.finished_at
    return last


def _sync_status(instances: list[str], syncs: Mapping[str, RunRecord]) -> dict[str, dict[str, Any]]:
    """Per instance: the end of the last successful sync and the API calls it used (`syncs`:
    `last_syncs`)."""
    status: dict[str, dict[str, Any]] = {
        i: {"last_success": None, "api_calls": 0} for i in instances
    }
    for instance, run in syncs.items():
        status[instance] = {
            "last_success": run.finished_at,
            "api_calls": sum(run.calls[instance].values()),
        }
    return status


def _reported(deal: Deal) -> bool:
    """Deleted deals are not; nor is an open deal archived in Pipedrive, which its pipeline and
    forecast views leave out as no longer worked on. Archived won and lost deals stay: the
    archive keeps them for the record of what was won and lost."""
    if is_deleted(deal):
        return False
    return not (is_archived(deal) and deal.status is DealStatus.OPEN)


def health_inputs(
    config: Config,
    store: Store,
    result: ReconcileResult,
    *,
    now: datetime,
    since: date | None = None,
    filters: ReportFilters | None = None,
    pulled: Mapping[str, Mapping[str, int]] | None = None,
    syncs: Mapping[str, RunRecord] | None = None,
) -> HealthInputs:
    """`filters`: the report's --funnel/--system/--until (its `since` is `since`).
    `pulled`: instance -> API calls of the pull this very run made (`report --refresh`).
    `syncs`: `last_syncs`, when the caller read them already."""
    report = config.report
    instances = list(config.systems)
    thresholds: Mapping[str, Decimal] = {
        name: value for name, value in report.thresholds.model_dump().items() if value is not None
    }
    urls = {
        name: (s.kind, s.instance_url or s.base_url or "")
        for name, s in config.systems.items()
        if s.instance_url or s.base_url
    }
    dead = [
        {
            "system": f.instance,
            "id": f.deal_id,
            "field": f.field,
            "reason": f.reason,
            "attempts": f.attempts,
        }
        for f in store.failures.records(dead=True)
    ]
    live = {i: [d for d in deals if _reported(d)] for i, deals in result.by_instance.items()}
    matched = {e: m for e, m in result.matched.entities.items() if len(m) > 1}
    bases: dict[Ref, Mapping[str, Any]] = {}
    for entity, members in matched.items():  # the report's analysis is a full one
        base = result.bases.get(entity)
        if base is not None:
            bases.update((ref, base) for ref in members.values())
    return HealthInputs(
        deals=live,
        funnels=config.funnels,
        now=now,
        entities=[dict(members) for members in matched.values()],
        bases=bases,
        plan=plan_to_json(result.plan),
        mismatched=result.diffed.mismatched,
        since=since,
        until=filters.until if filters else None,
        only_funnels=filters.funnels if filters else (),
        only_systems=filters.systems if filters else (),
        stale_days=report.stale_days,
        report_currency=report.currency,
        rates=dict(report.rates),
        thresholds=thresholds,
        sync_status=_sync_status(
            instances, last_syncs(store, instances) if syncs is None else syncs
        )
        | {
            i: {"last_success": now, "api_calls": sum(c.values())}
            for i, c in (pulled or {}).items()
        },
        dead_letters=dead,
        mapping_errors=store.mapping_errors(list(config.systems)),
        account_notes=account_notes(store),
        instance_urls=urls,
        consolidation_order=list(config.systems),
        policies={name: config.policy_for(name) for name in (*COUNTED_FIELDS, "status")},
        timezone=report.timezone,
        stage_maps={name: s.stage_map for name, s in config.systems.items()},
        stage_names={name: store.stage_names(name) for name in instances},
        archived_open=frozenset(
            d.ref
            for deals in result.by_instance.values()
            for d in deals
            if not is_deleted(d) and not _reported(d)  # archived, open
        ),
    )
