"""A run resolves its account names against Pipedrive's organizations the cheaper way: a search
per name for a few names; for more, one listing of every organization (pages of 500) with the
same name and outcome rules. Searches are paced to Pipedrive's search limit (10 per 2 s)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import requests

from connectors.base import NativeCreate
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from tests.connectors import contract

FALLBACK = 1  # create_org_id in tests/pipedrive/conftest.py


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    return dict(sandbox.servers["pipedrive"].stats.snapshot())


def _emulator(sandbox: Sandbox) -> Any:
    return sandbox.servers["pipedrive"].emulator


def _orgs_named(sandbox: Sandbox, name: str) -> list[int]:
    em = _emulator(sandbox)
    with em.lock:
        return list(em.store.orgs.named(name.strip()))


def _org_of(sandbox: Sandbox, deal_id: str | None) -> int:
    em = _emulator(sandbox)
    with em.lock:
        return int(em.store.deals[int(str(deal_id))]["org_id"]["value"])


def _unique_names(sandbox: Sandbox, count: int) -> list[str]:
    """Names exactly one organization of the sandbox bears."""
    em = _emulator(sandbox)
    with em.lock:
        names = [str(o["name"]) for o in em.store.orgs.listing()]
    keys = [n.strip().casefold() for n in names]
    return [n for n, k in zip(names, keys, strict=True) if keys.count(k) == 1][:count]


def _add_orgs(sandbox: Sandbox, names: list[str]) -> None:
    em = _emulator(sandbox)
    with em.lock:
        for name in names:
            em.store.orgs.create({"name": name})


def _org_count(sandbox: Sandbox) -> int:
    em = _emulator(sandbox)
    with em.lock:
        return len(em.store.orgs.orgs)


def _creates(names: list[str], tag: str) -> list[NativeCreate]:
    return [
        NativeCreate(f"{tag}-{n}", {"title": f"{tag} {n}", "stage_id": 2}, name)
        for n, name in enumerate(names)
    ]


def _in_batches(connector: Any, creates: list[NativeCreate]) -> list[Any]:
    """As apply sends Pipedrive's creates: 10 per call."""
    results: list[Any] = []
    for start in range(0, len(creates), 10):
        results += connector.create_deals(creates[start : start + 10])
    return results


def test_a_migration_of_many_accounts_lists_the_organizations_once_instead_of_searching_each(
    make_connector, sandbox
):
    _add_orgs(sandbox, [f"Filler {n}" for n in range(700)])  # more than one list page
    _add_orgs(sandbox, ["Twin Holdings", "twin holdings "])
    existing = _unique_names(sandbox, 50)
    fresh = [f"Brand New {n}" for n in range(9)]
    names = [*existing, *fresh, " TWIN HOLDINGS"]  # K = 60 distinct names
    pages = math.ceil(_org_count(sandbox) / 500)
    connector = make_connector(options={"org_search_max": 5})
    sandbox.servers["pipedrive"].stats.clear()
    connector.expect_accounts(names)
    results = _in_batches(connector, _creates(names, "mig"))
    calls = _stats(sandbox)["requests"]
    assert calls.get("GET /api/v2/organizations/search", 0) == 0
    assert calls["GET /api/v2/organizations"] == pages
    assert calls["POST /api/v2/organizations"] == len(fresh)
    assert all(r.ok for r in results)
    for name, result in zip(names[:-1], results, strict=False):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org
    twin = results[-1]
    assert _org_of(sandbox, twin.id) == FALLBACK
    assert "2 organizations are named 'TWIN HOLDINGS'" in (twin.note or "")
    print(f"\nK={len(names)}, {_org_count(sandbox)} organizations: {calls}")


def test_a_run_of_few_accounts_searches_each_name_and_lists_nothing(connector, sandbox):
    names = [*_unique_names(sandbox, 2), "Brand New Few"]
    sandbox.servers["pipedrive"].stats.clear()
    connector.expect_accounts(names)
    results = connector.create_deals(_creates(names, "few"))
    assert all(r.ok for r in results)
    calls = _stats(sandbox)["requests"]
    assert calls["GET /api/v2/organizations/search"] == len(names)
    assert calls.get("GET /api/v2/organizations", 0) == 0
    for name, result in zip(names, results, strict=True):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org


def test_searches_beyond_ten_per_two_seconds_are_paced_and_no_429_reaches_the_run(
    make_connector, sandbox
):
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000, search_rate_limit=10))
    names = [f"Paced Company {n}" for n in range(22)]
    connector = make_connector(options={"org_search_max": 1_000})  # searches every name
    sandbox.servers["pipedrive"].stats.clear()
    began = time.monotonic()
    connector.expect_accounts(names)
    results = _in_batches(connector, _creates(names, "paced"))
    took = time.monotonic() - began
    stats = _stats(sandbox)
    assert all(r.ok for r in results)
    assert stats["requests"]["GET /api/v2/organizations/search"] == len(names)
    assert stats["statuses"].get("429", 0) == 0
    assert not connector._policy.retries()
    assert took >= 4.0  # 22 searches: three windows of 2 s
    print(f"\n{len(names)} searches in {took:.1f} s: {stats['statuses']}")


