"""`crmsync runs`: the run history, newest first, with what each run wrote."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from config.schema import RESERVED_ENTRY_NAMES
from mapping.model import format_utc
from sync.commands import config_option
from sync.rollback import rolled_back
from sync.runtime import open_runtime
from sync.store_records import ROLLBACK_PLAN_PREFIX, RunKind, RunRecord
from sync.terminal import cell, counted, id_column, plain_console, terminal_safe

__all__ = ["command"]

# Below this width the table would fold kinds, times and counts mid-word: each run takes two
# lines instead, the second indented (what it did).
_NARROW = 120
_MAX_LIMIT = 2**63 - 1  # a database LIMIT's largest


@click.command("runs")
@config_option
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              callback=lambda _ctx, _param, value: _clamped(value))  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def command(config_path: str, limit: int, fmt: str) -> None:
    """List recent runs (id, kind, status, times, counts); ids feed `crmsync rollback`. A run of
    a schedule entry names the entry after its kind."""
    with open_runtime(config_path, connect=False) as rt:
        runs = rt.store.runs.recent(limit)
    if fmt == "json":
        sys.stdout.write(json.dumps([_json(r) for r in runs], indent=2) + "\n")
        return
    console = plain_console()
    if console.width < _NARROW:
        for line in _lines(runs, console.width):
            # a Text: a CRM's error text naming `:rocket:` must not come out as an emoji
            console.print(Text(line), soft_wrap=True)
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
            r.id, cell(*_kind(r)), r.status.value, f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{seconds:.1f}" if seconds is not None else "-", _counts(r.counts),
            cell(r.error or ""),
        )  # fmt: skip
    console.print(table)


def _clamped(limit: int) -> int:
    """At most what a database LIMIT takes: a larger --limit means all of them (one below 1 is
    a usage error, not 1)."""
    return min(limit, _MAX_LIMIT)


def _lines(runs: Sequence[RunRecord], width: int) -> Iterator[str]:
    """The runs for a narrow terminal: id, kind, status and start on one line (75 columns at
    most), then the duration, counts and error, wrapped at word boundaries."""
    if not runs:
        yield "no runs recorded in this store yet"
        return
    kinds = max(len(r.kind.value) for r in runs)
    statuses = max(len(r.status.value) for r in runs)
    yield "runs, newest first (started in UTC)"
    for r in runs:
        yield (
            f"{r.id}  {r.kind.value:<{kinds}}  {r.status.value:<{statuses}}  "
            f"{r.started_at:%Y-%m-%d %H:%M}"
        )
        seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
        took = f"{seconds:.1f} s" if seconds is not None else "not finished"
        entry = [terminal_safe(e) for e in _kind(r)[1:]]
        parts = [*entry, took, _counts(r.counts)]
        parts.append(f"error: {terminal_safe(r.error)}" if r.error else "")
        text = "; ".join(part for part in parts if part)
        yield from textwrap.wrap(
            text, max(width, 40), initial_indent="    ", subsequent_indent="    "
        )


def _kind(r: RunRecord) -> tuple[str, ...]:
    """The run's kind, then the run a rollback undid or the schedule entry that ran it, if one
    did (crmsync's own commands record their runs under their own names, which entries cannot
    take)."""
    if r.kind is RunKind.ROLLBACK and isinstance(plan := r.counts.get("plan"), str):
        return r.kind.value, f"of {plan.removeprefix(ROLLBACK_PLAN_PREFIX)}"
    if r.job in RESERVED_ENTRY_NAMES or r.kind is RunKind.FORGET:
        return (r.kind.value,)
    return r.kind.value, f"entry {r.job}"


def _counts(counts: dict[str, Any]) -> str:
    """What the run wrote, then whether a rollback undid it, whole or some of its entities."""
    done = rolled_back(counts)
    rolled = (
        "rolled back" if done.whole
        else f"partly rolled back ({counted(len(done.entities), 'entity', 'entities')})"
        if done.entities else ""
    )  # fmt: skip
    return "; ".join(part for part in (_written(counts), rolled) if part)


def _written(counts: dict[str, Any]) -> str:
    """Plan counts that are not zero, then what an apply did (`applied` from a reconcile); for
    a pull, what each instance read."""
    pulled = [
        f"{k}: {_pulled(v)}" for k, v in counts.items() if isinstance(v, dict) and "fetched" in v
    ]
    if pulled:
        return "; ".join(pulled)
    planned = ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, int) and v)
    if isinstance(counts.get("instance"), str):  # a forget's: what it removed of which
        return f"{counts['instance']}: {planned}"[:160]
    totals = counts.get("totals") or counts.get("applied")
    if isinstance(totals, dict):
        done = ", ".join(f"{k} {v}" for k, v in totals.items() if v)
        return f"{planned}; {done}" if planned and done else planned or done
    return planned[:160]


def _pulled(report: dict[str, Any]) -> str:
    """As the pull table's columns say it, those after `saved` only when not zero. `unmapped`:
    the deals read in a native stage the stage map lacks (a run recorded before crmsync counted
    them has no `unmapped_deals`: it shows none). An instance that could not be pulled says so
    first, as the pull table's `mode` does: its zeros are no count of its deals."""
    skipped = len(report.get("errors") or ())
    unmapped = report.get("unmapped_deals")
    parts = ["failed"] if report.get("failure") else []
    parts += [f"fetched {report['fetched']}", f"saved {report.get('saved', 0)}"]
    parts += [f"renamed {report['renamed']}"] if report.get("renamed") else []
    parts += [f"deleted {report['deleted']}"] if report.get("deleted") else []
    parts += [f"skipped {skipped}"] if skipped else []
    return ", ".join(parts + ([f"unmapped {unmapped}"] if unmapped else []))


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
