"""`crmsync runs`: the run history, newest first, with what each run wrote."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from mapping.model import format_utc
from sync.commands import config_option
from sync.runtime import open_runtime
from sync.store_records import RunRecord
from sync.terminal import cell, id_column, plain_console

__all__ = ["command"]


@click.command("runs")
@config_option
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def command(config_path: str, limit: int, fmt: str) -> None:
    """List recent runs (id, kind, status, times, counts); ids feed `crmsync rollback`."""
    with open_runtime(config_path, connect=False) as rt:
        runs = rt.store.runs(limit)
    if fmt == "json":
        sys.stdout.write(json.dumps([_json(r) for r in runs], indent=2) + "\n")
        return
    table = Table(title="runs")
    # the id is what `rollback` takes: never cut, the other columns fold on a narrow terminal
    id_column(table, "run id", (r.id for r in runs))
    for column in ("kind", "status", "started (UTC)", "s"):
        table.add_column(column, overflow="fold")
    table.add_column("counts", overflow="fold", ratio=2)
    table.add_column("error", overflow="fold", ratio=1)
    for r in runs:
        seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
        table.add_row(
            r.id, r.kind.value, r.status.value, f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{seconds:.1f}" if seconds is not None else "-", _counts(r.counts),
            cell(r.error or ""),
        )  # fmt: skip
    plain_console().print(table)


def _counts(counts: dict[str, Any]) -> str:
    """Plan counts that are not zero, then what an apply did (`applied` from a reconcile); for
    a pull, what each instance read."""
    pulled = [
        f"{k}: {_pulled(v)}" for k, v in counts.items() if isinstance(v, dict) and "fetched" in v
    ]
    if pulled:
        return "; ".join(pulled)
    planned = ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, int) and v)
    totals = counts.get("totals") or counts.get("applied")
    if isinstance(totals, dict):
        done = ", ".join(f"{k} {v}" for k, v in totals.items() if v)
        return f"{planned}; {done}" if planned and done else planned or done
    return planned[:160]


def _pulled(report: dict[str, Any]) -> str:
    skipped = len(report.get("errors") or ())
    parts = [f"fetched {report['fetched']}", f"saved {report.get('saved', 0)}"]
    parts += [f"deleted {report['deleted']}"] if report.get("deleted") else []
    return ", ".join(parts + ([f"skipped {skipped}"] if skipped else []))


def _json(r: RunRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "kind": r.kind.value,
        "status": r.status.value,
        "started_at": format_utc(r.started_at),
        "finished_at": format_utc(r.finished_at) if r.finished_at else None,
        "counts": r.counts,
        "calls": r.calls,
        "error": r.error,
    }
