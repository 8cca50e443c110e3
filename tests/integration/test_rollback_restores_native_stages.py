"""`rollback --apply` puts a deal back in the very native stage a run moved it out of, not in
the native stage that funnel stage is written as (`stage_write`): several native stages
may map to one funnel stage (Salesforce "Qualification" and "Needs Analysis" are both
`qualified` in the sandbox's map, HubSpot `appointmentscheduled` and `qualifiedtobuy` too)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from sync import schema
from sync.apply_report import ApplyReport
from sync.apply_run import guarded_apply
from sync.cli import main
from sync.plan import Plan
from sync.rollback import BY_FUNNEL_STAGE, CHECKED_BY_FUNNEL_STAGE
from sync.runtime import open_runtime
from tests.integration.conftest import World, refusing_after
from tests.integration.native_stages import cli_json as _cli
from tests.integration.native_stages import set_stage as _set_stage
from tests.integration.native_stages import stages as _stages

# One entity's copies, each in the second of two native stages its map gives `qualified`.
QUALIFIED = {"salesforce": "Needs Analysis", "hubspot": "qualifiedtobuy", "pipedrive": "2"}
# Where a deal moved to `qualified` is written: the stage_write `crmsync init` proposed.
WRITTEN_QUALIFIED = {"salesforce": "Qualification", "hubspot": "qualifiedtobuy"}


def _run_moving_out_of_qualified(world: World) -> tuple[dict[str, str], str]:
    """The CRMs agree on a deal in `QUALIFIED`; a person moves the Pipedrive copy on to
    proposal, and a run carries that to Salesforce and HubSpot. Returns (copies, run id)."""
    _cli(world, "reconcile", "--yes")  # the first sync: the CRMs agree, bases are stored
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        _set_stage(world, system, ids[system], stage)
    _cli(world, "reconcile", "--yes")  # all three moved alike: agreed, nothing to write
    assert _stages(world, ids) == {s: ("default" if s != "pipedrive" else "1", n)
                                   for s, n in QUALIFIED.items()}  # fmt: skip
    _set_stage(world, "pipedrive", ids["pipedrive"], "4")  # "Proposal Made": proposal
    applied = _cli(world, "reconcile", "--yes")
    mine = [c for c in applied["changes"] if c["id"] in ids.values() and c["field"] == "stage"]
    moved = {(c["system"], c["from"], c["to"]) for c in mine}
    assert moved == {("salesforce", "qualified", "proposal"), ("hubspot", "qualified", "proposal")}
    return ids, applied["run_id"]


def test_rollback_puts_back_the_exact_native_stage_among_several_mapped_to_one_funnel_stage(
    small_world: World,
) -> None:
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)
    assert _stages(world, ids)["hubspot"] == ("default", "presentationscheduled")

    _cli(world, "rollback", run_id, "--apply")

    assert _stages(world, ids) == {
        "salesforce": ("default", "Needs Analysis"),
        "hubspot": ("default", "qualifiedtobuy"),
        "pipedrive": ("1", "4"),  # the person's move, which the run copied
    }
    shown = _cli(world, "rollback", run_id)  # what it wrote, each change marked done
    back = {c["system"]: c for c in shown["changes"] if c["id"] in ids.values()}
    assert back["hubspot"]["to"] == "qualified"
    assert back["hubspot"]["native_to"] == {"pipeline": "default", "native_stage": "qualifiedtobuy"}
    assert back["salesforce"]["native_to"] == {"pipeline": "default",
                                               "native_stage": "Needs Analysis"}  # fmt: skip


def test_the_rollback_table_names_each_stage_it_puts_back_as_the_crm_shows_it(
    small_world: World,
) -> None:
    """The dry rollback reads no CRM: the labels are the ones the run's audit recorded. A run
    audited by an older crmsync (no labels) shows the native stage's id, as before."""
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)

    table = _table(world, run_id)
    assert "qualified (Sales Pipeline / Qualified To Buy)" in table, table
    assert "(native stage qualifiedtobuy)" not in table, table
    shown = _cli(world, "rollback", run_id)
    [hubspot] = [c for c in shown["changes"] if c["id"] == ids["hubspot"] and c["field"] == "stage"]
    assert shown["stage_labels"][hubspot["change_id"]] == {
        "pipeline": "Sales Pipeline",
        "native_stage": "Qualified To Buy",
    }

    with (
        open_runtime(str(world.config), connect=False) as rt,
        schema.transaction(rt.store.engine) as conn,
    ):
        rows = conn.execute(
            select(schema.audit.c.id, schema.audit.c.before).where(
                schema.audit.c.run_id == run_id, schema.audit.c.field == "stage"
            )
        ).all()
        assert all("native_stage_label" in row.before for row in rows), rows
        for row in rows:  # as a crmsync that recorded no labels wrote them
            unlabelled = {k: v for k, v in row.before.items() if not k.endswith("_label")}
            conn.execute(
                update(schema.audit).where(schema.audit.c.id == row.id).values(before=unlabelled)
            )
    assert "qualified (native stage qualifiedtobuy)" in _table(world, run_id)


