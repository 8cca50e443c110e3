"""Moving a deal to another product line's pipeline (`push.move_between_pipelines`), in the pure
mapping: which pipeline a move goes to (as a copy of that funnel would: the first live one in the
CRM's order), why it cannot, and the payload each CRM is written (HubSpot `pipeline` +
`dealstage`, Pipedrive `pipeline_id` + `stage_id`, Salesforce `RecordTypeId` + `StageName`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mapping import (
    DEFAULT_FUNNEL,
    Deal,
    DealStatus,
    Funnel,
    FunnelStage,
    MappingContext,
    MappingError,
    NativeStage,
    NativeValues,
    Phase,
    Ref,
    update_for_hubspot,
    update_for_pipedrive,
    update_for_salesforce,
)
from mapping.moves import funnel_of_stage, move_pipeline
from mapping.writes import StageTarget, resolve_stage_change

RENEWAL = Funnel.build(
    "renewal",
    [
        FunnelStage("renewal_due", "Renewal due", 1, Phase.AWARENESS, Decimal("0.2")),
        FunnelStage("quoted", "Quoted", 2, Phase.DECISION, Decimal("0.5")),
        FunnelStage("renewed", "Renewed", 3, Phase.ACTION, Decimal(1), True, True),
        FunnelStage("churned", "Churned", 4, Phase.ACTION, Decimal(0), True),
    ],
)
UPSELL = Funnel.build(
    "upsell",
    [
        FunnelStage("quoted", "Quoted", 1, Phase.DECISION, Decimal("0.5")),
        FunnelStage("won", "Won", 2, Phase.ACTION, Decimal(1), True, True),
        FunnelStage("lost", "Lost", 3, Phase.ACTION, Decimal(0), True),
    ],
)
# Per kind: the sales pipeline (default funnel) and the renewals pipeline, native stage ids by
# funnel stage, and the id a deal holds to be in the renewals pipeline (Salesforce's RecordTypeId).
PIPELINES: dict[str, dict[str, Any]] = {
    "hubspot": {
        "sales": "default",
        "renewals": "renewals",
        "default": {"negotiation": "contractsent", "won": "closedwon", "lost": "closedlost"},
        "renewal": {"renewal_due": "r-due", "quoted": "r-quote", "renewed": "r-won"},
    },
    "pipedrive": {
        "sales": "1",
        "renewals": "2",
        "default": {"negotiation": "5"},
        "renewal": {"renewal_due": "6", "quoted": "8"},
    },
    "salesforce": {
        "sales": "default",
        "renewals": "Renewal",
        "default": {
            "negotiation": "Negotiation/Review",
            "won": "Closed Won",
            "lost": "Closed Lost",
        },
        "renewal": {"renewal_due": "Renewal Due", "quoted": "Renewal Quoted", "renewed": "Won"},
    },
}
RECORD_TYPE = "0125g0000000007AAA"


def _stages(mapping: dict[str, str]) -> tuple[NativeStage, ...]:
    return tuple(
        NativeStage(native, native.title(), order, Decimal("0.5"), key in ("won", "renewed"))
        for order, (key, native) in enumerate(mapping.items())
    )


def _ctx(kind: str, *, retired: bool = False, renewals: bool = True) -> MappingContext:
    """Two product lines: the sales pipeline, then (unless not `renewals`) the renewals one,
    behind a retired renewals pipeline ("old") when `retired`."""
    spec = PIPELINES[kind]
    sales, renewal = spec["sales"], spec["renewals"]
    native = {sales: _stages(spec["default"])}
    stage_map = {sales: {n: k for k, n in spec["default"].items()}}
    funnels = {sales: "default"}
    if retired:
        native["old"] = _stages(spec["renewal"])
        stage_map["old"] = {n: k for k, n in spec["renewal"].items()}
        funnels["old"] = "renewal"
    if renewals:
        native[renewal] = _stages(spec["renewal"])
        stage_map[renewal] = {n: k for k, n in spec["renewal"].items()}
        funnels[renewal] = "renewal"
    return MappingContext(
        instance=kind,
        kind=kind,
        funnels={"default": DEFAULT_FUNNEL, "renewal": RENEWAL},
        pipeline_funnels=funnels,
        stage_map=stage_map,
        native_stages=native,
        pipeline_labels={sales: "Sales", renewal: "Renewals"},
        pipeline_native_ids={"Renewal": RECORD_TYPE} if kind == "salesforce" else {},
        retired_pipelines=frozenset({"old"}) if retired else frozenset(),
    )


def _deal(kind: str, where: str = "sales", key: str = "negotiation", **fields: Any) -> Deal:
    spec = PIPELINES[kind]
    funnel = "default" if where == "sales" else "renewal"
    at = datetime(2025, 1, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "ref": Ref(kind, "7"),
        "name": "Acme renewal",
        "pipeline": spec[where],
        "stage": key,
        "native_stage": spec[funnel][key],
        "status": DealStatus.OPEN,
        "value": None,
        "close_date": None,
        "owner_email": None,
        "probability": Decimal("0.9"),
        "created_at": at,
        "updated_at": at,
        "funnel": funnel,
    }
    return Deal(**(values | fields))


def _moving_to(pipeline: str, stage: str | None = None) -> NativeValues:
    return NativeValues(pipeline=pipeline, native_stage=stage, moves=True)


@pytest.mark.parametrize("kind", ["hubspot", "pipedrive", "salesforce"])
def test_a_move_goes_to_the_first_live_pipeline_of_the_stages_funnel(kind: str) -> None:
    ctx = _ctx(kind, retired=True)

    assert move_pipeline(_deal(kind), "quoted", ctx) == PIPELINES[kind]["renewals"]


def test_a_crm_without_a_live_pipeline_of_the_funnel_is_no_move_and_names_the_key() -> None:
    deal = _deal("salesforce")

    with pytest.raises(MappingError) as none:
        move_pipeline(deal, "quoted", _ctx("salesforce", renewals=False))
    with pytest.raises(MappingError) as retired:
        move_pipeline(deal, "quoted", _ctx("salesforce", renewals=False, retired=True))

    assert none.value.field == "stage"
    assert "no pipeline of salesforce follows funnel 'renewal'" in none.value.reason
    assert "(systems.salesforce.pipeline_funnels)" in none.value.reason
    assert "push.move_between_pipelines has no pipeline" in none.value.reason
    assert "old is deactivated or deleted there" in retired.value.reason


def test_the_funnel_of_a_stage_several_funnels_have_is_the_one_of_the_copy_holding_it() -> None:
    ctx = _ctx("pipedrive")
    ctx = MappingContext(**{**_fields(ctx), "funnels": {**ctx.funnels, "upsell": UPSELL}})
    deal = _deal("pipedrive")

    assert funnel_of_stage(deal, "quoted", ctx, "upsell") == "upsell"
    assert funnel_of_stage(deal, "renewal_due", ctx) == "renewal"
    with pytest.raises(MappingError) as refused:
        funnel_of_stage(deal, "quoted", ctx)
    assert "it is a stage of funnels renewal, upsell" in refused.value.reason


def _fields(ctx: MappingContext) -> dict[str, Any]:
    return {name: getattr(ctx, name) for name in ctx.__dataclass_fields__}


def test_hubspot_is_written_the_pipeline_with_a_stage_of_it() -> None:
    ctx = _ctx("hubspot")

    payload = update_for_hubspot(_deal("hubspot"), {"stage": "quoted"}, ctx, _moving_to("renewals"))

    assert payload == {"pipeline": "renewals", "dealstage": "r-quote"}


def test_pipedrive_is_written_the_pipeline_and_a_stage_of_it() -> None:
    ctx = _ctx("pipedrive")

    payload = update_for_pipedrive(_deal("pipedrive"), {"stage": "quoted"}, ctx, _moving_to("2"))

    assert payload == {"pipeline_id": 2, "stage_id": 8}


def test_a_pipedrive_deal_won_in_another_pipeline_goes_to_its_first_stage_with_its_status() -> None:
    ctx = _ctx("pipedrive")
    changes = {"stage": "renewed", "status": "won"}

    payload = update_for_pipedrive(_deal("pipedrive"), changes, ctx, _moving_to("2"))
    back = update_for_pipedrive(
        _deal("pipedrive", "renewals", "renewal_due", status=DealStatus.WON, stage="renewed"),
        {"stage": "won", "status": "won"},
        ctx,
        _moving_to("1", "5"),  # a rollback's: the very stage it left
    )

    assert payload == {"pipeline_id": 2, "stage_id": 6, "status": "won"}
    assert back == {"pipeline_id": 1, "stage_id": 5}


def test_salesforce_is_written_the_record_type_and_a_stage_of_its_process() -> None:
    ctx = _ctx("salesforce")
    deal = _deal("salesforce")

    there = update_for_salesforce(deal, {"stage": "quoted"}, ctx, _moving_to("Renewal"))
    renewal = _deal("salesforce", "renewals", "quoted")
    back = update_for_salesforce(
        renewal, {"stage": "negotiation"}, ctx, _moving_to("default", "Negotiation/Review")
    )

    # A move to another open stage keeps the probability the CRMs agree on (not the stage's).
    assert there == {"RecordTypeId": RECORD_TYPE, "StageName": "Renewal Quoted", "Probability": 90}
    assert back == {"RecordTypeId": None, "StageName": "Negotiation/Review", "Probability": 90}


def test_a_native_value_of_another_pipeline_moves_nothing_unless_it_says_it_moves() -> None:
    ctx = _ctx("hubspot")
    deal = _deal("hubspot")
    stays = NativeValues("renewals", "r-quote")

    assert update_for_hubspot(deal, {"stage": "negotiation"}, ctx, stays) == {
        "dealstage": "contractsent"
    }
    with pytest.raises(MappingError) as refused:
        update_for_hubspot(deal, {"stage": "quoted"}, ctx, stays)
    assert "crmsync moves no deal to another pipeline" in refused.value.reason


def test_a_move_names_where_it_puts_the_deal() -> None:
    ctx = _ctx("hubspot")

    target = resolve_stage_change(
        _deal("hubspot"),
        {"stage": "quoted"},
        ctx,
        status_in_stage=True,
        native=_moving_to("renewals"),
    )

    assert target == StageTarget("r-quote", None, "renewals")


def test_a_move_to_a_pipeline_whose_map_lacks_the_stage_is_refused_naming_the_map() -> None:
    ctx = _ctx("pipedrive")

    with pytest.raises(MappingError) as refused:
        update_for_pipedrive(_deal("pipedrive"), {"stage": "renewed"}, ctx, _moving_to("1"))

    assert "'renewed' is not a stage of funnel 'default', which pipeline 1 follows" in (
        refused.value.reason
    )
