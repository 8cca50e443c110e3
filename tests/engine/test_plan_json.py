from __future__ import annotations

import dataclasses
import json
import random
from datetime import date, timedelta
from typing import Any

import pytest
from engine_deals import T0, by_system, deal

from mapping import NativeValues
from mapping.model import Deal, DealStatus
from sync.diff import comparable, diff
from sync.match import MatchConfig, match
from sync.plan import Landing, Plan, PlanError, build_plan, plan_is_empty
from sync.plan_json import plan_from_json, plan_to_json
from sync.policy import DIFF_FIELDS, Policy, PolicyRule
from tests.plans import signed

SF, HS, PD = "salesforce", "hubspot", "pipedrive"
BATCH = {SF: 200, HS: 100, PD: 1}


def _world() -> tuple[list[Deal], dict, dict]:
    """Linked pairs with planted differences, a conflict, an unmatched deal, a duplicate pair,
    an unmapped stage, a deletion and an ambiguous key."""
    deals: list[Deal] = []
    links, bases = {}, {}
    for i in range(30):
        a = deal(SF, f"006{i:03d}", name=f"Deal {i}", created=T0 + timedelta(i))
        kw: dict[str, Any] = {}
        if i % 5 == 0:
            kw["amount"] = "1234.50"
        if i % 7 == 0:
            kw["stage"] = "negotiation"
        if i == 3:
            kw["stage"] = None
        b = deal(HS, str(900 + i), name=f"Deal {i}", **kw)
        c = deal(PD, str(i), name=f"Deal {i}", close=date(2024, 7, 1), status=DealStatus.OPEN)
        links.update({a.ref: f"E{i}", b.ref: f"E{i}", c.ref: f"E{i}"})
        bases[f"E{i}"] = dict(zip(DIFF_FIELDS, comparable(a), strict=True))
        deals += [a, b, c]
    deals.append(deal(SF, "lonely", name="Nobody matches me"))
    deals += [deal(HS, "d1", name="Twin"), deal(HS, "d2", name="Twin"), deal(SF, "t", name="Twin")]
    deals.append(deal(SF, "gone", name="Gone", extra={"deleted": True}, link_id="Egone"))
    deals.append(deal(HS, "alive", name="Gone", link_id="Egone"))
    return deals, links, bases


def _plan(deals: list[Deal], links: dict, bases: dict) -> Plan:
    matched = match(by_system(deals), links, MatchConfig(keys=("name", "close_month")))
    by_ref = {d.ref: d for d in deals}
    policies = {
        "close_date": Policy(PolicyRule.SOURCE_OF_TRUTH, (PD,)),
        "probability": Policy(PolicyRule.NEVER),
    }
    diffed = diff(matched.entities, by_ref, bases, policies, {SF, HS, PD})
    return build_plan(
        matched, diffed, by_ref, run_id="run-1", created_at=T0,
        config_fingerprint="cfg", batch_sizes=BATCH,
    )  # fmt: skip


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan(*_world())


def test_plan_json_has_the_contract_keys_and_sorted_changes(plan: Plan) -> None:
    data = plan_to_json(plan)
    for key in ("version", "summary", "changes", "creates", "conflicts", "unmatched",
                "ambiguous", "duplicates", "errors", "checksum"):  # fmt: skip
        assert key in data
    assert data["version"] == 1
    change = data["changes"][0]
    assert {"system", "id", "field", "from", "to", "reason"} <= change.keys()
    order = [(c["system"], c["id"], c["field"]) for c in data["changes"]]
    assert order == sorted(order)
    assert {"system": SF, "id": "lonely", "name": "Nobody matches me"} in data["unmatched"]
    assert {"system": HS, "ids": ["d1", "d2"]}.items() <= data["duplicates"][0].items()
    assert {"system": HS, "id": "903", "field": "stage"}.items() <= data["errors"][0].items()
    assert data["deleted"][0]["entity"] == "Egone"
    json.dumps(data)  # plain JSON values only


