"""Planning a copy's move to another product line's pipeline (`push.move_between_pipelines`),
pure: the diff asks where a member whose pipeline's funnel lacks the agreed stage moves, the
stage change names that pipeline, the plan carries it as the change's native target (and the
pipeline the deal must still be in), and its JSON round-trips. Without a `move` the diff plans
as it always did: such a member keeps its stage, listed in `errors`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine_deals import T0, by_system, deal

from mapping import DEFAULT_FUNNEL, Funnel, FunnelStage, NativeValues, Phase
from mapping.model import Deal, DealStatus, Ref
from sync.diff import DiffResult, PipelineMove, base_values, diff
from sync.match import MatchConfig, match
from sync.plan import Change, Landing, build_plan
from sync.plan_json import plan_from_json, plan_to_json

SF, HS, PD = "salesforce", "hubspot", "pipedrive"
ALL = {SF, HS, PD}
RENEWAL = Funnel.build(
    "renewal",
    [
        FunnelStage("renewal_due", "Renewal due", 1, Phase.AWARENESS, Decimal("0.2")),
        FunnelStage("quoted", "Quoted", 2, Phase.DECISION, Decimal("0.5")),
        FunnelStage("renewed", "Renewed", 3, Phase.ACTION, Decimal(1), True, True),
        FunnelStage("churned", "Churned", 4, Phase.ACTION, Decimal(0), True),
    ],
)
FUNNELS = {"default": DEFAULT_FUNNEL, "renewal": RENEWAL}
OTHER_FUNNEL = "'quoted' is not a stage of funnel 'default' (...)"


def _in(d: Deal, pipeline: str, funnel: str = "default") -> Deal:
    return replace(d, pipeline=pipeline, funnel=funnel)


def _entity() -> tuple[list[Deal], dict[str, Any]]:
    """A deal all three CRMs agreed on in negotiation; a person then moved HubSpot's to its
    Renewals pipeline, into `quoted`."""
    agreed = deal(SF, "006A", stage="negotiation")
    members = [
        agreed,
        _in(deal(HS, "900", stage="quoted"), "renewals", "renewal"),
        _in(deal(PD, "7", stage="negotiation"), "1"),
    ]
    return members, base_values(agreed)


def _can_express(ref: Ref, field: str, value: Any) -> str | None:
    """Salesforce and Pipedrive pipelines follow the default funnel: they hold no renewal stage
    in place (`can_express_for` answers so)."""
    return OTHER_FUNNEL if field == "stage" and value in RENEWAL else None


def _move(asked: list[tuple[Ref, str, str | None]]) -> Any:
    """Pipedrive has a Renewals pipeline "2"; Salesforce none."""

    def move(ref: Ref, key: str, funnel: str | None) -> PipelineMove:
        asked.append((ref, key, funnel))
        if ref.system == PD:
            return PipelineMove("2", "moves from pipeline 1 to 2 (push.move_between_pipelines)")
        return PipelineMove(None, "no pipeline of salesforce follows funnel 'renewal' (...)")

    return move


def _diff(members: list[Deal], base: dict[str, Any], **kw: Any) -> DiffResult:
    entities = {"E1": {d.system: d.ref for d in members}}
    by_ref = {d.ref: d for d in members}
    return diff(
        entities, by_ref, {"E1": base}, {}, ALL, _can_express, funnels=FUNNELS,
        with_stage={SF: {"status", "probability"}, HS: {"status"}}, **kw,
    )  # fmt: skip


def test_without_moves_a_copy_in_a_pipeline_of_another_funnel_keeps_its_stage() -> None:
    result = _diff(*_entity())

    assert not [c for c in result.changes if c.field == "stage"]
    assert {(e.ref.system, e.field, e.reason) for e in result.errors} == {
        (SF, "stage", OTHER_FUNNEL),
        (PD, "stage", OTHER_FUNNEL),
    }


def test_with_moves_the_copy_moves_to_its_crms_pipeline_of_the_stages_funnel() -> None:
    asked: list[tuple[Ref, str, str | None]] = []

    result = _diff(*_entity(), move=_move(asked))

    [change] = [c for c in result.changes if c.field == "stage"]
    assert (change.target, change.from_value, change.to_value) == (
        Ref(PD, "7"),
        "negotiation",
        "quoted",
    )
    assert change.pipeline == "2"
    assert change.reason == (
        "changed in hubspot since last sync; moves from pipeline 1 to 2 "
        "(push.move_between_pipelines)"
    )
    # The funnel asked for is the one of the copy holding the stage (HubSpot's).
    assert sorted(asked) == [
        (Ref(PD, "7"), "quoted", "renewal"),
        (Ref(SF, "006A"), "quoted", "renewal"),
    ]
    # A CRM with nowhere to move the copy: reported with the move's reason, and the
    # probability Salesforce ties to the stage stays with it.
    refused = {(e.ref.system, e.field): e.reason for e in result.errors}
    assert refused[SF, "stage"] == "no pipeline of salesforce follows funnel 'renewal' (...)"
    assert set(refused) <= {(SF, "stage"), (SF, "probability")}


def test_a_copy_archived_in_pipedrive_is_never_moved_only_reported() -> None:
    """Pipedrive's API edits no archived deal: the move is not even asked for."""
    members, base = _entity()
    members[2] = replace(members[2], extra={"archived": True})
    asked: list[tuple[Ref, str, str | None]] = []

    result = _diff(members, base, move=_move(asked))

    assert not [c for c in result.changes if c.target == Ref(PD, "7")]
    assert Ref(PD, "7") not in {ref for ref, _, _ in asked}
    [archived] = [e for e in result.errors if e.ref == Ref(PD, "7") and e.field == "stage"]
    assert "is archived in pipedrive" in archived.reason, archived.reason


