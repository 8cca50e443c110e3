"""Apply against the Salesforce + HubSpot sandboxes: convergence, faults, drift, stale plans,
dead letters and rollback; the store on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from connectors.base import NativeUpdate
from sync.apply import apply_plan
from sync.apply_report import Outcome
from sync.cli import main
from sync.plan_json import plan_to_json
from sync.runtime import open_runtime
from sync.store import Store
from tests.apply.conftest import Env, changed_records


def _apply(env: Env, result, run_id: str = "apply-1", **kw):  # type: ignore[no-untyped-def]
    with open_runtime(str(env.config)) as rt:
        return apply_plan(rt, result.plan, run_id=run_id, **kw)


def _write_plan(env: Env, result, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(json.dumps(plan_to_json(result.plan)))
    return path


def test_apply_converges_and_the_next_plan_is_empty(
    env_factory: Callable[..., Env], store_url: str
) -> None:
    env = env_factory(store_url)
    first = env.plan("plan-1")
    assert len(first.plan.changes) >= 5
    report = _apply(env, first, contexts=first.contexts)
    assert report.ok and report.totals()["applied"] == len(first.plan.changes)
    assert env.plan("plan-2").plan.changes == ()  # idempotent: no echo of our own writes
    with Store.open(store_url) as store:
        audit = store.audit.entries(run_id="apply-1")
        assert {(a.instance, a.deal_id, a.field) for a in audit} == {
            (c.system, c.id, c.field) for c in first.plan.changes
        }
        assert not any("token" in json.dumps([a.before, a.after]) for a in audit)
        # the written values are the entities' bases now
        bases = store.bases({c.entity for c in first.plan.changes})
        assert len(bases) == len({c.entity for c in first.plan.changes})


def test_apply_through_429_5xx_resets_and_partial_batches_loses_and_duplicates_nothing(
    env_factory: Callable[..., Env], tmp_path: Path
) -> None:
    clean = env_factory(f"sqlite:///{tmp_path / 'clean.db'}", name="clean")
    clean_plan = clean.plan()
    _apply(clean, clean_plan)
    faulty = env_factory(f"sqlite:///{tmp_path / 'faulty.db'}", name="faulty")
    plan = faulty.plan()
    faulty.faults(rate429=0.2, error5xx=0.15, drop=0.1, record_fail=0.3, retry_after=0, seed=3)
    report = _apply(faulty, plan)
    assert report.totals()["failed"] > 0  # partial batches: some records refused...
    assert report.totals()["applied"] > 0  # ...the others written
    faulty.faults()
    again = _apply(faulty, plan, run_id="apply-2")  # the same plan, resumed
    assert again.ok
    assert faulty.plan("plan-3").plan.changes == ()
    assert faulty.dump() == clean.dump()


def test_a_drifted_record_is_skipped_and_reported_the_rest_applied(env: Env) -> None:
    result = env.plan()
    victim = result.plan.changes[0]
    with open_runtime(str(env.config)) as rt:
        native = rt.connectors[victim.system]
        field = "Description" if victim.system == "salesforce" else "description"
        native.update_deals([NativeUpdate(victim.id, {field: "edited by a person"})])
    report = _apply(env, result)
    drifted = {(r.system, r.id) for r in report.drifted}
    assert drifted == {(victim.system, victim.id)}
    assert "modified at" in (report.drifted[0].reason or "")
    assert report.totals()["applied"] == sum(
        1 for c in result.plan.changes if (c.system, c.id) != (victim.system, victim.id)
    )


def test_a_stale_or_foreign_plan_is_refused_without_writes(env: Env, tmp_path: Path) -> None:
    result = env.plan()
    old = dataclasses.replace(result, plan=dataclasses.replace(
        result.plan, created_at=datetime.now(UTC) - timedelta(days=2)))  # fmt: skip
    foreign = dataclasses.replace(
        result, plan=dataclasses.replace(result.plan, config_fingerprint="0" * 64)
    )
    runner = CliRunner()
    for variant, words in ((old, "older than push.plan_max_age"), (foreign, "different config")):
        path = _write_plan(env, variant, tmp_path / "plan.json")
        out = runner.invoke(main, ["apply", str(path), "--config", str(env.config)])
        assert out.exit_code == 2, out.output
        assert words in out.output and len(out.output.strip().splitlines()) == 1
    assert env.writes() == 0


def test_max_changes_refuses_an_oversized_plan(env_factory: Callable[..., Env], tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = env_factory(f"sqlite:///{tmp_path / 's.db'}", max_changes=2)
    path = _write_plan(env, env.plan(), tmp_path / "plan.json")
    out = CliRunner().invoke(main, ["apply", str(path), "--config", str(env.config)])
    assert out.exit_code == 3 and "push.max_changes" in out.output
    assert env.writes() == 0


def test_cli_apply_then_runs_then_rollback_restores_before_values(env: Env, tmp_path: Path) -> None:
    before = env.deals()
    result = env.plan()
    path = _write_plan(env, result, tmp_path / "plan.json")
    runner = CliRunner()
    out = runner.invoke(main, ["apply", str(path), "--config", str(env.config), "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["totals"]["applied"] == len(result.plan.changes)
    run_id = body["run_id"]
    assert env.deals() != before
    runs = json.loads(runner.invoke(main, ["runs", "--config", str(env.config),
                                           "--format", "json"]).output)  # fmt: skip
    assert runs[0]["id"] == run_id and runs[0]["counts"]["totals"]["applied"] > 0
    dry = runner.invoke(main, ["rollback", run_id, "--config", str(env.config)])
    assert dry.exit_code == 0 and "nothing written" in dry.output
    out = runner.invoke(main, ["rollback", run_id, "--config", str(env.config), "--apply"])
    assert out.exit_code == 0, out.output
    assert env.deals() == before
    # applying the same plan again resumes: everything is done already, nothing is re-sent
    writes = env.writes()
    again = runner.invoke(main, ["apply", str(path), "--config", str(env.config)])
    assert again.exit_code == 0 and env.writes() == writes


def test_rollback_reports_a_field_changed_again_instead_of_overwriting(env: Env) -> None:
    result = env.plan()
    _apply(env, result, run_id="apply-1")
    victim = next(c for c in result.plan.changes if c.field in ("close_date", "probability"))
    with open_runtime(str(env.config)) as rt:
        connector = rt.connectors[victim.system]
        field = {
            ("salesforce", "close_date"): "CloseDate",
            ("hubspot", "close_date"): "closedate",
            ("salesforce", "probability"): "Probability",
            ("hubspot", "probability"): "hs_deal_stage_probability",
        }[(victim.system, victim.field)]
        value = "2031-01-01" if victim.field == "close_date" else 0.42
        connector.update_deals([NativeUpdate(victim.id, {field: value})])
    out = CliRunner().invoke(
        main, ["rollback", "apply-1", "--config", str(env.config), "--apply", "--format", "json"]
    )
    body = json.loads(out.stdout)  # stderr: the note that the next reconcile plans it again
    drifted = [r for r in body["results"] if r["outcome"] == "drifted"]
    assert [(r["id"], r["field"]) for r in drifted] == [(victim.id, victim.field)]


def test_a_record_that_keeps_failing_is_dead_lettered_and_never_blocks_others(
    env_factory: Callable[..., Env], tmp_path: Path
) -> None:
    env = env_factory(f"sqlite:///{tmp_path / 's.db'}", max_attempts=2)
    result = env.plan()
    victim = sorted(changed_records(result.plan))[0]
    env.faults(fail_ids=(victim[1],))
    outcomes = []
    for attempt in range(3):
        report = _apply(env, result, run_id=f"apply-{attempt}")
        mine = {r.outcome for r in report.results if (r.system, r.id) == victim}
        outcomes.append(mine)
        assert all(r.outcome in (Outcome.APPLIED, Outcome.DONE_BEFORE)
                   for r in report.results if (r.system, r.id) != victim)  # fmt: skip
    assert outcomes == [{Outcome.FAILED}, {Outcome.DEAD}, {Outcome.DEAD}]
    assert report.failed[0].reason and "dead-lettered" in report.failed[0].reason
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        dead = store.failures.records(dead=True)
        assert {(f.instance, f.deal_id) for f in dead} == {victim}
