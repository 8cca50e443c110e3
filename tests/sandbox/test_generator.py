"""The seeded sandbox dataset generator: determinism, realism, and a truthful planted list.

The planted list is checked against the raw native records with tiny readers written here
(not the mapping package), so a generator bug cannot hide behind a matching mapping bug.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator, FormatChecker

from connectors.sandbox.dataset import (
    PD_FIELD_CRMSYNC_ID,
    PD_FIELD_HUBSPOT_ID,
    PD_FIELD_SALESFORCE_ID,
    DatasetError,
    load_dataset,
    load_planted,
    planted_path_for,
    save_dataset,
)
from connectors.sandbox.dataset_catalog import STAGE_MAP
from connectors.sandbox.generator import KINDS, Generated, generate, generate_full, write_generated
from sync.commands.sandbox_generate import command

SPECS = Path("/work/shared/specs")
SYSTEMS = ("salesforce", "hubspot", "pipedrive")
FIELDS = ("name", "stage", "status", "amount", "currency", "close_date", "owner_email")
BY_PROBABILITY = {10: "lead", 25: "qualified", 50: "proposal", 75: "negotiation"}


@pytest.fixture(scope="module", params=[50, 1000], ids=["n50", "n1000"])
def generated(request: pytest.FixtureRequest) -> Generated:
    return generate_full(request.param, seed=request.param + 11)


# --- tiny independent readers: native record -> canonical fields ---------------------------


def _funnel(closed: bool, won: bool, probability: float) -> str:
    if closed:
        return "won" if won else "lost"
    return BY_PROBABILITY[round(probability)]


def read_salesforce(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stages = {
        s["MasterLabel"]: _funnel(s["IsClosed"], s["IsWon"], s["DefaultProbability"])
        for s in data["OpportunityStage"]
    }
    emails = {u["Id"]: u["Email"].lower() for u in data["User"]}
    out = {}
    for o in data["Opportunity"]:
        stage = stages[o["StageName"]]
        out[o["Id"]] = {
            "name": o["Name"],
            "stage": stage,
            "status": stage if stage in ("won", "lost") else "open",
            "amount": Decimal(repr(o["Amount"])),
            "currency": o["CurrencyIsoCode"],
            "close_date": o["CloseDate"],
            "owner_email": emails[o["OwnerId"]],
            "deleted": o["IsDeleted"],
            "updated": o["SystemModstamp"],
            "links": {"hubspot": o["HubSpot_Deal_Id__c"], "pipedrive": o["Pipedrive_Deal_Id__c"]},
        }
    return out


def read_hubspot(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stages = {}
    for pipeline in data["pipelines"]:
        for s in pipeline["stages"]:
            p = float(s["metadata"]["probability"])
            stages[s["id"]] = _funnel(s["metadata"]["isClosed"] == "true", p == 1.0, p * 100)
    emails = {o["id"]: o.get("email", "").lower() or None for o in data["owners"]}
    out = {}
    for d in data["deals"]:
        p = d["properties"]
        stage = stages[p["dealstage"]]
        out[d["id"]] = {
            "name": p["dealname"],
            "stage": stage,
            "status": stage if stage in ("won", "lost") else "open",
            "amount": Decimal(p["amount"]),
            "currency": p["deal_currency_code"],
            "close_date": p["closedate"][:10],
            "owner_email": emails[p["hubspot_owner_id"]],
            "deleted": d["archived"],
            "updated": d["updatedAt"],
            "links": {"salesforce": p["salesforce_opportunity_id"],
                      "pipedrive": p["pipedrive_deal_id"]},
        }  # fmt: skip
    return out


def read_pipedrive(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stages = {s["id"]: BY_PROBABILITY[s["deal_probability"]] for s in data["stages"]}
    out = {}
    for d in data["deals"]:
        status = d["status"]
        out[str(d["id"])] = {
            "name": d["title"],
            "stage": status if status in ("won", "lost") else stages[d["stage_id"]],
            "status": status,
            "amount": Decimal(repr(d["value"])),
            "currency": d["currency"],
            "close_date": d["expected_close_date"],
            "owner_email": d["user_id"]["email"].lower(),
            "deleted": d["deleted"],
            "updated": d["update_time"],
            "links": {"salesforce": d[PD_FIELD_SALESFORCE_ID], "hubspot": d[PD_FIELD_HUBSPOT_ID]},
        }
    return out


def read_all(dataset: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "salesforce": read_salesforce(dataset["salesforce"]),
        "hubspot": read_hubspot(dataset["hubspot"]),
        "pipedrive": read_pipedrive(dataset["pipedrive"]),
    }


def _utc(stamp: str) -> str:
    """Comparable UTC text of any of the three native timestamp formats."""
    return re.sub(r"[T ]", " ", stamp)[:19]


def _key(copy: dict[str, Any]) -> tuple[str, str | None, str]:
    words = re.sub(r"[^0-9a-z]+", " ", copy["name"].lower()).split()
    suffixes = {"inc", "corp", "gmbh", "ltd", "llc", "ag", "sa", "bv", "group", "holdings"}
    name = " ".join(w for w in words if w not in suffixes)
    return name, copy["owner_email"], copy["close_date"][:7]


# --- determinism and shape -----------------------------------------------------------------


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.json" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        write_generated(path, generate_full(300, seed))
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    assert planted_path_for(paths[0]).read_bytes() == planted_path_for(paths[1]).read_bytes()


def test_each_system_holds_about_the_requested_number_of_deals() -> None:
    result = generate_full(1000, seed=3)
    native = read_all(result.dataset)
    for system in SYSTEMS:
        assert 900 <= len(native[system]) <= 1100, system
        in_refs = {refs[system] for refs in result.entity_refs.values() if system in refs}
        duplicates = {p["ids"][1] for p in result.planted if p["kind"] == "duplicate"}
        assert set(native[system]) == in_refs | (duplicates & set(native[system]))
    spread = Counter(len(refs) for refs in result.entity_refs.values())
    assert spread[3] > spread[2] > 0 and spread[1] > 0
    assert len(result.dataset["pipedrive"]["deal_flows"]) == len(native["pipedrive"])


def test_generate_returns_the_dataset_and_planted_list() -> None:
    dataset, planted = generate(50, seed=1)
    assert set(dataset) == set(SYSTEMS)
    assert planted == generate_full(50, seed=1).planted


def test_every_kind_is_planted(generated: Generated) -> None:
    kinds = Counter(p["kind"] for p in generated.planted)
    assert set(kinds) == set(KINDS)
    assert len({p["entity"] for p in generated.planted}) == len(generated.planted)
    newest = Counter(p["newest"] for p in generated.planted if p["field"] is not None)
    assert abs(newest[True] - newest[False]) <= 1


# --- the planted list tells the truth --------------------------------------------------------


def _differing(copies: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Per system, the canonical fields where its copy disagrees with every other copy."""
    out: dict[str, set[str]] = {}
    for system, copy in copies.items():
        others = [c for s, c in copies.items() if s != system]
        out[system] = {f for f in FIELDS if others and all(c[f] != copy[f] for c in others)}
    return out


