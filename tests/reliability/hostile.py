"""Hostile values for fuzzing what crmsync reads: wrong types, huge and odd numbers, invalid
dates, unknown currencies, control and bidi characters, huge strings, deep nesting."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["DEEP", "hostile_values"]


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


DEEP = _nested(200)  # deeper than any record; shallow enough for hypothesis to print

_ODD_TEXT = [
    *("NaN", "nan", "inf", "-Infinity", "1e999999999", "1E-999999999", "0E-999999999", "0x10"),
    *("1_000", "1,000.50", "  ", "", "\x00", "\u202e\u0645", "\ud7ff", "Z", "true", "yes"),
    *("2024-02-30", "2024-13-01", "0000-00-00", "9999-12-31T23:59:59Z", "2024-06-01T25:00:00Z"),
    *("2024-06-01T12:34:56.000+2500", "99999999999999999999", "-99999999999999", "1e3"),
    *("XXX", "usd", "US$", "EURO", "€", "'; DROP TABLE deals; --", "<script>alert(1)</script>"),
]


def hostile_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
        st.sampled_from(_ODD_TEXT),
        st.just("x" * 200_000),
    )
    return st.one_of(
        scalars,
        st.just(DEEP),
        st.lists(scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), scalars, max_size=3),
    )
