"""`crmsync rollback RUN_ID`: show (default) or write (`--apply`) the inverse of a run's writes."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from signal import SIGTERM

import click
from rich.table import Table

from sync.apply import system_contexts
from sync.apply_creates import too_recent
from sync.apply_deletes import Delete, written_to
from sync.apply_doubt import settle_in_doubt
from sync.apply_failures import Failures
from sync.apply_report import ApplyReport, Outcome
from sync.commands import config_option
from sync.commands.apply import recorded_apply
from sync.connect import open_connector
from sync.diff import FunnelFacts
from sync.forget import forgotten_line, forgotten_note, forgotten_since
from sync.guards import PlanRefused
from sync.locks import reconcile_lock
from sync.plan import Change
from sync.plan_json import plan_to_json
from sync.rollback import (
    BY_FUNNEL_STAGE,
    CHECKED_BY_FUNNEL_STAGE,
    ROLLED_BACK,
    Rollback,
    describe,
    finished,
    rollback_plan,
    rolled_back,
    rolled_back_json,
)
from sync.runtime import Runtime, open_runtime
from sync.shutdown import stop_on_signals
from sync.store_records import JournalOp, JournalRecord, RunKind, rollback_plan_id
from sync.terminal import cell, counted, fitted, id_column, plain_console, terminal_safe

__all__ = ["command"]


# Runs that changed crmsync's own records, not CRM ones: what to do instead. "Wrote nothing"
# alone would tell whoever split the wrong entity that there is nothing to do about it.
_NOTHING_TO_UNDO = {
    RunKind.LINKS: "corrected matching (`crmsync links`) and wrote to no CRM: rollback has "
    "nothing to undo; `crmsync links join` pairs split deals again, `crmsync links split` "
    "undoes a join",
    RunKind.DEAD_LETTERS: "released dead letters (`crmsync dead-letters retry`) and wrote to "
    "no CRM: rollback has nothing to undo; the changes a later run sent again are that run's "
    "to roll back",
    RunKind.FORGET: "removed what the store held of a retired instance (`crmsync forget`) and "
    "wrote to no CRM: rollback has nothing to undo; configured again, the instance is read "
    "anew by its next pull",
}


@click.command("rollback")
@click.argument("run_id")
@config_option
@click.option("--apply", "write", is_flag=True, help="Write the inverse changes (default: show).")
@click.option("--yes", is_flag=True, help="Do not ask before writing many changes.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--entity", "entities", multiple=True, metavar="ENTITY",
    help="Undo only the run's writes to this entity, in every CRM (repeatable).",
)  # fmt: skip
def command(
    config_path: str, run_id: str, write: bool, yes: bool, fmt: str, entities: tuple[str, ...]
) -> None:
    """Undo a run's writes: restore the fields it changed and delete the records it created.

    A field changed again since, or a created record changed since, is reported, not touched.
    """
    chosen = sorted(set(entities))
    with open_runtime(config_path, connect=False) as rt, stop_on_signals(signals=(SIGTERM,)):
        fingerprint = rt.config.fingerprint()
        run = rt.store.runs.get(run_id)
        if run is not None and run.kind in _NOTHING_TO_UNDO and fmt == "table":
            click.echo(f"run {run_id} {_NOTHING_TO_UNDO[run.kind]}")
            return
        if not write:
            rollback = rollback_plan(
                rt.store,
                run_id,
                fingerprint=fingerprint,
                now=_now(),
                entities=chosen,
                aliases=rt.config.owner_aliases,
            )
            doubt = len(_in_doubt(rt, run_id))
            forgotten = _forgotten(rt, run_id)
            retired = [n for n in _retired(rollback, rt.config.systems) if n not in forgotten]
            done = rt.store.journal.done_ids(rollback.plan.run_id)
            refused = _refusal(rollback, forgotten, retired, rt.config.path.name)
            _show(rollback, fmt, done, doubt, forgotten, refused)
            return
        with reconcile_lock(rt.store):
            _write(rt, run_id, fingerprint, yes, fmt, chosen)


def _in_doubt(rt: Runtime, run_id: str) -> list[JournalRecord]:
    """The run's writes still in doubt: journaled as sent or about to be, never recorded as
    done or not (its process was killed, or a call failed part-way)."""
    records = rt.store.journal.in_doubt_elsewhere(rollback_plan_id(run_id))
    return [r for r in records if r.run_id == run_id]


def _settle(rt: Runtime, run_id: str, again: str) -> None:
    """Settle the run's writes in doubt, as the next apply would (sync/apply_doubt): those that
    landed are audited under the run, and the rollback, made from the audit, undoes them too.
    Unsettled, a run killed mid-apply had its last batch left in the CRMs by its rollback
    ("nothing to write"). A create sent too recently for its CRM's lookup to show the copy
    stays in doubt (not found is no proof there), and so does an instance no longer in the
    config or a CRM that failed to answer: how many is said, and when to run it again."""
    by_instance: dict[str, list[JournalRecord]] = defaultdict(list)
    for record in _in_doubt(rt, run_id):
        if record.entry.instance in rt.config.systems:
            by_instance[record.entry.instance].append(record)
    facts = {name: FunnelFacts.of(f) for name, f in rt.config.funnels.items()}
    lookable: list[datetime] = []  # when the held creates can be looked up
    for name, records in sorted(by_instance.items()):
        rt.store.checkpoint()  # the reconcile lock still holds: no other run settles them
        if name not in rt.connectors:
            rt.connectors[name] = open_connector(rt.config, name)
        connector = rt.connectors[name]
        held = too_recent(records, connector, _now())
        lookable += held.values()
        settling = [r for r in records if r.entry.plan_change_id not in held]
        if settling:
            ctx = system_contexts(rt, [name])[name]
            failures = Failures.of(rt.store, name, rt.config.push.max_attempts)
            settle_in_doubt(
                rt.store, connector, ctx, settling, rollback_plan_id(run_id), facts, failures
            )
    if left := len(_in_doubt(rt, run_id)):
        # Not undone now, though they may have landed: the rollback must not pass for whole.
        when = f" after {max(lookable):%Y-%m-%d %H:%M:%S} UTC" if lookable else ""
        click.echo(
            f"{left} write(s) of run {run_id} stay in doubt (too recent for their CRM's lookup, "
            f"a CRM that did not answer, or an instance no longer configured): not undone now; "
            f"run `{again}` again{when} to undo those that landed",
            err=True,
        )


def _wrote(rt: Runtime, run_id: str) -> set[str]:
    """Every instance the run wrote to, whatever entities a rollback of it undoes."""
    return {e.instance for e in rt.store.audit.entries(run_id=run_id)}


def _refusing(rollback: Rollback, forgotten: Mapping[str, str]) -> dict[str, str]:
    """Of the `forgotten` instances the run wrote to (instance -> forget run), those for which
    --apply refuses `rollback` (the dry view and the apply alike): all of them for the whole
    run, which is undone whole; for a partial one, those its plan writes to (a copy the run made
    there into the entity). Forget unlinked the instance's deals, so the run's other writes
    there are in no entity now: a partial rollback leaves them alone (`forgotten_note`), and its
    writes elsewhere are undone as before; forget left none of them in doubt."""
    if not rollback.entities:
        return dict(forgotten)
    touched = written_to(rollback.plan, rollback.deletes)
    return {name: run for name, run in forgotten.items() if name in touched}


def _refusal(
    rollback: Rollback, forgotten: Mapping[str, str], retired: Sequence[str], config: str
) -> str | None:
    """The line ending a dry view whose --apply would be refused, and why; None: it would not."""
    run_id = rollback.plan.summary["rollback_of"]
    if refusing := _refusing(rollback, forgotten):
        return forgotten_line(run_id, refusing, dry=True, entities=rollback.entities)
    if not retired:
        return None
    names, back = ", ".join(retired), ", ".join(f"systems.{name}" for name in retired)
    return (
        f"dry run: nothing written; --apply refuses it while {names}, which the run wrote to, "
        f"{'is' if len(retired) == 1 else 'are'} not in {config}: add {back} back to undo the run"
    )


def _forgotten(rt: Runtime, run_id: str) -> dict[str, str]:
    """Those of the instances the run wrote to whose state `crmsync forget` removed since:
    instance -> that forget run. The run's audit is read for it only where an instance was
    forgotten since (rare): `rollback_plan` reads it anyway."""
    run = rt.store.runs.get(run_id)
    if run is None:
        return {}
    since = forgotten_since(rt.store, run.started_at, None)
    if not since:
        return {}
    wrote = _wrote(rt, run_id)
    return {name: forget for name, forget in since.items() if name in wrote}


def _write(
    rt: Runtime, run_id: str, fingerprint: str, yes: bool, fmt: str, entities: Sequence[str]
) -> None:
    def plan() -> Rollback:
        return rollback_plan(
            rt.store, run_id, fingerprint=fingerprint, now=_now(), entities=entities,
            aliases=rt.config.owner_aliases,
        )  # fmt: skip

    forgotten = _forgotten(rt, run_id)
    # Refused before settling, which checks writes in doubt in the CRMs: a refusal says nothing
    # was done. Settling cannot change what is refused: forget left no write to its instance in
    # doubt, and settles none there.
    if forgotten and (refusing := _refusing(first := plan(), forgotten)):
        raise PlanRefused(forgotten_line(run_id, refusing, entities=first.entities))
    again = " ".join(["crmsync rollback", run_id, *(f"--entity {e}" for e in entities), "--apply"])
    _settle(rt, run_id, again)
    rollback = plan()
    # JSON: stdout holds the apply's report alone
    for line in [*_notes(rollback, forgotten), *_kept_lines(rollback)]:
        click.echo(terminal_safe(line), err=fmt == "json")
    if entities and set(entities) <= set(rollback.already):
        _nothing_to_apply(rollback, fmt)
        return
    # The restored values become the bases, as any write of crmsync's does: they are no edit
    # of the targets, so the next reconcile does not carry them back over the CRM whose edit
    # the rolled-back run had copied; it plans that edit again. A partial rollback's plan holds
    # its entities' changes alone, so it rebases those entities and no other.
    try:
        report = recorded_apply(
            rt, rollback.plan, "rollback", RunKind.ROLLBACK, fingerprint, yes=yes, fmt=fmt,
            check_plan=False, op=JournalOp.ROLLBACK, deletes=rollback.deletes,
        )  # fmt: skip
    finally:
        _record(rt, run_id, rollback)
    if report.totals()[Outcome.APPLIED]:
        click.echo(terminal_safe(_AGAIN), err=True)


# What a person undoing a wrong write must hear before the next nightly run, not after it: the
# restored values are the bases, so the edit the run copied reads as new in the CRM holding it.
_AGAIN = (
    "note: the next reconcile plans again what this rollback undid, from the CRMs that still "
    "hold it: fix the cause before it applies (`crmsync links split ENTITY` for a wrong match, "
    "a field's policy, the source deal itself)"
)


def _record(rt: Runtime, run_id: str, rollback: Rollback) -> None:
    """Keep on the rolled-back run's record what its rollbacks finished (`crmsync runs` shows
    it; a later rollback leaves the entities a partial one finished alone). Nothing while some
    of its writes stay in doubt: they may have landed, and are not undone yet."""
    run = rt.store.runs.get(run_id)
    if run is None or _in_doubt(rt, run_id):
        return
    earlier = rolled_back(run.counts)
    now = finished(rollback, rt.store.journal.done_ids(rollback.plan.run_id), earlier)
    if now != earlier:
        rt.store.runs.add_counts(run_id, {ROLLED_BACK: rolled_back_json(now)})


def _nothing_to_apply(rollback: Rollback, fmt: str) -> None:
    """The report of a partial --apply whose entities were all rolled back already: no run is
    recorded, no CRM read or written. JSON keeps the apply report's shape (no `run_id`, no
    results, zero totals), with `rolled_back_already`; a script reads it as any apply's."""
    if fmt != "json":
        return  # the line saying so is the whole of it
    report = ApplyReport.of("", rollback.plan.run_id, ()).as_json()
    body = {**report, "run_id": None, "rolled_back_already": list(rollback.already)}
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


