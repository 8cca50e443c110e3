"""Apply a plan: the only place crmsync writes field changes to a CRM.

Per target instance, per batch of records: re-read the records, check each change's
precondition (the target still holds the plan's `from` value and was not modified after the
plan read it), journal the batch as intended, send ONE update per record, then mark each change
done or failed with the API's per-record result. Done changes go to the audit log; failed ones
to the dead-letter list (dead after push.max_attempts); drifted ones are reported, never
overwritten.

Resuming is the journal's job: changes an earlier run of the same plan finished are not sent
again; changes left in doubt (intended, process killed) are re-checked by the re-read, so a
write that landed is recognised by the target already holding the planned value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import Connector, NativeUpdate
from connectors.errors import ConnectorError
from mapping import MappingContext
from mapping.model import Deal, MappingError, Ref
from mapping.writes import StageTarget
from sync.apply_bases import BaseKeeper
from sync.apply_creates import apply_creates, not_created, too_recent
from sync.apply_deletes import (
    Delete,
    apply_deletes,
    refused_where_live,
    unsent_delete,
    written_to,
)
from sync.apply_doubt import holds, same_value, settle_in_doubt
from sync.apply_failures import Failures
from sync.apply_report import ApplyReport, ChangeResult, Outcome, Settled
from sync.apply_sources import SourceCheck
from sync.audit_values import audited_after, audited_before
from sync.connect import build_context, open_connector, read_now
from sync.diff import FunnelFacts, archived_reason
from sync.match import is_deleted
from sync.plan import Change, Plan, current_value, encode_value, show_value
from sync.pull import Progress
from sync.runtime import Runtime
from sync.shutdown import stop_requested, stopped_on_request
from sync.store import Store
from sync.store_records import (
    AuditEntry,
    JournalEntry,
    JournalOp,
    JournalRecord,
    JournalState,
)
from sync.terminal import plain_console
from sync.writes import (
    fields_with_stage,
    native_update,
    record_write,
    stage_written,
    write_batch,
)

__all__ = ["ApplyReport", "apply_from_reconcile", "apply_plan", "system_contexts"]

# Records per re-read + write round for a kind with no known batch size (see write_batch).
_DEFAULT_BATCH = 50


def apply_plan(
    runtime: Runtime,
    plan: Plan,
    *,
    run_id: str,
    contexts: Mapping[str, MappingContext] | None = None,
    progress: Progress | None = None,
    batch_size: int | None = None,
    op: JournalOp = JournalOp.UPDATE,
    remember_bases: bool = True,
    deletes: Sequence[Delete] = (),
    saved: bool = False,
) -> ApplyReport:
    """Write `plan` (journal keyed by `plan.run_id`, so a re-run of the same plan resumes), then
    `deletes` (a rollback's: copies the rolled-back run created). `saved`: a plan made earlier
    (`apply PLAN`), whose changes are also checked against the other deals of their entities
    (sync/apply_sources.py)."""
    store, plan_id = runtime.store, plan.run_id
    done = store.journal.done_ids(plan_id)
    # change -> the journal row of the run that may have sent it: a write of it that landed is
    # that run's
    pending = [
        r
        for r in store.journal.pending(plan_id)
        if r.state in (JournalState.INTENDED, JournalState.SENT)
    ]
    in_doubt = {r.entry.plan_change_id: r for r in pending}
    by_system: dict[str, list[Change]] = defaultdict(list)
    for change in plan.changes:
        by_system[change.system].append(change)
    earlier: dict[str, list[JournalRecord]] = defaultdict(list)
    for record in store.journal.in_doubt_elsewhere(plan_id):
        earlier[record.entry.instance].append(record)
    # What other plans left in doubt is settled in every instance connected (a reconcile: all),
    # not only in the targets: a nightly job may never write to that instance again.
    systems = sorted(
        written_to(plan, deletes) | {name for name in earlier if name in runtime.connectors}
    )
    contexts = dict(contexts or {})
    if any(d.sources for d in deletes):
        deletes = refused_where_live(deletes, _back_again(runtime, contexts, deletes))
    results: list[ChangeResult] = []
    settled: list[Settled] = []
    keeper = BaseKeeper(store, plan) if remember_bases else None
    facts = {name: FunnelFacts.of(f) for name, f in runtime.config.funnels.items()}
    sources = SourceCheck.of(store, plan, facts) if saved else None
    for system in systems:
        connector = runtime.connectors[system]
        store.checkpoint()  # its locks still hold (else LockLost): no other run writes
        if stop_requested():  # not even the mapping context: its reads are calls too
            results += _unattempted(system, stopped_on_request(), by_system, plan, deletes)
            continue
        try:
            ctx = contexts.get(system) or system_contexts(runtime, [system])[system]
        except ConnectorError as exc:
            results += _unattempted(system, str(exc), by_system, plan, deletes)
            continue
        # the instance's dead letters: its writes', its creates' and those settled below
        failures = Failures.of(store, system, runtime.config.push.max_attempts)
        writer = _Writer(
            store, connector, ctx, run_id, plan_id, op, failures=failures, facts=facts,
            done=done, in_doubt=in_doubt, progress=progress, keeper=keeper, sources=sources,
        )  # fmt: skip
        mine = [r for r in pending if r.entry.instance == system]
        held = too_recent([*earlier[system], *mine], connector, datetime.now(UTC))
        settling = [r for r in earlier[system] if r.entry.plan_change_id not in held]
        if settling:  # before this plan's writes, which may change the same fields
            settled += settle_in_doubt(
                store, connector, ctx, settling, run_id, writer.facts, failures
            )
        results += writer.updates(by_system[system], batch_size or _batch_size(ctx.kind))
        creates = [c for c in plan.creates if c["system"] == system]
        if creates:
            results += apply_creates(
                store, connector, ctx, creates, run_id, plan_id, done, in_doubt, held,
                planned_at=plan.created_at, failures=failures,
            )  # fmt: skip
        deleting = [d for d in deletes if d.system == system]
        if deleting:
            results += apply_deletes(
                store, connector, ctx, deleting, run_id, plan_id, done, in_doubt
            )
    if keeper is not None:  # every change, each target's outcome final (some never sent)
        keeper.after(results, {})
    return ApplyReport.of(run_id, plan_id, results, runtime.calls(), settled)


def _back_again(
    runtime: Runtime, contexts: dict[str, MappingContext], deletes: Sequence[Delete]
) -> dict[Ref, str]:
    """The deals deleted elsewhere that propagated `deletes` follow and that their CRM holds
    live now (restored from its recycle bin since the plan, or missed by the pull's listing),
    or that could not be read to tell: deal -> why its copies are not deleted. Their CRM is
    read right before the copies would go, whatever the store says."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for delete in deletes:
        for ref in delete.sources if delete.refused is None else ():
            wanted[ref.system].add(ref.id)
    back: dict[Ref, str] = {}
    for system, ids in sorted(wanted.items()):
        try:
            if system not in runtime.connectors:
                runtime.connectors[system] = open_connector(runtime.config, system)
            if system not in contexts:
                contexts[system] = system_contexts(runtime, [system])[system]
            now, unreadable = read_now(runtime.connectors[system], contexts[system], sorted(ids))
        except ConnectorError as exc:
            why = f"could not read {system} to confirm the deal was deleted there: {exc}"
            back.update((Ref(system, i), why) for i in ids)
            continue
        for deal_id, deal in now.items():
            if not is_deleted(deal):
                back[Ref(system, deal_id)] = f"{system} {deal_id} is live again in its CRM"
        back.update((Ref(system, i), f"{system} {i}: {why}") for i, why in unreadable.items())
    return back


def system_contexts(runtime: Runtime, systems: Sequence[str]) -> dict[str, MappingContext]:
    """Mapping contexts built from what each CRM reports now (pipelines, stages, owners)."""
    contexts = {}
    for name in systems:
        connector = runtime.connectors[name]
        contexts[name] = build_context(
            runtime.config, name, connector.pipelines(), connector.owners()
        )
    return contexts


def _batch_size(kind: str) -> int:
    return write_batch(kind, _DEFAULT_BATCH)


def _unattempted(
    system: str,
    why: str,
    by_system: Mapping[str, Sequence[Change]],
    plan: Plan,
    deletes: Sequence[Delete],
) -> list[ChangeResult]:
    """Every write of the plan to `system`, reported as not attempted (the next run does it)."""
    return (
        [_not_attempted(c, why) for c in by_system.get(system, ())]
        + [not_created(c, why) for c in plan.creates if c["system"] == system]
        + [unsent_delete(d, why) for d in deletes if d.system == system]
    )


def _not_attempted(change: Change, why: str) -> ChangeResult:
    return ChangeResult(
        change.change_id, change.system, change.id, change.field, Outcome.NOT_SENT,
        f"not attempted: {why}", change.entity,
    )  # fmt: skip


@dataclass
class _Writer:
    """The update side of one target instance within one apply."""

    store: Store
    connector: Connector
    ctx: MappingContext
    run_id: str
    plan_id: str
    op: JournalOp
    failures: Failures  # the instance's dead letters, shared with its creates
    facts: Mapping[str, FunnelFacts]
    done: set[str]
    in_doubt: Mapping[str, JournalRecord]  # change id -> an earlier run's row, maybe sent
    progress: Progress | None
    keeper: BaseKeeper | None  # saves the bases after each batch (None: a run that does not)
    sources: SourceCheck | None  # a saved plan's: its values still the news? (None: not asked)
    current: dict[tuple[str, str], Deal] = field(default_factory=dict)
    stopped: str | None = None  # why this instance's remaining batches were not attempted
    _befores: dict[str, Any] = field(default_factory=dict)  # change id -> this batch's before
    _afters: dict[str, Any] = field(default_factory=dict)  # change id -> this batch's after

    def updates(self, changes: Sequence[Change], batch_size: int) -> list[ChangeResult]:
        system = self.ctx.instance
        results = [
            ChangeResult(c.change_id, system, c.id, c.field, Outcome.DONE_BEFORE, None, c.entity)
            for c in changes
            if c.change_id in self.done
        ]
        self._rebase(results)
        by_record: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            if change.change_id not in self.done:
                by_record[change.id].append(change)
        handled = 0
        batches = list(_chunks(list(by_record), batch_size))
        for index, ids in enumerate(batches):
            self.store.checkpoint()  # LockLost: the batches sent so far are journaled
            if stop_requested():
                # SIGTERM: the batches sent so far are journaled; the next run does the rest.
                self.stopped, unsent_from = stopped_on_request(), index
                rest = [c for later in batches[index:] for i in later for c in by_record[i]]
                results += [_not_attempted(c, self.stopped) for c in rest]
                break
            try:
                batch = self._batch({i: by_record[i] for i in ids})
                self._rebase(batch)
                results += batch
                unsent_from = index + 1
            except ConnectorError as exc:  # the re-read failed: nothing of it was journaled
                self.stopped, unsent_from = str(exc), index
            if self.stopped is not None:
                # The call failed for good (retries exhausted, auth, budget): the rest of this
                # instance waits for the next run; the other instances go on.
                rest = [c for later in batches[unsent_from:] for i in later for c in by_record[i]]
                results += [_not_attempted(c, self.stopped) for c in rest]
                break
            handled += len(ids)
            if self.progress is not None:
                self.progress(system, handled)
        return results

    def _rebase(self, results: Sequence[ChangeResult]) -> None:
        if self.keeper is not None and results:
            self.keeper.after(results, self.current)

    def _batch(self, by_record: Mapping[str, list[Change]]) -> list[ChangeResult]:
        deals, unreadable = read_now(self.connector, self.ctx, list(by_record))
        self._befores, self._afters = {}, {}
        results: list[ChangeResult] = []
        sendable: dict[str, list[Change]] = {}
        settled: list[tuple[Change, Outcome, str | None]] = []
        outdated = (
            self.sources.outdated([c for cs in by_record.values() for c in cs])
            if self.sources
            else {}
        )
        for record_id, changes in by_record.items():
            deal = deals.get(record_id)
            if deal is None or is_deleted(deal):  # Pipedrive lists its deleted deals a while
                gone = "deleted in" if deal else "no longer exists in"
                why = unreadable.get(record_id, f"record {gone} {self.ctx.instance}")
                settled += [(c, Outcome.DRIFTED, why) for c in changes]
                continue
            archived = archived_reason(deal)  # since the plan (or a rollback's run) read it
            if archived is not None:
                settled += [(c, Outcome.DRIFTED, archived) for c in changes]
                continue
            self.current[(self.ctx.instance, record_id)] = deal
            verdicts = {c.change_id: self._check(deal, c, outdated) for c in changes}
            _keep_currency_with_amount(deal, changes, verdicts)
            _keep_with_stage(changes, verdicts, fields_with_stage(self.ctx.kind))
            for change in changes:
                verdict = verdicts[change.change_id]
                self._befores[change.change_id] = self._before(deal, change, verdict)
                # a change held already: the deal as read now (one sent: see _payloads)
                self._afters[change.change_id] = audited_after(
                    change.field, encode_value(change.to_value), deal
                )
                if verdict is None:
                    sendable.setdefault(record_id, []).append(change)
                else:
                    settled.append((change, *verdict))
        updates, refused = self._payloads(deals, sendable)
        settled += refused
        intended = [c for c, _, _ in settled] + [c for cs in sendable.values() for c in cs]
        dead = [(c, o, w) for c, o, w in settled if o is Outcome.DEAD]
        dead_ids = {c.change_id for c, _, _ in dead}
        self.store.journal.intend(
            self.run_id,
            self.plan_id,
            [self._entry(c) for c in intended if c.change_id not in dead_ids],
        )
        results += self._settle([s for s in settled if s[1] is not Outcome.DEAD])
        results += [self._result(c, o, w) for c, o, w in dead]
        if not updates:
            return results
        try:
            pushed = self.connector.update_deals(updates)
        except ConnectorError as exc:
            # Part of the batch may have landed (Pipedrive sends one call per deal, and a batch
            # can span several calls): it stays in doubt (sent), so that applying the plan again
            # recognises the writes that landed by their value and audits them as ours.
            self.stopped = str(exc)
            sent = [c for cs in sendable.values() for c in cs]
            self.store.journal.mark_in_doubt(self.run_id, [c.change_id for c in sent], str(exc))
            why = f"in doubt: {exc}; the next apply checks whether it was written"
            return results + [self._result(c, Outcome.FAILED, why) for c in sent]
        return results + self._record(sendable, updates, pushed)

    def _check(
        self, deal: Deal, change: Change, outdated: Mapping[str, str]
    ) -> tuple[Outcome, str | None] | None:
        """None when the change may be sent, else its outcome without sending (`outdated`: see
        SourceCheck.outdated)."""
        dead = self.failures.dead(deal.id, change.field)
        if dead is not None:
            return Outcome.DEAD, dead
        now = current_value(deal, change.field)
        if holds(deal, change.field, change.to_value, self.facts):
            return Outcome.ALREADY, None
        if not same_value(now, change.from_value):
            return Outcome.DRIFTED, (
                f"{change.field} is now {show_value(now)}, "
                f"the plan expected {show_value(change.from_value)}"
            )
        moved = _moved_since(deal, change)
        if moved is not None:
            return Outcome.DRIFTED, moved
        native = change.native
        if (
            native is not None
            and native.pipeline is not None
            and deal.pipeline != native.pipeline
            and change.pipeline_move is None
        ):
            # The native stage to put back is one of the pipeline the deal was in: someone
            # moved the deal since (crmsync's writes move a deal to another pipeline only in a
            # change that says so, `pipeline_move`, checked by `_moved_since`).
            return Outcome.DRIFTED, (
                f"the deal is now in pipeline {deal.pipeline!r}, the {change.field} to put "
                f"back is native stage {native.native_stage!r} of pipeline {native.pipeline!r}"
            )
        planned = change.target_updated_at
        if planned is not None and deal.updated_at > planned:
            return Outcome.DRIFTED, (
                f"modified at {_stamp(deal.updated_at)}, after the plan read it ({_stamp(planned)})"
            )
        if change.change_id in outdated:
            return Outcome.DRIFTED, outdated[change.change_id]
        return None

    def _before(
        self, deal: Deal, change: Change, verdict: tuple[Outcome, str | None] | None
    ) -> Any:
        """The before-value to journal and audit: read from the deal now, unless the deal
        holds the change already because a run left in doubt wrote it (then what that run
        journaled before its write)."""
        landed = verdict is not None and verdict[0] is Outcome.ALREADY
        if landed and change.change_id in self.in_doubt:
            return self.in_doubt[change.change_id].entry.before
        return audited_before(change, deal, self.ctx)

    def _payloads(
        self, deals: Mapping[str, Deal], sendable: dict[str, list[Change]]
    ) -> tuple[list[NativeUpdate], list[tuple[Change, Outcome, str | None]]]:
        updates: list[NativeUpdate] = []
        refused: list[tuple[Change, Outcome, str | None]] = []
        for record_id in list(sendable):
            changes = sendable[record_id]
            deal = deals[record_id]
            try:
                fields, target = _native_update(deal, changes, self.ctx)
            except MappingError as exc:
                del sendable[record_id]
                refused += [(c, Outcome.FAILED, f"{exc.field}: {exc.reason}") for c in changes]
                continue
            updates.append(NativeUpdate(record_id, fields))
            for change in changes:
                self._afters[change.change_id] = audited_after(
                    change.field,
                    encode_value(change.to_value),
                    deal,
                    target.native_stage,
                    target.pipeline,
                )
        return updates, refused

    def _entry(self, change: Change) -> JournalEntry:
        before = self._befores.get(change.change_id, encode_value(change.from_value))
        return JournalEntry(
            change.change_id, change.system, change.id, self.op, change.field,
            before, encode_value(change.to_value),
        )  # fmt: skip

    def _result(self, change: Change, outcome: Outcome, why: str | None) -> ChangeResult:
        return ChangeResult(
            change.change_id, change.system, change.id, change.field, outcome, why, change.entity
        )

    def _settle(self, settled: list[tuple[Change, Outcome, str | None]]) -> list[ChangeResult]:
        """Journal (and audit, fail) the changes decided without sending."""
        marks: list[tuple[str, JournalState, dict[str, Any]]] = []
        for change, outcome, why in settled:
            if outcome is Outcome.ALREADY:
                marks.append((change.change_id, JournalState.DONE, {"already": True}))
            elif outcome is Outcome.DRIFTED:
                marks.append((change.change_id, JournalState.SKIPPED, {"drifted": why}))
            else:
                marks.append((change.change_id, JournalState.FAILED, {"error": why}))
        # A write left in doubt by a killed run that did land is that run's: audit it under it
        # (so `rollback` of that run undoes it), as settling another plan's writes does.
        landed = [c for c, o, _ in settled if o is Outcome.ALREADY and c.change_id in self.in_doubt]
        audit = [
            self.in_doubt[change.change_id].landed(entry)
            for change, entry in zip(landed, self._audited(landed), strict=True)
        ]
        self.store.journal.mark(self.run_id, marks, audit=audit)
        results = []
        for change, outcome, why in settled:
            if outcome is Outcome.FAILED:
                outcome, why = self.failures.fail(change.id, change.field, why or "refused")
            elif outcome is Outcome.ALREADY:
                self.failures.clear(change.id, change.field)
            results.append(self._result(change, outcome, why))
        return results

    def _record(
        self,
        sendable: Mapping[str, list[Change]],
        updates: Sequence[NativeUpdate],
        pushed: Sequence[Any],
    ) -> list[ChangeResult]:
        marks, results, applied = [], [], []
        for update, result in zip(updates, pushed, strict=True):
            for change in sendable[update.id]:
                payload = {"id": result.id, "ok": result.ok}
                if result.ok:
                    marks.append((change.change_id, JournalState.DONE, payload))
                    results.append(self._result(change, Outcome.APPLIED, None))
                    applied.append(change)
                else:
                    reason = result.error or "refused without a reason"
                    payload |= {"error": reason, "code": result.code}
                    marks.append((change.change_id, JournalState.FAILED, payload))
                    results.append(self._result(change, Outcome.FAILED, reason))
        self.store.journal.mark(self.run_id, marks, audit=self._audited(applied))
        for change in applied:
            self.failures.clear(change.id, change.field)
        for i, r in enumerate(results):
            if r.outcome is Outcome.FAILED:
                outcome, reason = self.failures.fail(r.id or "", r.field, r.reason or "")
                results[i] = ChangeResult(
                    r.change_id, r.system, r.id, r.field, outcome, reason, r.entity
                )
        return results

    def _audited(self, changes: Sequence[Change]) -> list[AuditEntry]:
        """The audit entries of `changes`, which landed."""
        return [
            AuditEntry(
                self.run_id,
                c.system,
                c.id,
                c.field,
                self._befores.get(c.change_id, encode_value(c.from_value)),
                self._afters.get(c.change_id, encode_value(c.to_value)),
                c.reason,
            )
            for c in changes
        ]


def _keep_currency_with_amount(
    deal: Deal,
    changes: Sequence[Change],
    verdicts: dict[str, tuple[Outcome, str | None] | None],
) -> None:
    """A currency goes (to none) only with its amount: while the deal keeps an amount (someone
    set one since the plan), a change clearing its currency is drifted, not sent."""
    amount = current_value(deal, "amount")
    if amount is None or any(
        c.field == "amount" and c.to_value is None and verdicts[c.change_id] is None
        for c in changes
    ):
        return
    why = f"amount is now {show_value(amount)}, which keeps its currency"
    for change in changes:
        if change.field == "currency" and change.to_value is None:
            verdicts[change.change_id] = verdicts[change.change_id] or (Outcome.DRIFTED, why)


def _moved_since(deal: Deal, change: Change) -> str | None:
    """Why the deal no longer holds the exact native stage the change expects (`native_from`:
    a rollback's, what the rolled-back write left), though it holds its funnel stage; None when
    it does, or the change expects none."""
    expected = change.native_from
    if change.field != "stage" or expected is None:
        return None
    moving = change.pipeline_move
    if expected.native_stage is None:
        if moving is None or deal.pipeline == moving[0]:
            return None
        return (
            f"the deal is now in pipeline {deal.pipeline!r}; the move to pipeline "
            f"{moving[1]!r} expected it in {moving[0]!r}: moved since"
        )
    pipeline = expected.pipeline or deal.pipeline
    if (deal.pipeline, deal.native_stage) == (pipeline, expected.native_stage):
        return None
    return (
        f"stage is now native stage {deal.native_stage!r} of pipeline {deal.pipeline!r}, "
        f"the run left native stage {expected.native_stage!r} of pipeline {pipeline!r}: "
        "moved since"
    )


def _keep_with_stage(
    changes: Sequence[Change],
    verdicts: dict[str, tuple[Outcome, str | None] | None],
    tied: frozenset[str],
) -> None:
    """A field tied to the stage (`fields_with_stage`) goes only with it: while the record's stage
    change is drifted, its change of such a field is too, as its write would contradict the
    stage someone set since (a status overwrite it; a probability disagree with it). While the
    stage change is dead-lettered (not sent), so is such a change: written alone, it would leave
    the record with a probability of a stage it does not hold, or move the stage by its status
    after all. It gets no dead letter of its own: no dead stage change held back, it is sent."""
    stage = next((verdicts[c.change_id] for c in changes if c.field == "stage"), None)
    if not tied or stage is None:
        return
    if stage[0] is Outcome.DRIFTED:
        held = (Outcome.DRIFTED, f"goes with the stage, which is drifted ({stage[1]})")
    elif stage[0] is Outcome.DEAD:
        held = (Outcome.DEAD, f"goes with the stage, which is {stage[1]}")
    else:
        return
    for change in changes:
        if change.field in tied and verdicts[change.change_id] is None:
            verdicts[change.change_id] = held


def _native_update(
    deal: Deal, changes: Sequence[Change], ctx: MappingContext
) -> tuple[dict[str, Any], StageTarget]:
    """The native payload, and where it puts the deal: the native stage (None: left as is) and
    the pipeline of a move (None: it stays in its own)."""
    values, native = record_write(changes)
    return native_update(deal, values, ctx, native), stage_written(deal, values, ctx, native)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def apply_from_reconcile(runtime: Runtime, result: Any, *, run_id: str, yes: bool) -> ApplyReport:
    """`reconcile` without --dry-run: apply the plan just made, under the same guards.

    The report goes to stderr, so `reconcile --format json` keeps one JSON document on stdout.
    """

    from sync.apply_report import render_apply_report
    from sync.apply_run import guarded_apply  # it imports this module

    plan: Plan = result.plan
    report = guarded_apply(
        runtime, plan, run_id=run_id, yes=yes, check_plan=False, contexts=result.contexts
    )
    render_apply_report(report, "table", plain_console(stderr=True))
    return report
