"""Which organization a Pipedrive copy's account name stands for: the whole name, ignoring case
and surrounding spaces; several of that name are never guessed between."""

from __future__ import annotations

from connectors.pipedrive_orgs import Filing, filing_of


def test_an_account_name_matches_an_organization_whole_ignoring_case_and_outer_spaces() -> None:
    found = [
        {"id": 7, "name": " acme corp "},
        {"id": 8, "name": "Acme Corp."},
        {"id": 9, "name": "Acme Corporation"},
    ]
    assert filing_of("Acme Corp", found) == Filing(7, found=(7,))
    assert filing_of("Acme", found) is None  # a search's looser matches are not ours


def test_several_organizations_of_the_name_file_the_copy_under_the_fallback_and_say_which() -> None:
    found = [{"id": n, "name": "Twin Holdings"} for n in range(1, 8)]
    filing = filing_of("Twin Holdings ", found)
    assert filing is not None and filing.org_id is None
    assert filing.found == tuple(range(1, 8))  # what a dry run's plan lists
    assert filing.note == (
        "7 organizations are named 'Twin Holdings' (1, 2, 3, 4, 5, ...): not guessed, "
        "filed under create_org_id"
    )
