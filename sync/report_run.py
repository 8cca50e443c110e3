"""Build and render the health report for a run (`crmsync report`, scheduled report jobs)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from config import Config
from config.base import did_you_mean
from sync.connect import lookup_lag_for
from sync.errors import UsageError, run_error
from sync.health import build_health
from sync.health_model import HealthReport, ReportFilters
from sync.locks import Budget
from sync.outfile import write_atomically
from sync.pull import failure_of, pull
from sync.reconcile import analyze
from sync.report_inputs import health_inputs, last_syncs
from sync.report_render import (
    MISMATCH_COLUMNS,
    mismatch_rows,
    to_csv,
    to_html,
    to_json,
    to_table,
)
from sync.runtime import Runtime, progress_reporter
from sync.schema import one_snapshot
from sync.shutdown import STOPPED, Stopped, Terminated
from sync.store_records import RunRecord, RunStatus
from sync.terminal import plain_console

__all__ = ["FORMATS", "build_report", "check_filters", "render_report", "write_text"]

_log = logging.getLogger("crmsync.report")

FORMATS = ("table", "json", "html", "csv")


CTRL_C = "interrupted (Ctrl-C)"


def build_report(
    rt: Runtime,
    *,
    job: str = "report",
    refresh: bool = False,
    since: date | None = None,
    filters: ReportFilters | None = None,
    wait: Budget | None = None,
) -> HealthReport:
    """`filters`: --funnel, --system and --until (`check_filters`); `since` is --since.
    With `refresh`, a pull of an instance that another process runs is waited for up to
    what is left of `wait` (the command's --wait; None: DEFAULT_WAIT, for a caller without
    one)."""
    run_id = rt.store.runs.start(job, "report", rt.config.fingerprint())
    started = datetime.now(UTC)
    pulled: dict[str, dict[str, int]] = {}
    try:
        with progress_reporter(list(rt.connectors) if refresh else []) as bars:
            if refresh:
                pulls = pull(rt.config, rt.store, rt.connectors, run_id=run_id,
                             progress=bars, wait=wait)  # fmt: skip
                # as reconcile: never a report of stale data that claims to be fresh
                if (failure := failure_of(pulls)) is not None:
                    raise failure
                pulled = {name: p.calls for name, p in pulls.items()}
            phase = bars.phase if bars is not None else None
            # One state of the store, however long the reading: a reconcile, an apply or a pull
            # of another process may write meanwhile (a report takes no reconcile lock).
            with one_snapshot(rt.store.engine):
                # the deals as crmsync last knows them: an apply since the pull updated no
                # snapshot
                syncs = last_syncs(rt.store, list(rt.config.systems))
                for name in rt.config.systems:
                    if rt.store.cursor_saved_at(name) is not None:  # a pull read it through
                        continue
                    # Its rows would read "n/a" and zeros, as for an empty pipeline.
                    _log.warning(
                        "%s: never pulled, so the report holds none of its deals: run "
                        "`crmsync pull` (or this report with --refresh) first",
                        name,
                    )
                unread_since = _unread_since(rt, syncs, started if refresh else None)
                result = analyze(rt.config, rt.store, run_id=run_id, remember=False,
                                 phase=phase, known_writes=True,
                                 unread_since=unread_since)  # fmt: skip
                inputs = health_inputs(
                    rt.config, rt.store, result, now=datetime.now(UTC), since=since,
                    filters=filters, pulled=pulled, syncs=syncs,
                )  # fmt: skip
        report = build_health(inputs)
        if missing := _without_rate(report, rt.config.report.rates):
            _log.warning(
                "report.currency is %s, but report.rates has no rate for %s: their amounts are "
                "in no converted figure",
                report.report_currency,
                ", ".join(missing),
            )
    except KeyboardInterrupt as exc:  # as pull: `crmsync runs` must not show it running forever
        why = STOPPED if isinstance(exc, Terminated) else CTRL_C
        rt.store.runs.finish(run_id, RunStatus.INTERRUPTED, calls=rt.calls(), error=why)
        raise
    except Stopped as exc:  # a stop (SIGTERM) while waiting for another process's pull, or
        # between two chunks of the refresh's own pull
        rt.store.runs.finish(run_id, RunStatus.INTERRUPTED, calls=rt.calls(), error=str(exc))
        raise
    except Exception as exc:
        rt.store.runs.finish(run_id, "failed", calls=rt.calls(), error=run_error(exc))
        raise
    rt.store.runs.finish(run_id, "ok", counts={"breached": len(report.breached)}, calls=rt.calls())
    return report


def check_filters(config: Config, filters: ReportFilters, today: date) -> None:
    """UsageError for a funnel or instance the config lacks, or `since` after `until`; one
    warning for a `since` after `today` (a day in report.timezone): no deal was created or
    updated then, so the report is empty, yet a scheduled script may mean it."""
    for option, names, known in (
        ("--funnel", filters.funnels, config.funnels),
        ("--system", filters.systems, config.systems),
    ):
        for name in names:
            if name not in known:
                raise UsageError(
                    f"{option} {name!r}: no such {option[2:]} in the config"
                    f"{did_you_mean(name, known)}; it has: {', '.join(known)}"
                )
    if filters.since and filters.until and filters.since > filters.until:
        raise UsageError(
            f"--since {filters.since} is after --until {filters.until}: no day is in both"
        )
    if filters.since and filters.since > today:
        _log.warning(
            "--since %s is after today (%s in %s): no deal was created or updated since, so the "
            "report is empty",
            filters.since,
            today,
            config.report.timezone,
        )


def _without_rate(report: HealthReport, rates: Mapping[str, object]) -> list[str]:
    """The currencies of the report's amounts that no rate converts into `report.currency`:
    a total in it would read as complete (without any rate, nothing is converted at all)."""
    if report.report_currency is None:
        return []
    c = report.consolidated
    held = {*c.open_amount, *c.won_amount}
    held.update(code for f in report.funnels.values() for s in f.stages for code in s.amount)
    return sorted(held - {report.report_currency, *rates})


def _unread_since(
    rt: Runtime, syncs: Mapping[str, RunRecord], pulled_at: datetime | None
) -> dict[str, datetime]:
    """Per instance pulled: from when on a copy crmsync created and no pull read yet counts
    (`sync.known_writes.with_known_writes`). An older one, which the last pull (begun at
    `pulled_at`, else by the last successful run that pulled it, `syncs`) would have found
    past its CRM's lookup lag, was deleted before it was read, as the reconcile after that
    pull took it to be."""
    began = (
        dict.fromkeys(rt.config.systems, pulled_at)
        if pulled_at
        else {name: run.started_at for name, run in syncs.items()}
    )
    return {
        name: at - lookup_lag_for(rt.config, name, rt.connector_options)
        for name, at in began.items()
    }


def render_report(report: HealthReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return to_html(report)
    if fmt == "csv":
        buffer = io.StringIO()
        to_csv(mismatch_rows(report), buffer, MISMATCH_COLUMNS)
        return buffer.getvalue()
    buffer = io.StringIO()
    to_table(report, plain_console(file=buffer, width=120, force_terminal=False))
    return buffer.getvalue()


def write_text(text: str, out: Path, *, what: str = "--out") -> None:
    """Atomically, so a dashboard never serves half a report. `what` names `out` in an error."""
    write_atomically(out, text, what=what)
