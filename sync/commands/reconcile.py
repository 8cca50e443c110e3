"""`crmsync reconcile`: pull, match, diff and plan; print the plan; apply it unless --dry-run."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click

from config import Config
from mapping.model import Deal, Ref
from sync.commands import config_option, wait_option
from sync.errors import CrmsyncError, LimitsExceeded
from sync.locks import DEFAULT_WAIT, Budget, reconcile_lock
from sync.outfile import check_not_ours, check_writable
from sync.plan_render import render_plan
from sync.reconcile_run import run_reconcile, verdict
from sync.runtime import open_runtime, progress_reporter
from sync.shutdown import stop_event, stop_on_signals
from sync.store import Store
from sync.terminal import plain_console
from sync.unmatched_fate import CopyRules

__all__ = ["command"]


@click.command("reconcile")
@config_option
@click.option("--dry-run", is_flag=True, help="Plan only: write nothing to any CRM.")
@click.option(
    "--plan-out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also save the plan (JSON) here, for review and `crmsync apply`.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--full", is_flag=True, help="Pull everything, not just changes since last run.")
@click.option("--yes", is_flag=True, help="Apply without asking, even above push.confirm_above.")
@wait_option(
    "in all for another reconcile of this store (default: exit) and for another process's "
    f"pull of its instances (default: {DEFAULT_WAIT:g}s)"
)
def command(
    config_path: str,
    dry_run: bool,
    plan_out: Path | None,
    fmt: str,
    full: bool,
    yes: bool,
    wait_seconds: float | None,
) -> None:
    """Reconcile the configured CRMs (always shows the plan first)."""
    if plan_out is not None:
        check_writable(plan_out, what="--plan-out")
    # SIGTERM (a scheduler, systemd, Kubernetes) finishes the current batch; Ctrl-C aborts at
    # once, which the journal makes safe too.
    with open_runtime(config_path) as rt, stop_on_signals(signals=(signal.SIGTERM,)):
        if plan_out is not None:
            check_not_ours(plan_out, what="--plan-out", config=rt.config)
        # One reconcile per store at a time (an advisory lock on PostgreSQL): two would pull
        # the same cursors and plan the same writes. --wait bounds this wait and the one for
        # the pull locks together; SIGTERM ends either at once.
        budget = Budget(wait_seconds)
        lock = reconcile_lock(
            rt.store, wait=budget.waits, timeout=wait_seconds, wait_option=True, budget=budget
        )
        with lock, progress_reporter(list(rt.connectors)) as progress:
            outcome = run_reconcile(
                rt,
                dry_run=dry_run,
                full=full,
                yes=yes,
                plan_out=plan_out,
                progress=progress,
                stop=stop_event,
                show=lambda plan_json, deals: _show(
                    plan_json, deals, fmt, plan_out, rt.store, rt.config
                ),
                pull_wait=budget,
            )
        code, detail = verdict(rt.config, outcome)
    if code == LimitsExceeded.exit_code:
        raise LimitsExceeded(detail)
    if code:
        if detail:  # one line on stderr, as `crmsync apply` ends
            raise ReconcileIncomplete(detail)
        raise click.exceptions.Exit(code)


class ReconcileIncomplete(CrmsyncError):
    """The plan was made, but some of its changes were not applied (or a stop ended it)."""

    exit_code = 1


def _show(
    plan_json: dict[str, Any],
    deals: dict[Ref, Deal],
    fmt: str,
    plan_out: Path | None,
    store: Store,
    config: Config,
) -> None:
    """The plan is shown before anything is applied: ops read it first."""
    if fmt == "json":
        click.echo(json.dumps(plan_json, indent=2, ensure_ascii=False))
        return
    dead = {(f.instance, f.deal_id, f.field) for f in store.failures.records(dead=True)}
    render_plan(plan_json, deals, plain_console(), dead, _kinds(config), _copy_rules(config))
    if plan_out is not None:
        click.echo(f"plan written to {plan_out}")


def _copy_rules(config: Config) -> CopyRules:
    push = config.push
    return CopyRules(
        push.create_missing, push.create_from, config.push_targets, tuple(config.systems)
    )


def _kinds(config: Config) -> dict[str, str]:
    """Instance name -> kind: the words the plan's table names each CRM's accounts by."""
    return {name: system.kind for name, system in config.systems.items()}