def test_unplanted_copies_agree_and_links_point_at_salesforce(generated: Generated) -> None:
    native = read_all(generated.dataset)
    planted = {p["entity"] for p in generated.planted}
    looked_alike = {p["other_entity"] for p in generated.planted if p["kind"] == "ambiguous"}
    for entity, refs in generated.entity_refs.items():
        copies = {s: native[s][i] for s, i in refs.items()}
        for system, copy in copies.items():
            expected = refs.get("salesforce") if system != "salesforce" else None
            if system != "salesforce":
                assert copy["links"]["salesforce"] == expected, (entity, system)
            for other, linked in copy["links"].items():
                assert linked in (None, refs.get(other)), (entity, system, other)
                if "salesforce" not in refs and system != "salesforce":
                    assert linked is None, (entity, system)  # key-matched pairs carry no ids
        if entity in planted or entity in looked_alike:
            continue
        assert not any(c["deleted"] for c in copies.values()), entity
        first = next(iter(copies.values()))
        for copy in copies.values():
            assert {f: copy[f] for f in FIELDS} == {f: first[f] for f in FIELDS}, entity


def test_each_planted_item_is_really_in_the_data(generated: Generated) -> None:
    native = read_all(generated.dataset)
    for item in generated.planted:
        system, refs = item["system"], item["refs"]
        assert refs == generated.entity_refs[item["entity"]]
        copies = {s: native[s][i] for s, i in refs.items()}
        kind = item["kind"]
        if item["field"] is not None:
            field = item["field"]
            assert set(refs) == set(SYSTEMS)
            coupled = {field, "stage"} if field == "status" else {field}
            diffs = _differing(copies)
            assert diffs[system] == coupled, item
            assert all(not d for s, d in diffs.items() if s != system), item
            value = Decimal if field == "amount" else str
            assert value(copies[system][field]) == value(item["actual"]), item
            for other in set(SYSTEMS) - {system}:
                assert value(copies[other][field]) == value(item["expected"]), item
            times = [_utc(c["updated"]) for s, c in copies.items() if s != system]
            mine = _utc(copies[system]["updated"])
            assert (mine > max(times)) if item["newest"] else (mine < min(times)), item
        elif kind == "missing_in":
            assert system not in refs and len(refs) == 2
            if system == "salesforce":
                assert all(c["links"] == dict.fromkeys(c["links"]) for c in copies.values())
        elif kind == "deleted":
            assert [s for s, c in copies.items() if c["deleted"]] == [system]
        elif kind == "duplicate":
            original, twin = (native[system][i] for i in item["ids"])
            assert item["ids"][0] == refs[system]
            assert {f: twin[f] for f in FIELDS} == {f: original[f] for f in FIELDS}
            assert twin["links"] == original["links"]
        elif kind == "ambiguous":
            assert set(refs) == {"hubspot", "pipedrive"}
            other = next(s for s in refs if s != system)
            candidates = [native[system][i] for i in item["ids"]]
            assert len(set(item["ids"])) == 2
            assert all(_key(c) == _key(copies[other]) for c in candidates), item
            assert candidates[0]["name"] != candidates[1]["name"]