def _table(world: World, run_id: str) -> str:
    # wide enough for each row's "back to" to stand on one line
    runner = CliRunner(env={"COLUMNS": "250"})
    out = runner.invoke(main, ["rollback", run_id, "--config", str(world.config)])
    assert out.exit_code == 0, out.output
    return out.output


def test_rollback_leaves_a_deal_moved_to_another_pipeline_since_and_reports_it_drifted(
    small_world: World,
) -> None:
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)
    # A person moves the HubSpot copy to the Renewals pipeline, still at proposal ("Quote Sent").
    _set_stage(world, "hubspot", ids["hubspot"], "75210933", pipeline="renewals")

    result = _cli(world, "rollback", run_id, "--apply")

    outcome = {(r["system"], r["field"]): r for r in result["results"] if r["id"] in ids.values()}
    drifted = outcome["hubspot", "stage"]
    assert drifted["outcome"] == "drifted", drifted
    assert "renewals" in drifted["reason"] and "default" in drifted["reason"], drifted["reason"]
    assert _stages(world, ids)["hubspot"] == ("renewals", "75210933")
    assert _stages(world, ids)["salesforce"] == ("default", "Needs Analysis")


def test_a_run_audited_without_native_stages_rolls_back_by_funnel_stage_and_says_so(
    small_world: World,
) -> None:
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)
    _audited_stages_as(world, run_id, before="qualified", after="proposal")  # an older crmsync

    shown = _cli(world, "rollback", run_id)
    back = {c["system"]: c for c in shown["changes"] if c["id"] in ids.values()}
    assert "native_to" not in back["hubspot"] and "native_from" not in back["hubspot"]
    assert BY_FUNNEL_STAGE in back["hubspot"]["reason"], back["hubspot"]["reason"]
    assert CHECKED_BY_FUNNEL_STAGE in back["hubspot"]["reason"], back["hubspot"]["reason"]
    table = CliRunner().invoke(main, ["rollback", run_id, "--config", str(world.config)])
    assert "funnel stage" in table.output, table.output
    _cli(world, "rollback", run_id, "--apply")

    # as before crmsync recorded native stages: the native stage `qualified` is written as
    stages = _stages(world, ids)
    assert {s: stages[s][1] for s in WRITTEN_QUALIFIED} == WRITTEN_QUALIFIED


