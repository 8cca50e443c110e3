"""Organization names for v2 deals: each organization read once, 100 ids a call, full calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.pipedrive_names import OrgNames


def _pages(orgs: Sequence[int | None], size: int) -> list[list[dict[str, Any]]]:
    deals = [{"id": n, "org_id": org} for n, org in enumerate(orgs)]
    return [deals[at : at + size] for at in range(0, len(deals), size)]


class _Directory:
    """The organizations an `ids=` call lists (org 13 is deleted: never listed)."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def read(self, ids: Sequence[int]) -> list[Mapping[str, Any]]:
        self.calls.append(list(ids))
        return [{"id": i, "name": f"Org {i}"} for i in ids if i != 13]


def test_names_of_many_pages_are_read_in_full_calls_of_100_ids_each_once() -> None:
    orgs = [n % 250 for n in range(1000)]  # 250 organizations, each named by 4 deals
    directory = _Directory()
    names = OrgNames(directory.read)
    deals = list(names.named(_pages(orgs, 30)))
    assert [len(c) for c in directory.calls] == [100, 100, 50]
    assert sorted(d["id"] for d in deals) == list(range(1000))
    assert all(d["org_name"] == f"Org {d['org_id']}" for d in deals if d["org_id"] != 13)
    list(names.named(_pages(orgs, 30)))  # a second read this run: every name known
    assert len(directory.calls) == 3


def test_a_deal_without_organization_passes_and_an_unlisted_one_is_nameless() -> None:
    directory = _Directory()
    deals = list(OrgNames(directory.read).named(_pages([None, 13, 13, 5], 2)))
    by_id = {d["id"]: d for d in deals}
    assert "org_name" not in by_id[0]
    assert by_id[1]["org_name"] is None and by_id[2]["org_name"] is None
    assert by_id[3]["org_name"] == "Org 5"
    assert directory.calls == [[13, 5]]


def test_deals_waiting_for_names_are_bounded() -> None:
    directory = _Directory()
    names = OrgNames(directory.read, hold=10)
    seen = 0
    for _ in names.named(_pages(list(range(50)), 5)):
        seen += 1
    assert seen == 50
    # read as soon as more than `hold` deals wait: never more than `hold` and one page
    assert len(directory.calls) > 1 and max(len(c) for c in directory.calls) <= 10 + 5
