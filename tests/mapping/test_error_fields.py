"""Plans and reports name canonical keys (DESIGN.md: `field` is a canonical deal key); a record
that cannot be mapped still says which native field to fix in its CRM."""

from __future__ import annotations

import pytest

from mapping.model import MappingError
from sync.connect import kind_mapping


@pytest.mark.parametrize(
    ("kind", "native", "canonical"),
    [
        ("salesforce", "CloseDate", "close_date"),
        ("hubspot", "deal_currency_code", "currency"),
        ("pipedrive", "value", "amount"),
    ],
)
def test_a_mapping_error_names_the_canonical_key_and_keeps_the_native_field(
    kind: str, native: str, canonical: str
) -> None:
    error = kind_mapping(kind).error(MappingError("crm", "42", native, "not valid"))
    assert error == {
        "system": "crm",
        "id": "42",
        "field": canonical,
        "reason": f"{native}: not valid",
    }
    # a native field without a canonical key of its own is named as it is
    other = kind_mapping(kind).error(MappingError("crm", "42", "flow.log_time", "not a time"))
    assert (other["field"], other["reason"]) == ("flow.log_time", "not a time")
