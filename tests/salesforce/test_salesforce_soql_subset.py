"""The emulator's SOQL subset: quoting round-trips, operators, ordering and refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from simple_salesforce.format import format_soql

from connectors.sandbox.soql import SoqlError, parse_soql

SCHEMAS = {
    "Opportunity": {
        "Id": "id",
        "Name": "string",
        "Amount": "currency",
        "IsWon": "boolean",
        "CloseDate": "date",
        "SystemModstamp": "datetime",
    }
}
ROWS: list[dict[str, Any]] = [
    {"Id": "a", "Name": "Acme", "Amount": 10, "IsWon": True, "CloseDate": "2024-06-30",
     "SystemModstamp": "2024-06-01T00:00:00.000+0000"},
    {"Id": "b", "Name": "Beta", "Amount": None, "IsWon": False, "CloseDate": "2024-07-01",
     "SystemModstamp": "2024-06-01T00:00:00.500+0000"},
    {"Id": "c", "Name": "Gamma", "Amount": Decimal("2.5"), "IsWon": False, "CloseDate": None,
     "SystemModstamp": "2024-06-02T10:00:00.000+0000"},
]  # fmt: skip


def run(soql: str) -> list[str]:
    query = parse_soql(soql, SCHEMAS)
    rows = [r for r in ROWS if query.where is None or query.where(r)]
    for key, descending in reversed(query.sort_key(SCHEMAS["Opportunity"])):
        rows.sort(key=key, reverse=descending)
    end = None if query.limit is None else query.offset + query.limit
    return [r["Id"] for r in rows[query.offset : end]]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_string_quoted_by_format_soql_parses_back_to_itself(value: str) -> None:
    query = parse_soql(format_soql("SELECT Id FROM Opportunity WHERE Name = {}", value), SCHEMAS)
    assert query.where is not None
    assert query.where({"Name": value})
    assert not query.where({"Name": value + "x"})  # itself, not anything it starts


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Amount > 5", ["a"]),
        ("Amount = null", ["b"]),
        ("Amount != null", ["a", "c"]),
        ("Name IN ('acme', 'GAMMA')", ["a", "c"]),
        ("Name NOT IN ('Acme')", ["b", "c"]),
        ("NOT IsWon = true", ["b", "c"]),
        ("IsWon = false AND (Amount < 3 OR CloseDate = 2024-07-01)", ["b", "c"]),
        ("CloseDate <= 2024-06-30", ["a"]),
        ("SystemModstamp > 2024-06-01T00:00:00Z", ["b", "c"]),
        ("SystemModstamp >= 2024-06-02T12:00:00+02:00", ["c"]),
        ("SystemModstamp < 2024-06-01T00:00:00.500Z", ["a"]),
    ],
)
def test_where_clauses_select_the_right_rows(where: str, expected: list[str]) -> None:
    assert run(f"SELECT Id FROM Opportunity WHERE {where} ORDER BY Id") == expected


def test_order_by_several_fields_puts_nulls_first_ascending_and_last_descending() -> None:
    assert run("SELECT Id FROM Opportunity ORDER BY Amount") == ["b", "c", "a"]
    assert run("SELECT Id FROM Opportunity ORDER BY Amount DESC") == ["a", "c", "b"]
    assert run("SELECT Id FROM Opportunity ORDER BY IsWon DESC, Name DESC LIMIT 2") == ["a", "c"]
    assert run("select id from opportunity order by name limit 1 offset 1") == ["b"]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT FROM Opportunity", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x' AND", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Name = 'bad \\q escape'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity LIMIT -1", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Name LIKE 'A%'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account", "INVALID_TYPE"),
        ("SELECT Owner.Email FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Amount = 'ten'", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE SystemModstamp > 2024-06-01", "INVALID_FIELD"),
    ],
)
def test_unsupported_or_wrong_queries_are_refused_with_the_salesforce_code(
    soql: str, code: str
) -> None:
    with pytest.raises(SoqlError) as caught:
        parse_soql(soql, SCHEMAS)
    assert caught.value.code == code
