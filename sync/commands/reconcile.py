"""`crmsync reconcile`: pull, match, diff and plan; print the plan; apply it unless --dry-run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console

from sync.commands import config_option
from sync.errors import LimitsExceeded
from sync.plan import plan_to_json
from sync.plan_render import render_plan
from sync.reconcile import plan_run
from sync.runtime import Runtime, open_runtime, progress_reporter

__all__ = ["command", "write_plan"]


def write_plan(plan_json: dict, path: Path) -> None:  # type: ignore[type-arg]
    """Atomically: a reader never sees half a plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan_json, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


@click.command("reconcile")
@config_option
@click.option("--dry-run", is_flag=True, help="Plan only: write nothing to any CRM.")
@click.option("--plan-out", type=click.Path(path_type=Path), default=None,
              help="Also save the plan (JSON) here, for review and `crmsync apply`.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--full", is_flag=True, help="Pull everything, not just changes since last run.")
@click.option("--yes", is_flag=True, help="Apply without asking, even above push.confirm_above.")
def command(
    config_path: str, dry_run: bool, plan_out: Path | None, fmt: str, full: bool, yes: bool
) -> None:
    """Reconcile the configured CRMs (always shows the plan first)."""
    with open_runtime(config_path) as rt:
        kind = "reconcile-dry-run" if dry_run else "reconcile"
        run_id = rt.store.start_run("reconcile", kind, rt.config.fingerprint())
        try:
            with progress_reporter(list(rt.connectors), enabled=None) as progress:
                result = plan_run(rt.config, rt.store, rt.connectors, run_id=run_id, full=full,
                                  progress=progress)  # fmt: skip
        except Exception as exc:
            rt.store.finish_run(run_id, "failed", calls=rt.calls(), error=str(exc))
            raise
        plan_json = plan_to_json(result.plan)
        if plan_out is not None:
            write_plan(plan_json, plan_out)
        if fmt == "json":
            click.echo(json.dumps(plan_json, indent=2, ensure_ascii=False))
        else:
            render_plan(plan_json, result.deals, Console())
            if plan_out is not None:
                click.echo(f"plan written to {plan_out}")
        counts = {k: len(plan_json[k]) for k in ("changes", "creates", "conflicts", "unmatched",
                                                  "ambiguous", "duplicates", "errors")}  # fmt: skip
        status = "ok"
        if not dry_run:
            status = _apply(rt, result, run_id, yes)
        rt.store.finish_run(run_id, status, counts=counts, calls=rt.calls())
        _check_limits(rt, counts)


def _apply(rt: Runtime, result: object, run_id: str, yes: bool) -> str:
    from sync.apply import apply_from_reconcile  # the apply engine (issue 8)

    return apply_from_reconcile(rt, result, run_id=run_id, yes=yes)


def _check_limits(rt: Runtime, counts: dict[str, int]) -> None:
    limits = rt.config.limits
    breached = []
    if limits.max_conflicts is not None and counts["conflicts"] > limits.max_conflicts:
        breached.append(f"{counts['conflicts']} conflicts (limit {limits.max_conflicts})")
    if limits.max_unmatched is not None and counts["unmatched"] > limits.max_unmatched:
        breached.append(f"{counts['unmatched']} unmatched deals (limit {limits.max_unmatched})")
    if breached:
        raise LimitsExceeded("reconcile limits exceeded: " + "; ".join(breached))