def _notes(rollback: Rollback, forgotten: Mapping[str, str]) -> list[str]:
    """The lines before a rollback's rows or report: the entities left out as rolled back
    already, and a partial rollback's writes to forgotten instances, left alone."""
    notes = [line] if (line := _already_line(rollback)) is not None else []
    if rollback.entities and forgotten and not _refusing(rollback, forgotten):
        notes.append(forgotten_note(rollback.plan.summary["rollback_of"], forgotten))
    return notes


def _kept_lines(rollback: Rollback) -> list[str]:
    """The records the run created that the rollback leaves alone, and why: the dry view and
    --apply say the same, so whoever applies it knows what is still theirs to undo by hand."""
    return [f"kept {k.system} {k.id}: {k.reason}" for k in rollback.kept]


def _already_line(rollback: Rollback) -> str | None:
    """The line naming the entities an earlier rollback undid, left out of this one."""
    if not rollback.already:
        return None
    run_id = rollback.plan.summary["rollback_of"]
    count = counted(len(rollback.already), "entity", "entities")
    return (
        f"rolled back already: {', '.join(rollback.already)} ({count} of run {run_id}); "
        "not undone again"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _retired(rollback: Rollback, configured: Collection[str]) -> list[str]:
    """The instances the run wrote to that the config no longer names: --apply refuses the
    rollback while they are out of it (sync.apply_run)."""
    return sorted(written_to(rollback.plan, rollback.deletes) - set(configured))


def _show(
    rollback: Rollback,
    fmt: str,
    done: set[str],
    doubt: int,
    forgotten: Mapping[str, str],
    refused: str | None,
) -> None:
    """`done`: the changes and deletes an earlier `--apply` of this rollback completed;
    `doubt`: how many of the run's writes are in doubt (`_settle` checks them on --apply);
    `forgotten`: the instances it wrote to that `crmsync forget` removed since (instance ->
    forget run); `refused`: why --apply would refuse it (`_refusal`, the line ending the view)."""
    if fmt == "json":
        body = plan_to_json(rollback.plan)
        body["already_done"] = sorted(
            [c.change_id for c in rollback.plan.changes if c.change_id in done]
            + [d.change_id for d in rollback.deletes if d.change_id in done]
        )
        body["deletes"] = [
            {
                "change_id": d.change_id,
                "system": d.system,
                "id": d.id,
                "entity": d.entity,
                "created_with": dict(d.expected),
            }
            for d in rollback.deletes
        ]
        body["created_not_undone"] = [
            {"system": k.system, "id": k.id, "reason": k.reason} for k in rollback.kept
        ]
        body["in_doubt"] = doubt
        body["entities"] = list(rollback.entities)  # []: the whole run
        body["rolled_back_already"] = list(rollback.already)
        body["forgotten"] = dict(sorted(forgotten.items()))
        body["refused"] = refused  # null: --apply would write it
        # where each stage change puts its deal back, as the CRM named it when the run wrote
        body["stage_labels"] = {
            change_id: {"pipeline": pipeline, "native_stage": stage}
            for change_id, (pipeline, stage) in sorted(rollback.labels.items())
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    console = plain_console()
    if doubt:
        console.print(
            f"{doubt} write(s) of run {rollback.plan.summary['rollback_of']} are in doubt (its "
            "process stopped before recording them): --apply checks them in the CRMs first and "
            "undoes those that landed",
            markup=False,
        )
    for line in _notes(rollback, forgotten):
        console.print(cell(line))
    if not (rollback.plan.changes or rollback.deletes or rollback.kept):
        if not (doubt or rollback.already or refused):
            console.print(
                f"run {rollback.plan.summary['rollback_of']} wrote nothing: nothing to undo"
            )
        if refused:
            console.print(refused, markup=False)
        return
    title = f"rollback of {rollback.plan.summary['rollback_of']}"
    if rollback.entities:
        title += f", {'entity' if len(rollback.entities) == 1 else 'entities'} "
        title += ", ".join(rollback.entities)
    table = Table(title=cell(f"{title} (dry run)"))
    # Instances, ids and field names are never cut ("probabili…ty" at 80 columns); the values
    # fold, and only where a single word is wider than its column (an email address).
    id_column(table, "system", (c.system for c in rollback.plan.changes))
    id_column(table, "id", (c.id for c in rollback.plan.changes))
    id_column(table, "field", (c.field for c in rollback.plan.changes))
    for column in ("now (written by the run)", "back to"):
        table.add_column(column, overflow="fold")
    table.add_column("state", min_width=len("(rolled"))
    labels = rollback.labels
    for c in rollback.plan.changes:
        table.add_row(
            *map(
                cell,
                (
                    c.system,
                    c.id,
                    c.field,
                    describe(c.from_value),
                    _back_to(c, labels.get(c.change_id)),
                ),
            ),
            _state(c, done),
        )
    console.print(fitted(table, console))
    by_key = sum(1 for c in rollback.plan.changes if BY_FUNNEL_STAGE in c.reason)
    if by_key:
        console.print(cell(f"{by_key} stage change(s) go back {BY_FUNNEL_STAGE}"))
    unchecked = sum(1 for c in rollback.plan.changes if CHECKED_BY_FUNNEL_STAGE in c.reason)
    if unchecked:
        console.print(cell(f"{unchecked} stage change(s) are {CHECKED_BY_FUNNEL_STAGE}"))
    if rollback.deletes:
        deletes = Table(title="records the run created: deleted unless changed since")
        id_column(deletes, "system", (d.system for d in rollback.deletes))
        id_column(deletes, "id", (d.id for d in rollback.deletes))
        deletes.add_column("name", overflow="fold")
        deletes.add_column("state", min_width=len("(rolled"))
        for d in rollback.deletes:
            deletes.add_row(
                *map(cell, (d.system, d.id, d.expected.get("name") or "")), _state(d, done)
            )
        console.print(fitted(deletes, console))
    for line in _kept_lines(rollback):
        console.print(cell(line))
    if done:
        console.print("rows done were written by an earlier --apply of this rollback", markup=False)
    console.print(
        refused or "dry run: nothing written; add --apply to write these changes", markup=False
    )


def _back_to(change: Change, labels: tuple[str, str] | None) -> str:
    """The value put back, with the native stage or currency code the audit recorded: a stage
    as the CRM showed it (`labels`: "Sales Pipeline / Qualified To Buy", as plans show where a
    stage change lands), by its ids where the run's audit has no labels."""
    value, native = describe(change.to_value), change.native
    if native is not None and native.native_stage is not None:
        where = f"native stage {native.native_stage}"
        if labels is not None:
            where = f"{labels[0]} / {labels[1]}"
        if change.pipeline_move is not None:
            # the run moved the deal to another pipeline (push.move_between_pipelines)
            pipeline = "that pipeline" if labels is not None else f"pipeline {native.pipeline}"
            return f"{value} ({where}, back in {pipeline})"
        return f"{value} ({where})"
    if native is not None and native.currency is not None:
        return f"{value} (currency field {native.currency})"
    return value


def _state(item: Change | Delete, done: set[str]) -> str:
    return "done (rolled back)" if item.change_id in done else "to do"
