"""`crmsync demo`: three CRM sandboxes, sample data, a dry-run plan and a health report.

Everything runs in-process against real HTTP servers on 127.0.0.1 and the real client
libraries, exactly as a production run would against real CRMs; only the URLs differ.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sandbox.generator import generate_full, write_generated
from connectors.sandbox.launcher import start_sandbox
from sync.errors import UsageError, run_error
from sync.health import build_health
from sync.health_model import HealthReport
from sync.plan_json import plan_to_json
from sync.reconcile import analyze, plan_run
from sync.report_inputs import health_inputs
from sync.report_run import render_report
from sync.runtime import Runtime, open_runtime
from sync.sandbox_config import is_sandbox_config, write_sandbox_config
from sync.store_records import RunKind, RunStatus

__all__ = ["DemoResult", "run_demo"]

Step = Callable[[str], None]


@dataclass
class DemoResult:
    out: Path
    config: Path
    dataset: Path
    planted: Path
    plan: Path
    report_html: Path
    report_json: Path
    plan_json: dict[str, Any] = field(repr=False, default_factory=dict)
    report: HealthReport | None = field(repr=False, default=None)
    planted_kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def run_demo(
    out: Path, *, deals: int = 1500, seed: int = 42, step: Step = lambda _: None
) -> DemoResult:
    started = datetime.now(UTC)
    _refuse_foreign_files(out)
    out.mkdir(parents=True, exist_ok=True)
    step(f"generating {deals} deals per CRM with planted discrepancies")
    today = started.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    generated = generate_full(deals, seed, today)
    dataset_path, planted_path = write_generated(out / "dataset.json", generated)
    result = DemoResult(
        out=out,
        config=out / "crmsync.yaml",
        dataset=dataset_path,
        planted=planted_path,
        plan=out / "plan.json",
        report_html=out / "report.html",
        report_json=out / "report.json",
        planted_kinds=Counter(p["kind"] for p in generated.planted),
    )
    for stale in out.glob("crmsync.db*"):
        stale.unlink()  # a demo always starts from an empty state store
    step("starting the Salesforce, HubSpot and Pipedrive sandboxes")
    with start_sandbox(generated.dataset, workdir=out) as sandbox:
        step("writing the config and proposing stage maps (crmsync init)")
        write_sandbox_config(sandbox.ready_info(), result.config)
        with open_runtime(str(result.config)) as rt:
            step("reconcile --dry-run: pull, match, diff, plan")
            with _recorded(rt, RunKind.RECONCILE_DRY_RUN) as run_id:
                reconciled = plan_run(rt.config, rt.store, rt.connectors, run_id=run_id)
                result.plan_json = plan_to_json(reconciled.plan)
                counts = _counts(result.plan_json)
                rt.store.runs.finish(run_id, RunStatus.OK, counts=counts, calls=rt.calls())
            result.plan.write_text(json.dumps(result.plan_json, indent=2, ensure_ascii=False))
            step("building the pipeline health report")
            with _recorded(rt, RunKind.REPORT) as run_id:
                analysed = analyze(rt.config, rt.store, run_id=run_id, remember=False)
                report = build_health(
                    health_inputs(rt.config, rt.store, analysed, now=datetime.now(UTC))
                )
                breached = {"breached": len(report.breached)}
                rt.store.runs.finish(run_id, RunStatus.OK, counts=breached)
    result.report = report
    result.report_html.write_text(render_report(report, "html"))
    result.report_json.write_text(render_report(report, "json"))
    result.seconds = (datetime.now(UTC) - started).total_seconds()
    return result


@contextmanager
def _recorded(rt: Runtime, kind: RunKind) -> Iterator[str]:
    """A run of the demo's (the body records its end), recorded as interrupted or failed if
    the body ends otherwise: `crmsync runs` on the demo's store must not show it running."""
    run_id = rt.store.runs.start("demo", kind, rt.config.fingerprint())
    try:
        yield run_id
    except KeyboardInterrupt:
        error = "interrupted (Ctrl-C)"
        rt.store.runs.finish(run_id, RunStatus.INTERRUPTED, calls=rt.calls(), error=error)
        raise
    except Exception as exc:
        rt.store.runs.finish(run_id, RunStatus.FAILED, calls=rt.calls(), error=run_error(exc))
        raise


def _refuse_foreign_files(out: Path) -> None:
    """The demo writes crmsync.yaml and empties the state store in `out`: never a user's own
    (`crmsync demo --out .` in a project replaced its config and deleted its crmsync.db)."""
    config = out / "crmsync.yaml"
    ours = is_sandbox_config(config)
    if config.exists() and not ours:
        raise UsageError(
            f"--out {out}: holds a crmsync.yaml the demo did not write, which the demo would "
            "replace; give a new or empty directory"
        )
    if not ours and any(out.glob("crmsync.db*")):
        raise UsageError(
            f"--out {out}: holds a state store (crmsync.db) the demo did not make, which the "
            "demo would delete; give a new or empty directory"
        )


def _counts(plan_json: dict[str, Any]) -> dict[str, int]:
    return {
        key: len(plan_json[key])
        for key in (
            "changes",
            "creates",
            "conflicts",
            "unmatched",
            "ambiguous",
            "duplicates",
            "errors",
        )
    }
