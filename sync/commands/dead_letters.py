"""`crmsync dead-letters`: the changes the CRMs kept refusing, and `retry` to release them once
the cause is fixed in the CRM; see sync/dead_letters."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from mapping.model import format_utc
from sync.commands import config_option, wait_option
from sync.dead_letters import DeadLetter, check_fields, check_selection, dead_letters
from sync.errors import UsageError, terminal_safe
from sync.locks import reconcile_lock
from sync.runtime import open_runtime
from sync.shutdown import stop_on_signals
from sync.store_records import RunKind, RunStatus
from sync.terminal import cell, counted, fitted, id_column, plain_console

__all__ = ["command"]

_JOB = "dead-letters"
# Below this width the table would fold times and reasons mid-word: each letter takes two lines
# instead, the second indented (as `crmsync runs` does).
_NARROW = 120


@click.group(
    "dead-letters",
    invoke_without_command=True,
    short_help="Changes the CRMs kept refusing; `retry` releases them.",
)
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
    help="table: for people; json: a row per dead letter, for scripts.",
)  # fmt: skip
@click.option("--instance", help="Only this instance's.")
@click.option("--retrying", is_flag=True, help="Also the failures still retried (not yet dead).")
@click.pass_context
def command(
    ctx: click.Context, config_path: str, fmt: str, instance: str | None, retrying: bool
) -> None:
    """List the dead letters: changes a CRM refused `push.max_attempts` times, no longer sent.
    Each with its instance, record id, field, the value last tried, attempts, the CRM's last
    reason and when it first and last failed (UTC). A copy the CRM refused to create is listed
    under its entity id, field `(record)`, as a copy of its source deal. Once the cause is fixed
    in the CRM, `crmsync dead-letters retry` releases them."""
    if ctx.invoked_subcommand is not None:
        return
    with open_runtime(config_path, connect=False) as rt:
        if instance is not None:
            check_selection(rt.store, rt.config.systems, instance, ())
        letters = dead_letters(rt.store, instance=instance, retrying=retrying)
    if fmt == "json":
        sys.stdout.write(json.dumps([_json(d) for d in letters], indent=2) + "\n")
        return
    _table(letters, retrying)


def _json(d: DeadLetter) -> dict[str, Any]:
    f = d.failure
    return {
        "system": f.instance,
        "id": f.deal_id,
        "field": f.field or None,
        "value": d.tried,
        "copy_of": None if d.copy_of is None else {"system": d.copy_of.system, "id": d.copy_of.id},
        "state": "dead" if f.dead else "retrying",
        "attempts": f.attempts,
        "reason": f.reason,
        "first_failed_at": format_utc(f.first_seen),
        "last_failed_at": format_utc(f.last_seen),
    }


def _shown(d: DeadLetter) -> str:
    if d.copy_of is not None:
        return f"copy of {d.copy_of.system} {d.copy_of.id}"
    if d.tried is None:
        return "-"
    return d.tried if isinstance(d.tried, str) else json.dumps(d.tried)


def _table(letters: list[DeadLetter], retrying: bool) -> None:
    console = plain_console()
    dead = sum(d.failure.dead for d in letters)
    if not letters:
        console.print("no dead letters" if not retrying else "no failed records")
        return
    if console.width < _NARROW:
        for line in _lines(letters, retrying, console.width):
            console.print(Text(line), soft_wrap=True)
    else:
        console.print(fitted(_wide(letters, retrying), console))
    summary = counted(dead, "dead letter")
    if retrying:
        summary += f", {counted(len(letters) - dead, 'failure')} still retried"
    if dead:
        summary += (
            "; once the cause is fixed in the CRM, `crmsync dead-letters retry` releases them"
        )
    console.print(Text(summary), soft_wrap=True)


def _lines(letters: list[DeadLetter], retrying: bool, width: int) -> Iterator[str]:
    """For a narrow terminal: instance, record id, field and attempts on one line (the id
    whole), then the value tried, the times and the CRM's reason, wrapped at word boundaries."""
    yield f"{'failed records' if retrying else 'dead letters'} (times in UTC)"
    for d in letters:
        f = d.failure
        state = ("dead  " if f.dead else "retrying  ") if retrying else ""
        yield terminal_safe(
            f"{f.instance}  {f.deal_id}  {f.field or '(record)'}  {state}"
            f"{counted(f.attempts, 'attempt')}"
        )
        text = terminal_safe(
            f"tried {_shown(d)}; failed first {f.first_seen:%Y-%m-%d %H:%M:%S}, last "
            f"{f.last_seen:%Y-%m-%d %H:%M:%S}: {f.reason}"
        )
        yield from textwrap.wrap(
            text, max(width, 40), initial_indent="    ", subsequent_indent="    "
        )


