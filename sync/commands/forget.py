"""`crmsync forget INSTANCE`: show (default) or remove (`--apply`) what the state store holds of
an instance the config no longer names (sync/forget.py, sync/store_forget.py)."""

from __future__ import annotations

import json
import signal
import sys

import click
from rich.table import Table

from sync.apply_run import confirmed
from sync.commands import config_option, wait_option
from sync.errors import terminal_safe
from sync.forget import ForgetRefused, check_forgettable
from sync.locks import pull_locks, reconcile_lock
from sync.runtime import open_runtime
from sync.shutdown import stop_on_signals
from sync.store import Holdings
from sync.terminal import fitted, plain_console

__all__ = ["command"]

# Each count, as the table names it, and what becomes of it.
_ROWS = (
    ("deals", "deals", "removed (those seen deleted too)"),
    ("links", "links", "removed"),
    ("entities_kept", "entities shared", "kept, with their members in other instances"),
    ("entities_dropped", "entities of it alone", "removed"),
    ("bases", "their bases", "removed"),
    ("dead_letters", "dead letters", "removed"),
    ("failing", "failed records retried", "removed"),
    ("data_gaps", "unmappable records", "removed"),
    ("pending", "reconcile flags", "removed"),
    ("match_keys", "match keys", "removed"),
    ("splits", "split pairs", "removed"),
    ("cursor", "cursor", "removed"),
    ("mapping", "mapping fingerprint", "removed"),
    ("stage_names", "stage names", "removed"),
    ("audit", "audit entries", "kept: the record of what crmsync wrote"),
)


@click.command("forget")
@click.argument("instance")
@config_option
@click.option("--apply", "write", is_flag=True, help="Remove it (default: show what would go).")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@wait_option(
    "for a reconcile, apply, rollback or links correction of this store, or a pull of the "
    "instance, that is running (default: exit)"
)
def command(
    instance: str, config_path: str, write: bool, yes: bool, fmt: str, wait_seconds: float | None
) -> None:
    """Remove what the state store holds of a retired instance (one the config no longer
    names): its deals, links, cursor, dead letters... The audit log and run history stay.

    Afterwards the name may be given to another account. Without --apply: show what it would
    remove.
    """
    with open_runtime(config_path, connect=False) as rt:
        if not write:
            _show(instance, check_forgettable(rt.config, rt.store, instance), fmt, None)
            return
        stop = stop_on_signals(signals=(signal.SIGTERM,))
        # The reconcile lock: no apply or rollback writes (or leaves in doubt) meanwhile; the
        # instance's pull lock: no process with an older config pulls it meanwhile.
        waits = bool(wait_seconds)
        with (
            stop,
            reconcile_lock(rt.store, waits, wait_seconds, wait_option=True),
            pull_locks(rt.store, [instance], waits, wait_seconds, wait_option=True),
        ):
            check_forgettable(rt.config, rt.store, instance)
            interactive = sys.stdin.isatty() and sys.stderr.isatty()
            if not (yes or interactive):
                # Unlike a large apply, which a scheduled run makes unasked, this purge cannot be
                # undone: off a terminal it is made only when the command line says so.
                raise ForgetRefused(
                    f"forget --apply removes what the store holds of {instance} for good and "
                    "asks first, but there is no terminal to ask at; nothing removed: add --yes"
                )
            question = f"Remove what the state store holds of {terminal_safe(instance)}?"
            if not yes and not confirmed(question):
                raise ForgetRefused(
                    f"not confirmed; nothing removed of {instance} (pass --yes to skip the "
                    "question)"
                )
            run_id, held = rt.store.forget(instance, rt.config.fingerprint())
    _show(instance, held, fmt, run_id)


def _show(instance: str, held: Holdings, fmt: str, run_id: str | None) -> None:
    """What is (`run_id`: was, by that run) held of `instance`, and what becomes of it."""
    if fmt == "json":
        body = {"instance": instance, "applied": run_id is not None, "run_id": run_id}
        sys.stdout.write(json.dumps({**body, "counts": held.as_dict()}, indent=2) + "\n")
        return
    console = plain_console()
    name = terminal_safe(instance)
    counts = held.as_dict()
    title = f"forgot {name} (run {run_id})" if run_id else f"forget {name} (dry run)"
    table = Table(title=title)
    table.add_column("state of it")
    table.add_column("count", justify="right")
    table.add_column("then")
    for key, label, fate in _ROWS:
        table.add_row(label, str(counts[key]), fate)
    console.print(fitted(table, console))
    if run_id is None:
        console.print(
            f"dry run: nothing removed; add --apply to remove it (the name {name} is then free "
            "for another account)",
            markup=False,
        )
        return
    console.print(
        f"the name {name} is free for another account; runs that wrote to it can no longer be "
        "rolled back",
        markup=False,
    )
