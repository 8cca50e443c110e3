"""Bad input: hostile native records and hostile plan files give a clear error, never a crash.

A native record that cannot be mapped is a MappingError naming system, id and field, which the
engine reports while it goes on with the other records; a plan file that is malformed,
truncated or tampered with is a PlanError naming the file, refused before any write. The fuzz
case counts are the `max_examples` below (run `pytest -m slow` for ten times as many).
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping.hubspot import deal_from_hubspot
from mapping.model import Deal, MappingError
from mapping.pipedrive import deal_from_pipedrive
from mapping.salesforce import deal_from_salesforce
from sync.plan import Plan, PlanError
from sync.plan_json import plan_from_json, plan_to_json
from sync.reconcile import plan_run
from tests.mapping.conftest import make_ctx
from tests.reliability.conftest import PUSH
from tests.reliability.hostile import DEEP, hostile_values
from tests.sandbox_env import DEAL_KEYS, SandboxEnv, crmsync_env, make_env, warm_crmsync

MAPPERS: dict[str, Callable[..., Deal]] = {
    "salesforce": deal_from_salesforce,
    "hubspot": deal_from_hubspot,
    "pipedrive": deal_from_pipedrive,
}
# Fuzz cases per test; the slow variants run ten times as many.
CASES = {"mapper": 300, "record": 100, "signed": 300, "unsigned": 150, "truncated": 150}


def _fuzz(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _map(system: str, record: Any) -> Deal | None:
    """The deal, or None after checking the MappingError names system, id and field."""
    try:
        return MAPPERS[system](record, make_ctx(system))
    except MappingError as exc:
        assert exc.system == system and exc.id and exc.field and exc.reason, exc.as_dict()
        return None


# ---- native records -------------------------------------------------------------------------


def _fields(system: str, record: dict[str, Any]) -> list[str]:
    body = record["properties"] if system == "hubspot" else record
    extra = {"salesforce": ["Owner", "Account"], "hubspot": ["properties"]}.get(system, [])
    return sorted(body) + extra


def _mapper_fuzz(system: str, dataset: dict[str, Any], examples: int) -> None:
    good = dataset[system][DEAL_KEYS[system]][0]
    keys = _fields(system, good)

    @_fuzz(examples)
    @given(patch=st.dictionaries(st.sampled_from(keys), hostile_values(), min_size=1, max_size=5))
    def run(patch: dict[str, Any]) -> None:
        record = copy.deepcopy(good)
        if system == "hubspot" and "properties" not in patch:
            record["properties"].update(patch)
        else:
            record.update(patch)
        _map(system, record)

    run()


@pytest.mark.parametrize("system", list(MAPPERS))
def test_a_hostile_field_in_a_native_record_is_a_mapping_error_or_a_deal(
    system: str, dataset: dict[str, Any]
) -> None:
    _mapper_fuzz(system, dataset, CASES["mapper"])


@pytest.mark.slow
@pytest.mark.parametrize("system", list(MAPPERS))
def test_a_hostile_field_in_a_native_record_many_cases(
    system: str, dataset: dict[str, Any]
) -> None:
    _mapper_fuzz(system, dataset, 10 * CASES["mapper"])


@pytest.mark.parametrize("system", list(MAPPERS))
def test_a_native_record_that_is_not_an_object_is_a_mapping_error(system: str) -> None:
    @_fuzz(CASES["record"])
    @given(record=hostile_values().filter(lambda v: not isinstance(v, dict)))
    def run(record: Any) -> None:
        assert _map(system, record) is None

    run()


def test_hostile_values_are_refused_with_the_field_named(dataset: dict[str, Any]) -> None:
    """The field named is the one that is wrong, so an operator can find it in the CRM."""
    cases = [
        ("salesforce", {"Amount": "NaN"}, "Amount"),
        ("salesforce", {"Amount": float("inf")}, "Amount"),
        ("salesforce", {"CloseDate": "2024-02-30"}, "CloseDate"),
        ("salesforce", {"CurrencyIsoCode": "XXX"}, "CurrencyIsoCode"),
        ("salesforce", {"LastModifiedDate": "2024-06-01T25:00:00Z"}, "LastModifiedDate"),
        ("hubspot", {"amount": "1e999999999"}, "amount"),
        ("hubspot", {"properties": ["not", "an", "object"]}, "properties"),
        ("hubspot", {"deal_currency_code": "US$"}, "deal_currency_code"),
        ("pipedrive", {"value": "-Infinity"}, "value"),
        ("pipedrive", {"currency": "EURO"}, "currency"),
        ("pipedrive", {"add_time": "0000-00-00 00:00:00"}, "add_time"),
    ]
    for system, patch, field in cases:
        record = copy.deepcopy(dataset[system][DEAL_KEYS[system]][0])
        if system == "hubspot" and "properties" not in patch:
            record["properties"].update(patch)
        else:
            record.update(patch)
        with pytest.raises(MappingError) as caught:
            MAPPERS[system](record, make_ctx(system))
        assert caught.value.field == field, (patch, caught.value.as_dict())
        assert caught.value.id == str(record.get("Id", record.get("id")))


def test_an_amount_out_of_range_says_which_range_in_words(dataset: dict[str, Any]) -> None:
    # it said "(digits beyond 1E+-100)"
    record = copy.deepcopy(dataset["salesforce"][DEAL_KEYS["salesforce"]][0])
    record["Amount"] = 1e300
    with pytest.raises(MappingError) as caught:
        deal_from_salesforce(record, make_ctx("salesforce"))
    assert caught.value.reason == (
        "1E+300 is out of range (digits more than 100 places from the decimal point)"
    )


# ---- plan files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_document(
    dataset: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A real plan, from a reconcile of the generated dataset."""
    folder = tmp_path_factory.mktemp("plan")
    env = make_env(folder, dataset, f"sqlite:///{folder / 'store.db'}", push=PUSH)
    try:
        with env.runtime() as rt:
            plan = plan_run(rt.config, rt.store, rt.connectors, run_id="fuzz", full=True).plan
    finally:
        env.sandbox.stop()
    document = plan_to_json(plan)
    assert document["changes"] and document["creates"]
    return document


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield from _paths(item, (*prefix, index))