def _wide(letters: list[DeadLetter], retrying: bool) -> Table:
    table = Table(title="dead letters" if not retrying else "failed records")
    table.add_column("instance", overflow="fold")
    # the id is what `retry --id` takes and what people look up in the CRM: never cut
    id_column(table, "record id", (d.failure.deal_id for d in letters))
    table.add_column("field", overflow="fold")
    if retrying:
        table.add_column("state", overflow="fold")
    table.add_column("last tried", overflow="fold")
    table.add_column("attempts", justify="right")
    table.add_column("first failed (UTC)", overflow="fold")
    table.add_column("last failed (UTC)", overflow="fold")
    table.add_column("CRM's last reason", overflow="fold", ratio=1)
    for d in letters:
        f = d.failure
        state = ["dead" if f.dead else "retrying"] if retrying else []
        table.add_row(
            cell(f.instance), cell(f.deal_id), cell(f.field or "(record)"), *state,
            cell(_shown(d)), str(f.attempts), f"{f.first_seen:%Y-%m-%d %H:%M:%S}",
            f"{f.last_seen:%Y-%m-%d %H:%M:%S}", cell(f.reason),
        )  # fmt: skip
    return table


_wait = wait_option(
    "for a reconcile, apply, rollback or links correction of this store that is running "
    "(default: exit)"
)


@command.command("retry")
@config_option
@click.option("--all", "everything", is_flag=True, help="Release every dead letter.")
@click.option("--instance", help="Release this instance's dead letters.")
@click.option(
    "--id", "ids", multiple=True, metavar="RECORD_ID",
    help="Only this record's (repeatable; with --instance; a Salesforce id may have 15 "
    "characters, as its screens show it).",
)  # fmt: skip
@click.option(
    "--field", "fields", multiple=True, metavar="FIELD",
    help="Only this field's, e.g. amount or stage (repeatable; canonical deal fields).",
)  # fmt: skip
@_wait
def retry(
    config_path: str,
    everything: bool,
    instance: str | None,
    ids: tuple[str, ...],
    fields: tuple[str, ...],
    wait_seconds: float | None,
) -> None:
    """Release dead letters once their cause is fixed in the CRM: the next apply or reconcile
    sends their changes again, attempts counted from the start. Recorded in `crmsync runs`."""
    if ids and instance is None:
        raise UsageError("--id needs --instance NAME (ids are per instance)")
    if everything == (instance is not None):
        raise UsageError("give --all or --instance NAME (with --id RECORD_ID to pick records)")
    check_fields(fields)
    # A release under the reconcile lock: an apply running now neither sends nor counts them.
    stop = stop_on_signals(signals=(signal.SIGTERM,))
    with open_runtime(config_path, connect=False) as rt:
        known = list(rt.config.systems)
        if instance is not None:
            kind = rt.config.systems[instance].kind if instance in known else ""
            # a Salesforce id as its screens show it names the letter of its API form
            ids = tuple(check_selection(rt.store, known, instance, ids, fields, kind=kind))
            selection = {instance: set(ids) if ids else None}
        else:
            stored = {f.instance for f in rt.store.failures.records(dead=True)}
            selection = dict.fromkeys([*known, *sorted(stored - set(known))], None)
        with (
            stop,
            reconcile_lock(
                rt.store, wait=bool(wait_seconds), timeout=wait_seconds, wait_option=True
            ),
        ):
            released = rt.store.failures.release(selection, fields)
            counts: dict[str, Any] = {"released": sum(released.values()), "instances": released}
            if ids:
                counts["ids"] = {instance: sorted(set(ids))}
            if fields:
                counts["fields"] = sorted(set(fields))
            run_id = rt.store.runs.start(_JOB, RunKind.DEAD_LETTERS, rt.config.fingerprint())
            rt.store.runs.finish(run_id, RunStatus.OK, counts=counts)
    for name, count in released.items():
        then = "; the next apply or reconcile sends their changes again" if count else ""
        click.echo(terminal_safe(f"{name}: released {counted(count, 'dead letter')}{then}"
                                 f" (run {run_id})"))  # fmt: skip