def test_a_status_written_as_the_stage_goes_with_the_move() -> None:
    """HubSpot moved to `renewed`: Salesforce, which writes a status as its stage, gets both
    in its Renewal pipeline, even where its own pipeline could not close the deal."""
    agreed = deal(SF, "006A", stage="negotiation")
    members = [
        agreed,
        _in(deal(HS, "900", stage="renewed", status=DealStatus.WON), "renewals", "renewal"),
    ]

    def can_express(ref: Ref, field: str, value: Any) -> str | None:
        if ref.system == SF and field == "status":
            return "no native stage for 'won' in pipeline default"
        return _can_express(ref, field, value)

    def move(ref: Ref, key: str, funnel: str | None) -> PipelineMove:
        return PipelineMove("Renewal", "moves to Renewal (push.move_between_pipelines)")

    entities = {"E1": {d.system: d.ref for d in members}}
    result = diff(
        entities, {d.ref: d for d in members}, {"E1": base_values(agreed)}, {}, ALL,
        can_express, funnels=FUNNELS, with_stage={SF: {"status", "probability"}}, move=move,
    )  # fmt: skip

    moved = {c.field: (c.to_value, c.pipeline) for c in result.changes}
    assert moved["stage"] == ("renewed", "Renewal")
    assert moved["status"] == ("won", None)
    assert not result.errors


def test_a_copy_left_out_before_moves_once_moves_are_on() -> None:
    """A run without moves left the Pipedrive copy out (marked in the base with what it kept);
    with moves on, the next run moves it to the stage the others agreed on."""
    members, _ = _entity()
    without = _diff(members, _entity()[1])
    base = {**base_values(members[1]), **without.agreed["E1"]}

    result = _diff(members, base, move=_move([]))

    [change] = [c for c in result.changes if c.field == "stage"]
    assert (change.target.system, change.to_value, change.pipeline) == (PD, "quoted", "2")


def test_the_plan_carries_the_move_as_the_changes_native_target_and_round_trips() -> None:
    members, base = _entity()
    links = {d.ref: "E1" for d in members}
    matched = match(by_system(members), links, MatchConfig(keys=("name",)))
    by_ref = {d.ref: d for d in members}
    diffed = diff(
        matched.entities, by_ref, {"E1": base}, {}, ALL, _can_express, funnels=FUNNELS,
        move=_move([]),
    )  # fmt: skip
    plan = build_plan(
        matched, diffed, by_ref, run_id="run-1", created_at=T0,
        config_fingerprint="cfg", batch_sizes={SF: 200, HS: 100, PD: 1},
    )  # fmt: skip

    [change] = [c for c in plan.changes if c.field == "stage"]
    assert change.native == NativeValues(pipeline="2", moves=True)
    assert change.native_from == NativeValues(pipeline="1")
    assert change.pipeline_move == ("1", "2")
    assert all(c.pipeline_move is None for c in plan.changes if c is not change)

    landing = Landing("2", "8", "Quote Sent", "Renewals", ("1", "Sales"))
    shown = dataclasses.replace(
        plan, changes=tuple(dataclasses.replace(c, landing=landing) for c in plan.changes)
    )
    data = plan_to_json(shown)
    [item] = [c for c in data["changes"] if c["field"] == "stage"]
    assert item["native_to"] == {"pipeline": "2", "moves": True}
    assert item["native_from"] == {"pipeline": "1"}
    assert item["target"]["moved_from"] == {"pipeline": "1", "pipeline_label": "Sales"}
    assert plan_from_json(json.dumps(data), "plan.json") == shown


def test_only_a_change_saying_it_moves_between_two_pipelines_is_a_move() -> None:
    """A rollback's change names the pipeline it puts back (`native`) and the one the run left
    (`native_from`): of one pipeline it moves nothing, and of two it moves the deal back only
    where the run moved it (`moves`); else someone else did, and the change is drifted."""
    change = Change(
        "c1", PD, "7", "stage", "quoted", "negotiation", "rollback of run R", "E1", None, None,
        NativeValues("1", "5", moves=True), NativeValues("1", "4"),
    )  # fmt: skip
    back = replace(change, native_from=NativeValues("2", "8"))

    assert change.pipeline_move is None
    assert back.pipeline_move == ("2", "1")
    assert replace(back, native=NativeValues("1", "5")).pipeline_move is None
    assert replace(back, native_from=None).pipeline_move is None