def test_a_run_audited_without_the_native_stage_it_left_is_checked_by_funnel_stage_and_says_so(
    small_world: World,
) -> None:
    """A run audited by the crmsync before this check (native stage before the write, funnel
    stage alone after it) still rolls back, checked by funnel stage as then, and says so."""
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)
    _audited_stages_as(world, run_id, after="proposal")
    _set_stage(world, "salesforce", ids["salesforce"], "Proposal/Price Quote")  # still proposal

    shown = _cli(world, "rollback", run_id)
    back = {c["system"]: c for c in shown["changes"] if c["id"] in ids.values()}
    assert "native_from" not in back["salesforce"]
    assert back["salesforce"]["native_to"] == {"pipeline": "default",
                                               "native_stage": "Needs Analysis"}  # fmt: skip
    reason = back["salesforce"]["reason"]
    assert CHECKED_BY_FUNNEL_STAGE in reason and BY_FUNNEL_STAGE not in reason, reason
    table = CliRunner().invoke(main, ["rollback", run_id, "--config", str(world.config)])
    assert "2 stage change(s) are checked by funnel stage only" in table.output, table.output
    _cli(world, "rollback", run_id, "--apply")

    assert _stages(world, ids)["salesforce"] == ("default", "Needs Analysis")


def _apply(world: World, plan: Plan, run_id: str) -> ApplyReport:
    options = {"backoff_base": 0.01, "max_attempts": 1}  # the retry schedule is not under test
    with open_runtime(str(world.config), connector_options=options) as rt:
        return guarded_apply(rt, plan, run_id=run_id, yes=True)


@pytest.mark.parametrize("settled_by", ["the same plan again", "the next plan"])
def test_a_stage_write_left_in_doubt_rolls_back_to_its_exact_native_stage(
    small_world: World, settled_by: str
) -> None:
    """Pipedrive writes one call per deal: an apply stopped part-way leaves writes that landed
    in doubt, later audited under it from its journal. Their rollback still knows the native
    stage each deal left."""
    world = small_world
    _apply(world, world.reconcile("first").plan, "apply-0")
    entities = [m for m in world.members().values() if {"salesforce", "pipedrive"} <= m.keys()]
    entities = entities[:8]
    for members in entities:  # all at proposal; Pipedrive in "Proposal Made", not "Demo Scheduled"
        _set_stage(world, "salesforce", members["salesforce"], "Value Proposition")
        _set_stage(world, "pipedrive", members["pipedrive"], "4")
        if "hubspot" in members:
            _set_stage(world, "hubspot", members["hubspot"], "presentationscheduled")
    _apply(world, world.reconcile("agreed").plan, "apply-1")
    for members in entities:  # Salesforce users move them on to negotiation
        _set_stage(world, "salesforce", members["salesforce"], "Negotiation/Review")
    plan = world.reconcile("moved").plan
    planned = {c.id for c in plan.changes if c.system == "pipedrive" and c.field == "stage"}
    assert len(planned) == len(entities)

    with refusing_after(world, "pipedrive", "PATCH /api/v2/deals/{id}", 2):
        stopped = _apply(world, plan, "apply-2")
    assert not stopped.ok
    landed = {i for i in planned if _stages(world, {"pipedrive": i})["pipedrive"][1] == "5"}
    assert landed and landed != planned
    again = plan if settled_by == "the same plan again" else world.reconcile("next").plan
    assert _apply(world, again, "apply-3").ok

    _cli(world, "rollback", "apply-2", "--apply")

    stages = {i: _stages(world, {"pipedrive": i})["pipedrive"] for i in planned}
    assert {i: stages[i] for i in landed} == dict.fromkeys(landed, ("1", "4"))


