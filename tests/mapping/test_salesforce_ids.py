"""The 18-character id Salesforce's API gives, from an id as a person copied it elsewhere."""

from __future__ import annotations

import pytest

from mapping.salesforce_ids import case_safe_id

# Salesforce's own example of the two forms of one id (its help on 15- and 18-character ids).
SHOWN, API = "001A0000006Vm9r", "001A0000006Vm9rIAC"


def test_a_15_character_id_reads_as_the_18_character_id_the_api_gives() -> None:
    assert case_safe_id(SHOWN) == API
    assert case_safe_id(API) == API


@pytest.mark.parametrize("changed", [API.lower(), API.upper(), "001a0000006vM9RiAc"])
def test_an_18_character_id_in_another_case_reads_as_the_api_gives_it(changed: str) -> None:
    assert case_safe_id(changed) == API


@pytest.mark.parametrize(
    "text",
    [
        "12345",
        "",
        "001A0000006Vm9rI",  # 16 characters
        "001A0000006Vm9r-AC",
        "001A0000006Vm9r7Z9",  # a suffix outside the alphabet
        "001A0000006Vm9rBAC",  # a suffix that has the first character, a digit, upper case
    ],
)
def test_text_that_is_no_salesforce_id_is_left_as_it_is(text: str) -> None:
    assert case_safe_id(text) == text