def test_only_planted_ambiguity_makes_key_matching_ambiguous(generated: Generated) -> None:
    native = read_all(generated.dataset)
    keys: Counter[tuple[str, tuple[str, str | None, str]]] = Counter()
    for system in ("hubspot", "pipedrive"):
        for copy in native[system].values():
            keys[system, _key(copy)] += 1
    duplicated = {
        (p["system"], _key(native[p["system"]][p["ids"][0]]))
        for p in generated.planted
        if p["kind"] in ("ambiguous", "duplicate") and p["system"] != "salesforce"
    }
    assert {k for k, n in keys.items() if n > 1} == duplicated


# --- native realism ------------------------------------------------------------------------


def test_stage_histories_agree_with_the_current_stage_and_times(generated: Generated) -> None:
    sf, hs, pd = (generated.dataset[s] for s in SYSTEMS)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sf["OpportunityHistory"]:
        rows[row["OpportunityId"]].append(row)
    for opp in sf["Opportunity"]:
        history = rows[opp["Id"]]
        stamps = [r["CreatedDate"] for r in history]
        assert stamps == sorted(stamps) and stamps[0] == opp["CreatedDate"]
        assert history[-1]["StageName"] == opp["StageName"]
        assert stamps[-1] <= opp["LastModifiedDate"]
    for deal in hs["deals"]:
        p = deal["properties"]
        assert p[f"hs_date_entered_{p['dealstage']}"] <= deal["updatedAt"]
        assert all(v is None or isinstance(v, str) for v in p.values())
    for deal in pd["deals"]:
        flow = pd["deal_flows"][str(deal["id"])]
        stamps = [item["timestamp"] for item in flow]
        assert stamps == sorted(stamps, reverse=True)  # the API lists newest first
        stage_changes = [i["data"] for i in flow if i["data"]["field_key"] == "stage_id"]
        if stage_changes:
            assert stage_changes[0]["new_value"] == str(deal["stage_id"])
            assert deal["stage_change_time"] == stage_changes[0]["log_time"]
        assert deal["add_time"] <= deal["update_time"]