def test_plan_summary_counts_changes_and_estimates_api_calls(plan: Plan) -> None:
    summary = plan.summary
    assert summary["changes"] == len(plan.changes)
    assert summary["api_calls"][SF] == 1  # every salesforce update fits one batch of 200
    assert summary["api_calls"][PD] == summary["records_to_update"][PD]  # one call per deal
    assert summary["changes_by_system"][SF]["close_date"] == 30  # pipedrive is the truth


def test_plan_summary_counts_only_entities_with_a_live_deal(plan: Plan) -> None:
    """A copy a rollback deleted comes back from the CRM's deleted list, unlinked: it is no
    deal the CRMs share, as the health report does not count it either."""
    deals, links, bases = _world()
    copy = deal(PD, "rolled-back", name="Deal 7", extra={"deleted": True}, link_id="E7")
    assert _plan([*deals, copy], links, bases).summary["entities"] == plan.summary["entities"]


def test_plan_json_round_trips(plan: Plan) -> None:
    text = json.dumps(plan_to_json(plan))
    assert plan_from_json(text, "plan.json") == plan
    assert plan_from_json(json.loads(text), "plan.json") == plan


def test_native_values_of_a_change_round_trip_and_appear_only_where_named(plan: Plan) -> None:
    """A rollback's changes name the native stage or currency code they put back."""
    first, second, *rest = plan.changes
    named = dataclasses.replace(
        plan,
        changes=(
            dataclasses.replace(first, native=NativeValues("default", "qualifiedtobuy")),
            dataclasses.replace(second, native=NativeValues(currency="EUR")),
            *rest,
        ),
    )
    data = plan_to_json(named)
    assert data["changes"][0]["native_to"] == {
        "pipeline": "default",
        "native_stage": "qualifiedtobuy",
    }
    assert data["changes"][1]["native_to"] == {"currency": "EUR"}
    assert all("native_to" not in c for c in data["changes"][2:])
    assert plan_from_json(json.dumps(data), "rollback.json") == named


def test_where_a_stage_change_lands_round_trips_and_is_absent_from_other_changes(
    plan: Plan,
) -> None:
    first, *rest = plan.changes
    landing = Landing("1", "4", "Proposal Made", "Sales")
    named = dataclasses.replace(plan, changes=(dataclasses.replace(first, landing=landing), *rest))
    data = plan_to_json(named)
    assert data["changes"][0]["target"] == {
        "pipeline": "1",
        "native_stage": "4",
        "native_stage_label": "Proposal Made",
        "pipeline_label": "Sales",
    }
    assert all("target" not in c for c in data["changes"][1:])
    assert plan_from_json(json.dumps(data), "plan.json") == named


def test_a_target_saved_before_pipeline_labels_loads_without_one(plan: Plan) -> None:
    first, *rest = plan.changes
    landing = Landing("1", "4", "Proposal Made", "Sales")
    named = dataclasses.replace(plan, changes=(dataclasses.replace(first, landing=landing), *rest))
    data = _resigned(named, lambda d: d["changes"][0]["target"].pop("pipeline_label"))
    loaded = plan_from_json(json.dumps(data), "plan.json")
    assert loaded.changes[0].landing == Landing("1", "4", "Proposal Made")


def test_same_input_twice_and_shuffled_gives_identical_plan_json() -> None:
    deals, links, bases = _world()
    first = json.dumps(plan_to_json(_plan(deals, links, bases)))
    assert json.dumps(plan_to_json(_plan(deals, links, bases))) == first
    for seed in range(3):
        random.Random(seed).shuffle(deals)
        assert json.dumps(plan_to_json(_plan(deals, links, bases))) == first