def test_rollback_keeps_a_move_made_since_to_another_native_stage_of_the_same_funnel_stage(
    small_world: World,
) -> None:
    """The run moved the Salesforce copy to "Proposal/Price Quote" (proposal); a person then moves
    it on to "Value Proposition", proposal too. Its funnel stage is still the one the run
    wrote, but the native stage is the person's: the rollback reports it drifted and keeps it."""
    world = small_world
    ids, run_id = _run_moving_out_of_qualified(world)
    assert _stages(world, ids)["salesforce"] == ("default", "Proposal/Price Quote")
    _set_stage(world, "salesforce", ids["salesforce"], "Value Proposition")

    result = _cli(world, "rollback", run_id, "--apply")

    outcome = {(r["system"], r["field"]): r for r in result["results"] if r["id"] in ids.values()}
    drifted = outcome["salesforce", "stage"]
    assert drifted["outcome"] == "drifted", drifted
    assert "Value Proposition" in drifted["reason"], drifted["reason"]
    assert "Proposal/Price Quote" in drifted["reason"], drifted["reason"]
    assert outcome["hubspot", "stage"]["outcome"] == "applied"
    assert _stages(world, ids) == {
        "salesforce": ("default", "Value Proposition"),  # the person's move, kept
        "hubspot": ("default", "qualifiedtobuy"),
        "pipedrive": ("1", "4"),
    }
    shown = _cli(world, "rollback", run_id)  # the check, in the plan: what the run left there
    back = {c["system"]: c for c in shown["changes"] if c["id"] in ids.values()}
    left = {"pipeline": "default", "native_stage": "Proposal/Price Quote"}
    assert back["salesforce"]["native_from"] == left


def test_rollback_of_a_reopened_deal_moved_since_within_its_funnel_stage_neither_closes_it(
    small_world: World,
) -> None:
    """A run reopens a won deal in HubSpot ("Decision Maker Bought-In", negotiation); a person
    moves it on to "Contract Sent", negotiation too. Its rollback (stage back to won, status
    back to won) is drifted as a whole: HubSpot closes a deal only by its stage, so writing the
    status alone would overwrite the person's move as surely as writing the stage."""
    world = small_world
    ids, applied = _reopened_by_a_run(world)
    written = {(c["system"], c["field"]) for c in applied["changes"] if c["id"] == ids["hubspot"]}
    assert {("hubspot", "stage"), ("hubspot", "status")} <= written
    assert _stages(world, ids)["hubspot"] == ("default", "decisionmakerboughtin")
    _set_stage(world, "hubspot", ids["hubspot"], "contractsent")

    result = _cli(world, "rollback", applied["run_id"], "--apply")

    mine = {ids["hubspot"], ids["pipedrive"]}
    outcome = {(r["system"], r["field"]): r for r in result["results"] if r["id"] in mine}
    assert outcome["hubspot", "stage"]["outcome"] == "drifted", outcome
    assert outcome["hubspot", "status"]["outcome"] == "drifted", outcome
    assert _stages(world, ids)["hubspot"] == ("default", "contractsent")
    # Pipedrive, which reopens in place (stage kept, status open), is closed again as it was
    assert outcome["pipedrive", "stage"]["outcome"] == "applied", outcome
    assert _status(world, ids["pipedrive"]) == "won"


def _reopened_by_a_run(world: World) -> tuple[dict[str, str], Any]:
    """A deal won in all three CRMs, reopened in Salesforce ("Negotiation/Review"); a run
    carries the reopening to HubSpot and Pipedrive. Returns (copies, the run's JSON result)."""
    _cli(world, "reconcile", "--yes")
    ids = next(m for m in world.members().values() if len(m) == 3)
    _set_stage(world, "salesforce", ids["salesforce"], "Closed Won")
    _set_stage(world, "hubspot", ids["hubspot"], "closedwon")
    _set_status(world, ids["pipedrive"], "won")
    _cli(world, "reconcile", "--yes")  # all three closed alike: agreed
    _set_stage(world, "salesforce", ids["salesforce"], "Negotiation/Review")  # reopened
    return ids, _cli(world, "reconcile", "--yes")


def _status(world: World, deal_id: str) -> str:
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        return str(em.store.deals[int(deal_id)]["status"])


def _set_status(world: World, deal_id: str, status: str) -> None:
    """A person closes the Pipedrive copy in place (no API call)."""
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:
        em.store.update(int(deal_id), {"status": status})