DEMO_NOW = datetime(2026, 11, 27)  # any day: the demo generates as of today


@pytest.fixture(scope="module")
def as_of_today() -> Generated:
    return generate_full(1500, seed=42, now=DEMO_NOW)


def _sf_timelines(dataset: dict[str, Any]) -> list[tuple[str, list[datetime], datetime]]:
    """(status, stage entry times oldest first, last modified) of every Salesforce deal."""
    entries: dict[str, list[datetime]] = defaultdict(list)
    for row in dataset["salesforce"]["OpportunityHistory"]:
        entries[row["OpportunityId"]].append(datetime.fromisoformat(row["CreatedDate"][:19]))
    copies = read_salesforce(dataset["salesforce"])
    return [
        (copy["status"], sorted(entries[i]), datetime.fromisoformat(copy["updated"][:19]))
        for i, copy in copies.items()
    ]


def test_most_open_deals_entered_their_stage_lately_and_a_minority_is_stalled(
    as_of_today: Generated,
) -> None:
    """Stale = no stage change for more than 30 days: 92 % of the demo's open deals were, as
    histories were spread from creation to now, so the sample pipeline looked dead."""
    ages = [
        (DEMO_NOW - entered[-1]).days
        for status, entered, _ in _sf_timelines(as_of_today.dataset)
        if status == "open"
    ]
    stalled = sum(age > 30 for age in ages) / len(ages)
    assert 0.12 <= stalled <= 0.28, stalled
    assert statistics.median(ages) <= 21


def test_won_deals_take_months_not_their_whole_age_and_closed_over_the_past(
    as_of_today: Generated,
) -> None:
    timelines = _sf_timelines(as_of_today.dataset)
    cycles = [(e[-1] - e[0]).days for status, e, _ in timelines if status == "won"]
    assert 40 <= statistics.median(cycles) <= 100, statistics.median(cycles)
    assert statistics.quantiles(cycles, n=10)[-1] <= 200
    since_closed = [(DEMO_NOW - e[-1]).days for status, e, _ in timelines if status != "open"]
    assert statistics.median(since_closed) >= 120, "closed deals bunch up just before now"


def test_every_time_lies_between_creation_and_now_for_any_now(as_of_today: Generated) -> None:
    for _, entered, modified in _sf_timelines(as_of_today.dataset):
        assert entered == sorted(set(entered))  # strictly increasing
        assert entered[-1] <= modified <= DEMO_NOW
    hs, pd = as_of_today.dataset["hubspot"], as_of_today.dataset["pipedrive"]
    assert max(_utc(d["updatedAt"]) for d in hs["deals"]) <= str(DEMO_NOW)
    assert max(_utc(d["update_time"]) for d in pd["deals"]) <= str(DEMO_NOW)
    assert generate_full(1500, seed=42, now=DEMO_NOW).dataset == as_of_today.dataset


@pytest.mark.parametrize("seed", [0, 1])
def test_every_native_timestamp_has_whole_seconds(seed: int) -> None:
    """A planted stage move landed half-way between two times, on half a second: times like
    Pipedrive's won_time '2025-12-12 15:25:47.500000' are not in the APIs' wire formats."""
    text = json.dumps(generate_full(300, seed).dataset)
    assert not re.findall(r"\d\d:\d\d:\d\d\.\d{4,}", text)