def _replace(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _seal(document: dict[str, Any]) -> bytes:
    """What a forger does: recompute the checksum (it is an integrity check, not a signature)."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return json.dumps({**body, "checksum": digest}).encode()


def _load(data: bytes) -> Plan | None:
    """The plan, or None after checking the PlanError is one line naming the file."""
    try:
        return plan_from_json(data, "fuzz.json")
    except PlanError as exc:
        text = str(exc)
        assert text.startswith("plan fuzz.json: ") and "\n" not in text, text[:300]
        assert len(text) < 600, text[:300]
        return None


def test_a_hostile_value_in_a_resealed_plan_is_a_plan_error_or_a_plan(
    plan_document: dict[str, Any],
) -> None:
    paths = [p for p in _paths(plan_document) if p[0] != "checksum"]

    @_fuzz(CASES["signed"])
    @given(path=st.sampled_from(paths), value=hostile_values())
    def run(path: tuple[Any, ...], value: Any) -> None:
        _load(_seal(_replace(plan_document, path, value)))

    run()


def test_an_edited_or_truncated_plan_is_refused(plan_document: dict[str, Any]) -> None:
    paths = [p for p in _paths(plan_document) if p[0] != "checksum"]
    original = json.dumps(plan_document).encode()

    @_fuzz(CASES["unsigned"])
    @given(path=st.sampled_from(paths), value=hostile_values())
    def edited(path: tuple[Any, ...], value: Any) -> None:
        changed = _replace(plan_document, path, value)
        if changed != plan_document:
            assert _load(json.dumps(changed).encode()) is None

    @_fuzz(CASES["truncated"])
    @given(cut=st.integers(0, len(original) - 1))
    def truncated(cut: int) -> None:
        assert _load(original[:cut]) is None

    edited()
    truncated()
    assert _load(original) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b'{"version":' * 50_000,
        b"\xff\xfe\x00",
        b'{"version": 1, "a": "\\ud800"}',
        b'{"version": NaN}',
        b"",
        json.dumps({"version": 1, "deep": DEEP}).encode(),
    ],
    ids=["deep-array", "deep-object", "not-utf8", "lone-surrogate", "nan", "empty", "nested"],
)
def test_malformed_plan_bytes_are_refused(data: bytes) -> None:
    assert _load(data) is None


# ---- through the CLI ------------------------------------------------------------------------


def _crmsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*warm_crmsync(), *args], env=crmsync_env(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(dataset: dict[str, Any], tmp_path: Path) -> Iterator[SandboxEnv]:
    sandbox = make_env(tmp_path / "sandbox", dataset, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield sandbox
    finally:
        sandbox.sandbox.stop()


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_crmsync_apply_refuses_a_tampered_or_truncated_plan_with_zero_writes(
    env: SandboxEnv, plan_document: dict[str, Any], tmp_path: Path
) -> None:
    made = tmp_path / "made.json"
    done = _crmsync("reconcile", "--config", str(env.config), "--dry-run", "--plan-out", str(made))
    assert done.returncode == 0, done.stderr
    text = made.read_bytes()
    plan = json.loads(text)
    assert plan["changes"]
    tampered = copy.deepcopy(plan)
    tampered["changes"][0]["to"] = tampered["changes"][0]["from"]
    # an absurd amount, sealed as crmsync would seal it: refused as a value no amount holds
    amount = next(i for i, c in enumerate(plan["changes"]) if c["field"] == "amount")
    forged = _replace(plan, ("changes", amount, "to"), "1e999999999")
    variants = {
        "truncated": text[: len(text) // 2],
        "tampered": json.dumps(tampered).encode(),
        "forged": _seal(forged),
        "nested": b"[" * 100_000,
        "not-json": b"\x00\x01 not a plan",
    }
    for name, data in variants.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        done = _crmsync("apply", str(path), "--config", str(env.config), "--yes")
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, name
        assert str(path) in done.stderr, (name, done.stderr)
    assert env.writes() == 0


def _with_bad_records(dataset: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The dataset plus one unmappable deal per system (a copy of a good one, unlinked)."""
    out = copy.deepcopy(dataset)
    sf = copy.deepcopy(out["salesforce"]["Opportunity"][0])
    sf.update(Id="006BAD00000000001AA", CloseDate="2024-02-30", Crmsync_Id__c=None)
    sf.update(HubSpot_Deal_Id__c=None, Pipedrive_Deal_Id__c=None)
    hs = copy.deepcopy(out["hubspot"]["deals"][0])
    hs["id"] = "9999999999"
    hs["properties"].update(hs_object_id="9999999999", amount="1e999999999", crmsync_id=None)
    hs["properties"].update(salesforce_opportunity_id=None, pipedrive_deal_id=None)
    pd = copy.deepcopy(out["pipedrive"]["deals"][0])
    pd.update(id=99999, currency="XXX", title="bad \x1b[31m\u202e deal")
    out["salesforce"]["Opportunity"].append(sf)
    out["hubspot"]["deals"].append(hs)
    out["pipedrive"]["deals"].append(pd)
    return out, {"salesforce": sf["Id"], "hubspot": hs["id"], "pipedrive": str(pd["id"])}


def _with_bad_change_times(dataset: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """`_with_bad_records`, plus a deal per system whose change time (the one a pull's cursor
    reads) is no time, the newest of its listing by the text: it is that record's problem,
    not the pull's (whose cursor failed on it)."""
    out, bad = _with_bad_records(dataset)
    sf = copy.deepcopy(out["salesforce"]["Opportunity"][1])
    sf.update(Id="006BAD00000000002AA", SystemModstamp="yesterday", Crmsync_Id__c=None)
    hs = copy.deepcopy(out["hubspot"]["deals"][1])
    hs["id"] = "9999999998"
    hs["properties"].update(hs_object_id="9999999998", hs_lastmodifieddate="99999999999999999")
    pd = copy.deepcopy(out["pipedrive"]["deals"][1])
    pd.update(id=99998, update_time="yesterday")
    out["salesforce"]["Opportunity"].append(sf)
    out["hubspot"]["deals"].append(hs)
    out["pipedrive"]["deals"].append(pd)
    return out, bad


def _live_ids(dataset: dict[str, Any]) -> set[tuple[str, str]]:
    """(system, id) of the deals a pull lists: not deleted (HubSpot archives)."""
    return {
        (system, str(r["Id"] if system == "salesforce" else r["id"]))
        for system, key in DEAL_KEYS.items()
        for r in dataset[system][key]
        if not (r.get("archived") or r.get("IsDeleted") or r.get("deleted"))
    }


def test_an_unmappable_record_is_reported_by_pull_and_reconcile_and_the_rest_goes_on(
    dataset: dict[str, Any], tmp_path: Path
) -> None:
    data, bad = _with_bad_change_times(dataset)
    env = make_env(tmp_path / "sandbox", data, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        pulled = _crmsync("pull", "--config", str(env.config), "--format", "jsonl")
        assert pulled.returncode == 0, pulled.stderr
        assert "Traceback" not in pulled.stderr
        for system, rid in bad.items():
            assert f"skipped {system} record {rid}: " in pulled.stderr, pulled.stderr
        # Pipedrive's change time is its deal's; the others' maps from another field.
        assert "skipped pipedrive record 99998: updated_at: " in pulled.stderr, pulled.stderr
        deals = [json.loads(line) for line in pulled.stdout.splitlines()]
        pulled_ids = {(d["system"], d["id"]) for d in deals}
        good = _live_ids(data) - set(bad.items()) - {("pipedrive", "99998")}
        assert pulled_ids == good, "every good, live deal is pulled"
        assert not {(d["system"], d["id"]) for d in deals} & set(bad.items())

        args = ("--config", str(env.config), "--dry-run", "--format", "json", "--full")
        planned = _crmsync("reconcile", *args)
        assert planned.returncode in (0, 3), planned.stderr
        assert "Traceback" not in planned.stderr
        plan = json.loads(planned.stdout)
        assert {(e["system"], e["id"]) for e in plan["errors"]} >= set(bad.items())
        assert all(e["field"] and e["reason"] for e in plan["errors"])
        assert plan["changes"], "the good deals are still planned"
        assert env.writes() == 0
    finally:
        env.sandbox.stop()


def test_plan_summary_counts_the_unmappable_records_it_lists_in_errors(
    dataset: dict[str, Any], tmp_path: Path
) -> None:
    data, bad = _with_bad_records(dataset)
    env = make_env(tmp_path / "sandbox", data, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        planned = _crmsync("reconcile", "--config", str(env.config), "--dry-run", "--format",
                           "json")  # fmt: skip
        assert planned.returncode in (0, 3), planned.stderr
        plan = json.loads(planned.stdout)
        assert {(e["system"], e["id"]) for e in plan["errors"]} >= set(bad.items())
        assert plan["summary"]["errors"] == len(plan["errors"])
    finally:
        env.sandbox.stop()


def test_an_unmappable_record_another_crm_links_to_is_an_error_not_a_deletion(
    dataset: dict[str, Any], tmp_path: Path
) -> None:
    """It is still in its CRM: reported once, in `errors`; not as deleted there (it was listed
    as 'deleted there (or not visible)'); and its copies are not created again beside it."""
    data = copy.deepcopy(dataset)
    live_hubspot = {d["id"]: d for d in data["hubspot"]["deals"] if not d.get("archived")}
    sf = next(
        o
        for o in data["salesforce"]["Opportunity"]
        if o.get("HubSpot_Deal_Id__c") in live_hubspot
        and o.get("Pipedrive_Deal_Id__c")
        and not (o.get("IsDeleted") or o["IsClosed"])
    )
    bad = live_hubspot[sf["HubSpot_Deal_Id__c"]]
    bad["properties"]["amount"] = "12,5"
    env = make_env(tmp_path / "sandbox", data, f"sqlite:///{tmp_path / 'store.db'}", push=PUSH)
    try:
        planned = _crmsync("reconcile", "--config", str(env.config), "--dry-run", "--format",
                           "json")  # fmt: skip
        assert planned.returncode in (0, 3), planned.stderr
        plan = json.loads(planned.stdout)
        assert ("hubspot", bad["id"], "amount") in {
            (e["system"], e["id"], e["field"]) for e in plan["errors"]
        }
        gone = {(g["system"], g["id"]) for d in plan["deleted"] for g in d["deleted"]}
        assert ("hubspot", bad["id"]) not in gone, plan["deleted"]
        assert plan["summary"]["deleted"] == len(plan["deleted"])
        copies = {("salesforce", sf["Id"]), ("pipedrive", str(sf["Pipedrive_Deal_Id__c"]))}
        sources = {(c["source"]["system"], c["source"]["id"]) for c in plan["creates"]
                   if c["system"] == "hubspot"}  # fmt: skip
        assert sources and not sources & copies, sources
    finally:
        env.sandbox.stop()