def _audited_stages_as(world: World, run_id: str, **values: str) -> None:
    """Rewrite the run's audited stage writes as an older crmsync recorded them (plain funnel
    stages, without the native stage before or after)."""
    with (
        open_runtime(str(world.config), connect=False) as rt,
        schema.transaction(rt.store.engine) as conn,
    ):
        conn.execute(
            update(schema.audit)
            .where(schema.audit.c.run_id == run_id, schema.audit.c.field == "stage")
            .values(**values)
        )


def test_rollback_closes_a_pipedrive_deal_again_though_a_person_moved_its_stage_since(
    small_world: World,
) -> None:
    """A run reopens a won deal in Pipedrive (status open, stage to negotiation); a person then
    moves it to another stage. The rollback leaves the person's stage and puts the status back
    to won: Pipedrive's status is a field apart, so writing it moves no stage."""
    world = small_world
    ids, applied = _reopened_by_a_run(world)
    written = {c["field"] for c in applied["changes"] if c["id"] == ids["pipedrive"]}
    assert {"stage", "status"} <= written, applied["changes"]
    _set_stage(world, "pipedrive", ids["pipedrive"], "3")  # a person's move, status still open

    result = _cli(world, "rollback", applied["run_id"], "--apply")

    outcome = {r["field"]: r for r in result["results"] if r["id"] == ids["pipedrive"]}
    assert outcome["stage"]["outcome"] == "drifted", outcome
    assert outcome["status"]["outcome"] == "applied", outcome
    assert _stages(world, ids)["pipedrive"] == ("1", "3")  # the person's stage, kept
    assert _status(world, ids["pipedrive"]) == "won"


def _sf_probability(world: World, deal_id: str) -> Any:
    em: Any = world.sandbox.servers["salesforce"].emulator
    with em.lock:
        return em.store.by_id[deal_id]["Probability"]


def test_rollback_keeps_the_salesforce_probability_of_a_stage_a_person_moved_since(
    small_world: World,
) -> None:
    """A Pipedrive user moves a deal on to proposal at 50 %; the run carries stage and
    probability to Salesforce ("Proposal/Price Quote", 50). A person then moves the Salesforce copy
    on to "Value Proposition", and Salesforce sets that stage's probability, 50 again. The
    stage rollback is drifted; the probability, which follows the stage in Salesforce, is
    drifted with it instead of going back to 25 beside a stage that stays at proposal."""
    world = small_world
    _cli(world, "reconcile", "--yes")
    ids = next(m for m in world.members().values() if len(m) == 3)
    for system, stage in QUALIFIED.items():
        _set_stage(world, system, ids[system], stage)
    _cli(world, "reconcile", "--yes")  # agreed at qualified, 25 %
    em: Any = world.sandbox.servers["pipedrive"].emulator
    with em.lock:  # a person's move, with the deal's own probability
        em.store.update(int(ids["pipedrive"]), {"stage_id": 4, "probability": 50})
    applied = _cli(world, "reconcile", "--yes")
    written = {c["field"] for c in applied["changes"] if c["id"] == ids["salesforce"]}
    assert {"stage", "probability"} <= written, applied["changes"]
    assert _sf_probability(world, ids["salesforce"]) == 50
    _set_stage(world, "salesforce", ids["salesforce"], "Value Proposition")
    assert _sf_probability(world, ids["salesforce"]) == 50  # the stage's default, as written

    result = _cli(world, "rollback", applied["run_id"], "--apply")

    outcome = {r["field"]: r for r in result["results"] if r["id"] == ids["salesforce"]}
    assert outcome["stage"]["outcome"] == "drifted", outcome
    assert outcome["probability"]["outcome"] == "drifted", outcome
    assert "goes with the stage" in outcome["probability"]["reason"], outcome
    assert _stages(world, ids)["salesforce"] == ("default", "Value Proposition")
    assert _sf_probability(world, ids["salesforce"]) == 50
