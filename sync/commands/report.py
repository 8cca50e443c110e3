"""`crmsync report`: cross-system pipeline health from the state store (`--refresh` pulls first)."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console

from sync.commands import config_option
from sync.errors import LimitsExceeded, UsageError
from sync.health import build_health
from sync.health_model import HealthReport
from sync.pull import pull
from sync.reconcile import analyze
from sync.report_inputs import health_inputs
from sync.report_render import mismatch_rows, to_csv, to_html, to_json, to_table
from sync.runtime import Runtime, open_runtime, progress_reporter

__all__ = ["build_report", "command", "render_report"]

FORMATS = ("table", "json", "html", "csv")


def build_report(rt: Runtime, *, refresh: bool = False, since: date | None = None) -> HealthReport:
    run_id = rt.store.start_run("report", "report", rt.config.fingerprint())
    try:
        if refresh:
            with progress_reporter(list(rt.connectors)) as progress:
                pull(rt.config, rt.store, rt.connectors, run_id=run_id, progress=progress)
        result = analyze(rt.config, rt.store, run_id=run_id, remember=False)
        report = build_health(
            health_inputs(rt.config, rt.store, result, now=datetime.now(UTC), since=since)
        )
    except Exception as exc:
        rt.store.finish_run(run_id, "failed", calls=rt.calls(), error=str(exc))
        raise
    rt.store.finish_run(run_id, "ok", counts={"breached": len(report.breached)}, calls=rt.calls())
    return report


def render_report(report: HealthReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        buffer = io.StringIO()
        to_csv(mismatch_rows(report), buffer)
        return buffer.getvalue()
    buffer = io.StringIO()
    to_table(report, Console(file=buffer, width=120, force_terminal=False))
    return buffer.getvalue()


def _write(text: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


@click.command("report")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write to this file.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only deals created or updated since this date (YYYY-MM-DD).")  # fmt: skip
@click.option("--refresh", is_flag=True, help="Pull from the CRMs first.")
def command(
    config_path: str, fmt: str, out: Path | None, since: datetime | None, refresh: bool
) -> None:
    """Pipeline health per system, per funnel and consolidated; exit 3 on breached thresholds."""
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name")
    with open_runtime(config_path, connect=refresh) as rt:
        report = build_report(rt, refresh=refresh, since=since.date() if since else None)
    if fmt == "table" and out is None:
        to_table(report, Console())
    else:
        text = render_report(report, fmt)
        if out is None:
            click.echo(text, nl=False)
        else:
            _write(text, out)
            click.echo(f"report written to {out}", err=True)
    if report.breached:
        names = ", ".join(t.name for t in report.breached)
        raise LimitsExceeded(f"report thresholds breached: {names}")