def test_owners_match_by_email_with_the_documented_exceptions(generated: Generated) -> None:
    sf, hs, pd = (generated.dataset[s] for s in SYSTEMS)
    emails = {
        "salesforce": [u["Email"] for u in sf["User"]],
        "hubspot": [o.get("email") for o in hs["owners"]],
        "pipedrive": [u["email"] for u in pd["users"]],
    }
    lowered = {s: {e.lower() for e in found if e} for s, found in emails.items()}
    everywhere = lowered["salesforce"] & lowered["hubspot"] & lowered["pipedrive"]
    assert len(lowered["salesforce"] - everywhere) == 1  # one owner only in Salesforce
    assert emails["hubspot"].count(None) == 1  # one HubSpot owner without an email
    assert any(e and e != e.lower() for found in emails.values() for e in found)


def _openapi_validator(spec_file: str, schema: str) -> Draft202012Validator:
    """A JSON Schema validator for one OpenAPI 3.0 component (nullable rewritten)."""
    spec = yaml.safe_load((SPECS / spec_file).read_text())

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: convert(v) for k, v in node.items() if k != "example"}
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
            if "$ref" in node or "allOf" in node:
                node = {"anyOf": [{"type": "null"}, node]}
        return node

    root = {"$ref": f"#/components/schemas/{schema}", "components": convert(spec["components"])}
    return Draft202012Validator(root, format_checker=FormatChecker())


@pytest.mark.parametrize(
    ("spec", "schema", "system", "collection"),
    [
        ("salesforce_rest_subset.openapi.yaml", "Opportunity", "salesforce", "Opportunity"),
        ("salesforce_rest_subset.openapi.yaml", "OpportunityStage", "salesforce",
         "OpportunityStage"),
        ("hubspot_crm_v3_deals_subset.openapi.yaml", "SimplePublicObject", "hubspot", "deals"),
        ("hubspot_crm_v3_deals_subset.openapi.yaml", "Pipeline", "hubspot", "pipelines"),
        ("hubspot_crm_v3_deals_subset.openapi.yaml", "PublicOwner", "hubspot", "owners"),
        ("pipedrive_v1_deals_subset.openapi.yaml", "Deal", "pipedrive", "deals"),
        ("pipedrive_v1_deals_subset.openapi.yaml", "Stage", "pipedrive", "stages"),
        ("pipedrive_v1_deals_subset.openapi.yaml", "Pipeline", "pipedrive", "pipelines"),
        ("pipedrive_v1_deals_subset.openapi.yaml", "User", "pipedrive", "users"),
        ("pipedrive_v1_deals_subset.openapi.yaml", "FlowItem", "pipedrive", "deal_flows"),
    ],
)  # fmt: skip
def test_records_validate_against_the_openapi_specs(
    generated: Generated, spec: str, schema: str, system: str, collection: str
) -> None:
    validator = _openapi_validator(spec, schema)
    records = generated.dataset[system][collection]
    if isinstance(records, dict):
        records = [item for flow in records.values() for item in flow]
    assert records
    for record in records:
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, f"{system}.{collection}: {errors[0].message} in {record}"


def _mapping_contexts(dataset: dict[str, Any]) -> dict[str, Any]:
    """Contexts as `sandbox serve --config-out` builds them: stage maps proposed like init."""
    import mapping as m

    sf, hs, pd = (dataset[s] for s in SYSTEMS)
    discovered = {
        "salesforce": m.pipelines_from_salesforce(sf["OpportunityStage"]),
        "hubspot": m.pipelines_from_hubspot(hs["pipelines"]),
        "pipedrive": m.pipelines_from_pipedrive(pd["pipelines"], pd["stages"]),
    }
    owners = {
        "salesforce": {u["Id"]: u["Email"] for u in sf["User"]},
        "hubspot": {o["id"]: o["email"] for o in hs["owners"] if o.get("email")},
        "pipedrive": {str(u["id"]): u["email"] for u in pd["users"]},
    }
    contexts = {}
    for system, pipelines in discovered.items():
        native = {p.id: p.stages for p in pipelines}
        proposed = m.stage_map_from_proposals(m.propose_stage_map(native, m.DEFAULT_FUNNEL))
        assert proposed == STAGE_MAP[system], system
        contexts[system] = m.MappingContext(
            instance=system, kind=system, stage_map=proposed, owners=owners[system],
            native_stages=native,
        )  # fmt: skip
    return contexts


