"""The connector files each copy under the organization of its account's name: one search per
name and run, one organization made per name that has none, even when its answer was cut."""

from __future__ import annotations

from typing import Any

import requests

from connectors.base import NativeCreate
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from tests.connectors import contract


def _requests(sandbox: Sandbox) -> dict[str, int]:
    return dict(sandbox.servers["pipedrive"].stats.snapshot()["requests"])


def _orgs_named(sandbox: Sandbox, name: str) -> list[int]:
    em: Any = sandbox.servers["pipedrive"].emulator
    with em.lock:
        return list(em.store.orgs.named(name))


def _org_of(sandbox: Sandbox, deal_id: str | None) -> int:
    em: Any = sandbox.servers["pipedrive"].emulator
    with em.lock:
        return int(em.store.deals[int(str(deal_id))]["org_id"]["value"])


def test_copies_of_one_account_search_its_organization_once_and_share_it(connector, sandbox):
    spellings = ["Nimbus Ventures", " nimbus ventures ", "NIMBUS VENTURES"]
    creates = [
        NativeCreate(f"ent-n{n}", {"title": f"Copy {n}", "stage_id": 2}, name)
        for n, name in enumerate(spellings)
    ]
    sandbox.servers["pipedrive"].stats.clear()
    results = connector.create_deals(creates)
    assert all(r.ok and r.note is None for r in results)
    [nimbus] = _orgs_named(sandbox, "Nimbus Ventures")
    assert {_org_of(sandbox, r.id) for r in results} == {nimbus}
    calls = _requests(sandbox)
    assert calls["GET /api/v2/organizations/search"] == 1
    assert calls["POST /api/v2/organizations"] == 1
    assert calls["POST /api/v2/deals"] == 3


def test_an_organization_whose_answer_was_cut_is_not_made_twice(connector, sandbox):
    names = [f"Cut Company {n}" for n in range(6)]
    creates = [
        NativeCreate(f"cut-{n}", {"title": f"Cut {n}", "stage_id": 2}, name)
        for n, name in enumerate(names)
    ]
    contract.set_faults(sandbox, "pipedrive", Faults(drop=0.5, seed=3, rate_limit=10_000))
    try:
        results = connector.create_deals(creates)
    finally:
        contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000))
    assert all(r.ok for r in results)
    assert connector._policy.retries().get("create organization", 0) >= 1  # answers were cut
    for name, result in zip(names, results, strict=True):
        [org] = _orgs_named(sandbox, name)
        assert _org_of(sandbox, result.id) == org


def test_a_refused_organization_fails_its_copies_with_its_reason(connector, sandbox):
    create = NativeCreate("ent-x", {"title": "Copy", "stage_id": 2, "owner_id": 999_999}, "Xyz")
    [result] = connector.create_deals([create])
    assert (result.ok, result.code) == (False, "400")
    assert "organization 'Xyz' could not be made" in (result.error or "")
    dump = requests.get(sandbox.urls["pipedrive"] + "/__sandbox/dump", timeout=5).json()
    assert not [o for o in dump["pipedrive"]["organizations"] if o["name"] == "Xyz"]
