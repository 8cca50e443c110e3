"""The searches that look a run's account names up among HubSpot's companies: each name once
(compared as crmsync compares names), lowercased as HubSpot's IN matches a string property,
200 a search in two groups of 100, within HubSpot's limits of a search. Pure: no CRM."""

from __future__ import annotations

from connectors.hubspot_company_lookup import company_calls, company_searches


def test_names_are_searched_once_each_lowercased_200_a_search_in_groups_of_100() -> None:
    names = [f"Company {i:03d}" for i in range(450)] + ["  COMPANY 001 ", "company 002"]
    searches = company_searches(names)
    assert [[len(g[0]["values"]) for g in groups] for groups in searches] == [
        [100, 100],
        [100, 100],
        [50],
    ]
    values = [v for groups in searches for g in groups for v in g[0]["values"]]
    assert values == [f"company {i:03d}" for i in range(450)]  # duplicates by name: once
    assert all(
        g == [{"propertyName": "name", "operator": "IN", "values": g[0]["values"]}]
        for groups in searches
        for g in groups
    )
    assert company_calls(names) == 3
    assert company_searches(["", "  "]) == [] and company_calls([]) == 0