def test_the_real_mapping_sees_differences_exactly_where_planted(generated: Generated) -> None:
    import mapping as m

    contexts = _mapping_contexts(generated.dataset)
    readers = {"salesforce": (m.deal_from_salesforce, "Opportunity"),
               "hubspot": (m.deal_from_hubspot, "deals"),
               "pipedrive": (m.deal_from_pipedrive, "deals")}  # fmt: skip
    records = {}
    for system, (read, collection) in readers.items():
        for raw in generated.dataset[system][collection]:
            deal = read(raw, contexts[system]).as_record()
            records[system, deal["id"]] = deal
    fields = (*FIELDS, "probability")
    coupled = {"stage": {"stage", "probability"}, "status": {"status", "stage", "probability"}}
    plants = {p["entity"]: p for p in generated.planted}
    for entity, refs in generated.entity_refs.items():
        plant = plants.get(entity)
        # a deleted Pipedrive deal has lost its status ("deleted"): compare the live copies
        gone = plant["system"] if plant and plant["kind"] == "deleted" else None
        copies = [records[s, i] for s, i in refs.items() if s != gone]
        differing = {f for f in fields if len({c[f] for c in copies}) > 1}
        if plant is None or plant["field"] is None:
            assert not differing, (entity, differing)
        else:
            assert differing == coupled.get(plant["field"], {plant["field"]}), plant


def test_pipedrive_link_fields_are_the_shared_hashes() -> None:
    from mapping import pipedrive as pd_mapping

    assert PD_FIELD_SALESFORCE_ID == pd_mapping.PD_FIELD_SALESFORCE_ID
    assert PD_FIELD_HUBSPOT_ID == pd_mapping.PD_FIELD_HUBSPOT_ID
    assert PD_FIELD_CRMSYNC_ID == pd_mapping.PD_FIELD_CRMSYNC_ID


# --- files and CLI -------------------------------------------------------------------------


def test_saved_dataset_loads_back_unchanged(tmp_path: Path) -> None:
    dataset, _ = generate(50, seed=2)
    save_dataset(tmp_path / "d.json", dataset)
    assert load_dataset(tmp_path / "d.json") == json.loads(json.dumps(dataset))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such dataset file"),
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[]", "a dataset must be a JSON object, not list"),
        ('{"salesforce": {}, "hubspot": {}}', "salesforce.OpportunityStage is missing"),
        (
            '{"salesforce": {"OpportunityStage": [], "User": [], "Opportunity": []}}',
            "system key 'hubspot' is missing",
        ),
        (
            '{"salesforce": {"OpportunityStage": [], "User": [], "Opportunity": []},'
            ' "hubspot": {"pipelines": [], "owners": [], "deals": {}}, "pipedrive": {}}',
            "hubspot.deals is a object (expected a list)",
        ),
    ],
)
def test_a_bad_dataset_file_gives_a_one_line_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and message in text
    assert caught.value.exit_code == 2


def test_cli_writes_dataset_and_planted_list_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "demo.json"
    result = CliRunner().invoke(command, ["--deals", "60", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert str(out) in result.output and "demo.planted.json" in result.output
    document = load_planted(tmp_path / "sub" / "demo.planted.json")
    assert (document["seed"], document["deals"]) == (4, 60)
    assert document["entities"] == len(document["entity_refs"])
    assert document["planted"] == generate(60, seed=4)[1]
    assert load_dataset(out) == json.loads(json.dumps(generate(60, seed=4)[0]))


@pytest.mark.parametrize("deals", ["-1", "2000001"])
def test_cli_refuses_a_deal_count_below_zero_or_beyond_what_memory_holds(
    tmp_path: Path, deals: str
) -> None:
    out = tmp_path / "x.json"
    result = CliRunner().invoke(command, ["--deals", deals, "--out", str(out)])
    assert result.exit_code == 2  # click's usage error: any wrong option would give it too
    said = f"Invalid value for '--deals': {deals} is not in the range 0<=x<=2000000."
    assert said in result.output
    assert not out.exists()
