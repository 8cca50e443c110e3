"""Organization names for v2 deals: each organization read once, 100 ids a call, full calls; a
full read's listing (500 a page) instead while it pays for itself."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.pipedrive_names import SPARE, OrgNames


def _pages(orgs: Sequence[int | None], size: int) -> list[list[dict[str, Any]]]:
    deals = [{"id": n, "org_id": org} for n, org in enumerate(orgs)]
    return [deals[at : at + size] for at in range(0, len(deals), size)]


class _Directory:
    """The organizations an `ids=` call lists (org 13 is deleted: never listed, but still read
    by id; org 14 is gone: read by id it is not found)."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.one_by_one: list[int] = []

    def read(self, ids: Sequence[int]) -> list[Mapping[str, Any]]:
        self.calls.append(list(ids))
        return [{"id": i, "name": f"Org {i}"} for i in ids if i not in (13, 14)]

    def read_one(self, org_id: int) -> Mapping[str, Any] | None:
        self.one_by_one.append(org_id)
        return {"id": 13, "name": "Deleted Org 13", "is_deleted": True} if org_id == 13 else None


def test_names_of_many_pages_are_read_in_full_calls_of_100_ids_each_once() -> None:
    orgs = [n % 250 for n in range(1000)]  # 250 organizations, each named by 4 deals
    directory = _Directory()
    names = OrgNames(directory.read, directory.read_one)
    deals = list(names.named(_pages(orgs, 30)))
    assert [len(c) for c in directory.calls] == [100, 100, 50]
    assert sorted(d["id"] for d in deals) == list(range(1000))
    assert all(d["org_name"] == f"Org {d['org_id']}" for d in deals if d["org_id"] not in (13, 14))
    list(names.named(_pages(orgs, 30)))  # a second read this run: every name known
    assert len(directory.calls) == 3


def test_an_organization_the_list_leaves_out_is_read_by_id_and_a_gone_one_is_nameless() -> None:
    """`ids=` leaves out organizations that are deleted or not visible (v2 spec); a deleted
    one still names its deals' account, as v1's deal carried it: read by id, once."""
    directory = _Directory()
    names = OrgNames(directory.read, directory.read_one)
    deals = list(names.named(_pages([None, 13, 13, 5, 14], 2)))
    by_id = {d["id"]: d for d in deals}
    assert "org_name" not in by_id[0]
    assert by_id[1]["org_name"] == by_id[2]["org_name"] == "Deleted Org 13"
    assert by_id[3]["org_name"] == "Org 5"
    assert by_id[4]["org_name"] is None
    assert directory.calls == [[13, 5, 14]]
    assert directory.one_by_one == [13, 14]


def test_deals_waiting_for_names_are_bounded() -> None:
    directory = _Directory()
    names = OrgNames(directory.read, directory.read_one, hold=10)
    seen = 0
    for _ in names.named(_pages(list(range(50)), 5)):
        seen += 1
    assert seen == 50
    # read as soon as more than `hold` deals wait: never more than `hold` and one page
    assert len(directory.calls) > 1 and max(len(c) for c in directory.calls) <= 10 + 5


class _Listing:
    """Organization list pages of 500 by id, of ids 1 to `last` (13 and 14 left out), counted."""

    def __init__(self, last: int) -> None:
        self.last, self.read = last, 0

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        for start in range(1, self.last + 1, 500):
            self.read += 1
            ids = range(start, min(start + 500, self.last + 1))
            yield [{"id": i, "name": f"Org {i}"} for i in ids if i not in (13, 14)]


def test_a_listing_naming_most_organizations_replaces_the_ids_calls() -> None:
    orgs = [1 + n % 900 for n in range(3000)]  # 900 of the listing's 1,000 organizations
    directory, listing = _Directory(), _Listing(1000)
    names = OrgNames(directory.read, directory.read_one)
    deals = list(names.named(_pages(orgs, 500), listing.pages()))
    assert listing.read == 2 and directory.calls == []
    assert all(d["org_name"] == f"Org {d['org_id']}" for d in deals if d["org_id"] not in (13, 14))
    # what the listing passed without giving is read by id, as the `ids=` path does
    assert directory.one_by_one == [13, 14]
    assert {d["org_name"] for d in deals if d["org_id"] == 13} == {"Deleted Org 13"}


def test_a_listing_naming_none_of_the_deals_organizations_stops_after_spare_pages() -> None:
    orgs = [15_000 + n % 250 for n in range(1000)]  # past the first 30 pages of 500
    directory, listing = _Directory(), _Listing(20_000)
    names = OrgNames(directory.read, directory.read_one)
    deals = list(names.named(_pages(orgs, 30), listing.pages()))
    assert listing.read == SPARE
    assert [len(c) for c in directory.calls] == [100, 100, 50]
    assert all(d["org_name"] == f"Org {d['org_id']}" for d in deals)


def test_a_listing_is_read_on_while_its_pages_pay_for_themselves() -> None:
    """Deals naming one organization in four of 4,000: each page of 500 gives 125 names, more
    than the 100 an `ids=` call would; read to the end, no `ids=` call."""
    orgs = list(range(20, 4000, 4))
    directory, listing = _Directory(), _Listing(4000)
    names = OrgNames(directory.read, directory.read_one)
    deals = list(names.named(_pages(orgs, 500), listing.pages()))
    assert listing.read == 8 and directory.calls == []
    assert all(d["org_name"] == f"Org {d['org_id']}" for d in deals)