def test_the_emulator_refuses_an_eleventh_search_within_two_seconds_with_retry_after(sandbox):
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000, search_rate_limit=10))
    url = sandbox.urls["pipedrive"] + "/v1/organizations/search"
    params = {"term": "Acme", "fields": "name", "exact_match": "true"}
    params["api_token"] = sandbox.tokens["pipedrive"]
    answers = [requests.get(url, params=params, timeout=5) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert answers[10].status_code == 429
    assert float(answers[10].headers["Retry-After"]) > 0
    lists = requests.get(sandbox.urls["pipedrive"] + "/v1/organizations", params=params, timeout=5)
    assert lists.status_code == 200  # the general limit is apart


def test_an_organization_made_mid_run_is_reused_by_a_later_copy_under_the_listing(
    make_connector, sandbox
):
    names = [*_unique_names(sandbox, 12), "Made Midrun Co"]
    connector = make_connector(options={"org_search_max": 5})
    sandbox.servers["pipedrive"].stats.clear()
    connector.expect_accounts([*names, " made MIDRUN co "])
    first = connector.create_deals(_creates(names, "mid"))
    later = connector.create_deals(_creates([" made MIDRUN co "], "later"))
    calls = _stats(sandbox)["requests"]
    [made] = _orgs_named(sandbox, "Made Midrun Co")
    assert _org_of(sandbox, first[-1].id) == made == _org_of(sandbox, later[0].id)
    assert calls["POST /api/v2/organizations"] == 1
    assert calls["GET /api/v2/organizations"] == math.ceil(_org_count(sandbox) / 500)
    assert calls.get("GET /api/v2/organizations/search", 0) == 0


def test_a_listing_longer_than_the_searches_it_saves_stops_and_searches_instead(
    make_connector, sandbox
):
    _add_orgs(sandbox, [f"Filler {n}" for n in range(4 * 500)])  # more pages than names
    names = _unique_names(sandbox, 3)
    connector = make_connector(options={"org_search_max": 2})
    sandbox.servers["pipedrive"].stats.clear()
    connector.expect_accounts(names)
    results = connector.create_deals(_creates(names, "long"))
    calls = _stats(sandbox)["requests"]
    assert calls["GET /api/v2/organizations"] == len(names)  # at most K pages
    assert calls["GET /api/v2/organizations/search"] == len(names)
    for name, result in zip(names, results, strict=True):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org


@pytest.mark.parametrize("recent", [True, False], ids=["recent", "older-than-reuse"])
def test_a_full_reads_listing_files_the_runs_copies_while_it_is_recent(
    make_connector, sandbox, recent
):
    """A full read lists every organization to name its deals: the same run's copies of many
    accounts are filed from it, unless it is older than the reuse window (a person may have
    made or deleted organizations meanwhile), and then listed afresh."""
    names = [*_unique_names(sandbox, 12), "Made After The Read Co"]
    pages = math.ceil(_org_count(sandbox) / 500)
    options = {"org_search_max": 5, "org_listing_reuse_s": 600.0 if recent else 0.0}
    connector = make_connector(options=options)
    sandbox.servers["pipedrive"].stats.clear()
    assert list(connector.deals())
    read = _stats(sandbox)["requests"]["GET /api/v2/organizations"]
    assert read == pages  # the full read listed them all
    connector.expect_accounts(names)
    results = _in_batches(connector, _creates(names, "reuse"))
    calls = _stats(sandbox)["requests"]
    assert calls["GET /api/v2/organizations"] == read + (0 if recent else pages)
    assert calls.get("GET /api/v2/organizations/search", 0) == 0
    assert calls["POST /api/v2/organizations"] == 1
    for name, result in zip(names, results, strict=True):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org


def test_a_full_reads_listing_it_did_not_read_to_its_end_files_nothing(make_connector, sandbox):
    """The full read lists the organizations only while that pays for itself: a listing it
    left unread past some page would leave out organizations the copies belong to."""
    _add_orgs(sandbox, [f"Late Filler {n}" for n in range(4 * 500)])  # pages no deal names
    names = [f"Late Filler {n}" for n in range(1_990, 2_000)] + ["Late Filler 7", "Late Filler 9"]
    connector = make_connector(options={"org_search_max": 5})
    assert list(connector.deals())
    sandbox.servers["pipedrive"].stats.clear()
    connector.expect_accounts(names)
    results = _in_batches(connector, _creates(names, "late"))
    calls = _stats(sandbox)["requests"]
    assert calls.get("POST /api/v2/organizations", 0) == 0  # each found, none made twice
    for name, result in zip(names, results, strict=True):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org