def _tampered(plan: Plan, edit) -> str:
    data = plan_to_json(plan)
    edit(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["changes"][0].update(to="999999"), "checksum mismatch"),
        (lambda d: d.pop("changes"), "missing key 'changes'"),
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (lambda d: d.update(version="1"), "version '1' is not supported"),
    ],
)
def test_tampered_or_foreign_plan_is_refused_with_one_line(plan: Plan, edit, message: str) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        plan_from_json(_tampered(plan, edit), "nightly.plan.json")
    assert "nightly.plan.json" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truncated_plan_is_refused_as_bad_json(plan: Plan) -> None:
    text = json.dumps(plan_to_json(plan))
    with pytest.raises(PlanError, match=r"plan p\.json: not valid JSON"):
        plan_from_json(text[: len(text) // 2], "p.json")


def _left_out(**edit: str) -> dict:
    """A plan error for a deal left out of its entity's new amount (apply bases it)."""
    item = {"system": "hubspot", "id": "2", "field": "amount", "reason": "cannot hold it",
            "entity": "E1", "base_field": "amount", "held": "100 USD"}  # fmt: skip
    return item | edit


def _resigned(plan: Plan, edit) -> dict:
    """A malformed plan with a valid checksum: the value checks must catch it on their own."""
    data = plan_to_json(plan)
    edit(data)
    return signed(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["changes"][0].update(field="colour"), r"changes\[0\]: bad value: unknown"),
        (lambda d: d["changes"][0].pop("to"), r"changes\[0\]: missing key 'to'"),
        (lambda d: d["changes"][0].update(to="abc", field="amount"), "not a decimal"),
        (lambda d: d.update(created_at="yesterday"), "bad value"),
        (lambda d: d.update(conflicts={}), "'conflicts' must be a list"),
        (lambda d: d.update(errors=[_left_out(base_field="colour")]), "unknown base_field"),
        (lambda d: d.update(errors=[_left_out(held="lots")]), "not a decimal"),
        (lambda d: d["changes"][0].update(target="Proposal Made"), "'target' must be an object"),
        (lambda d: d["changes"][0].update(target={"native_stage": "4"}), "missing key 'pipeline'"),
    ],
)
def test_malformed_values_are_refused_even_with_a_valid_checksum(
    plan: Plan, edit, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_from_json(_resigned(plan, edit), "x.json")


def test_a_left_out_stage_held_as_an_unmapped_native_stage_loads_and_a_malformed_one_does_not(
    plan: Plan,
) -> None:
    """A deal in a native stage its map does not cover holds no funnel stage: the error names the
    native stage it held, which apply records in the base (sync/unmapped_stage.py)."""
    held = {"pipeline": "default", "native_stage": "Needs Analysis"}

    def left_out_stage(value: Any) -> Any:
        error = _left_out(field="stage", base_field="stage") | {"held": value}
        return lambda d: d.update(errors=[error])

    loaded = plan_from_json(_resigned(plan, left_out_stage(held)), "x.json")
    assert loaded.errors[0]["held"] == held
    with pytest.raises(PlanError, match="an unmapped stage is"):
        plan_from_json(_resigned(plan, left_out_stage({"native_stage": 3})), "x.json")


def test_plan_is_empty_only_without_writes(plan: Plan) -> None:
    assert not plan_is_empty(plan)
    a, b = deal(SF, "1"), deal(HS, "2")
    quiet = _plan([a, b], {a.ref: "E", b.ref: "E"}, {})
    assert plan_is_empty(quiet)


def test_an_amount_conflict_gives_each_value_as_a_decimal_string_and_a_currency() -> None:
    deals = [deal(SF, "1", amount="1500.50"), deal(HS, "2", amount="1400", currency="EUR")]
    links = {d.ref: "E1" for d in deals}
    data = plan_to_json(_plan(deals, links, {}))
    [conflict] = [c for c in data["conflicts"] if c["field"] == "amount"]
    assert conflict["values"] == [
        {"system": HS, "id": "2", "value": "1400 EUR", "amount": "1400", "currency": "EUR"},
        {"system": SF, "id": "1", "value": "1500.5 USD", "amount": "1500.5", "currency": "USD"},
    ]
    assert (
        plan_from_json(json.dumps(data), "plan.json").conflicts == _plan(deals, links, {}).conflicts
    )
