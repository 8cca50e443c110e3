"""The searches that look a run's account names up among HubSpot's companies: each name once
(compared as crmsync compares names), lowercased as HubSpot's IN matches a string property,
also with a space before, after and both (as people type them), 125 names a search in five
groups of 100 values, within HubSpot's limits of a search. Pure: no CRM."""

from __future__ import annotations

from connectors.hubspot_company_lookup import WORDS, company_calls, company_searches


def test_names_are_searched_once_each_lowercased_as_typed_125_a_search_in_groups_of_100() -> None:
    names = [f"Company {i:03d}" for i in range(450)] + ["  COMPANY 001 ", "company 002"]
    searches = company_searches(names)
    assert [[len(g[0]["values"]) for g in groups] for groups in searches] == [
        [100] * 5,
        [100] * 5,
        [100] * 5,
        [100] * 3,
    ]
    values = [v for groups in searches for g in groups for v in g[0]["values"]]
    assert values == [  # duplicates by name: once
        v
        for i in range(450)
        for v in (
            f"company {i:03d}",
            f"company {i:03d} ",
            f" company {i:03d}",
            f" company {i:03d} ",
        )
    ]
    assert all(
        g == [{"propertyName": "name", "operator": "IN", "values": g[0]["values"]}]
        for groups in searches
        for g in groups
    )
    assert company_calls(names) == 4
    assert company_searches(["", "  "]) == [] and company_calls([]) == 0


def test_a_name_as_long_as_a_company_name_holds_is_never_sent_longer() -> None:
    longest = "x" * WORDS.longest
    [[[only]]] = company_searches([longest, "y" * (WORDS.longest + 1)])
    assert only["values"] == [longest]
