"""HubSpot CRM search semantics: request validation, filter evaluation and sorting.

Pure functions over deal records (`{"id", "properties", ...}`), so the emulator's HTTP glue
stays thin. Dates compare as instants whether stored or given as ISO 8601 or epoch millis;
numbers compare numerically; everything else as case-insensitive text, as HubSpot does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

__all__ = [
    "DATE_PROPERTIES",
    "MAX_FILTERS",
    "MAX_FILTERS_PER_GROUP",
    "MAX_GROUPS",
    "SearchError",
    "SearchQuery",
    "epoch_ms",
    "iso_from_ms",
    "parse_search",
]

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
MAX_LIMIT = 200
DATE_PROPERTIES = frozenset(
    {"createdate", "hs_lastmodifieddate", "closedate", "hs_closed_won_date", "hs_createdate"}
)
_DATE_PREFIXES = ("hs_date_entered_", "hs_date_exited_")
_OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY"}
    | {"NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)


class SearchError(ValueError):
    """An invalid search request: answered 400 VALIDATION_ERROR with this message."""


def is_date_property(name: str) -> bool:
    return name in DATE_PROPERTIES or name.startswith(_DATE_PREFIXES)


@lru_cache(maxsize=1 << 18)
def epoch_ms(value: str) -> int | None:
    """Epoch millis of an ISO 8601 or epoch-millis string; None if it is neither."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso_from_ms(ms: int) -> str:
    """HubSpot's timestamp format: ISO 8601 UTC with milliseconds and a `Z`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


Key = tuple[int, Any]  # (kind rank, comparable value) so mixed kinds still sort


def _key(name: str, value: str) -> Key:
    if is_date_property(name):
        ms = epoch_ms(value)
        if ms is not None:
            return (0, ms)
    try:
        return (0, Decimal(value))
    except (InvalidOperation, ValueError):
        return (1, value.lower())


def _listed_key(name: str, value: str) -> Key:
    """A value of an IN / NOT_IN list. HubSpot matches a string property's lowercased value
    against the listed one as given: "values must be lowercase", and one with capitals
    matches nothing (developers.hubspot.com, CRM search, filter operators)."""
    kind, key = _key(name, value)
    return (kind, value) if kind == 1 else (kind, key)


def _present(value: object) -> bool:
    return value is not None and value != ""


@dataclass(frozen=True)
class _Filter:
    name: str
    operator: str
    value: str | None
    high: str | None
    values: tuple[str, ...]

    def matches(self, props: Mapping[str, Any]) -> bool:
        raw = props.get(self.name)
        if self.operator == "HAS_PROPERTY":
            return _present(raw)
        if self.operator == "NOT_HAS_PROPERTY":
            return not _present(raw)
        if not _present(raw):
            # HubSpot: a record without the property matches only the negative operators.
            return self.operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
        have = _key(self.name, str(raw))
        op = self.operator
        if op in ("IN", "NOT_IN"):
            inside = any(have == _listed_key(self.name, v) for v in self.values)
            return inside if op == "IN" else not inside
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = (self.value or "").lower().strip("*")
            found = token in str(raw).lower()
            return found if op == "CONTAINS_TOKEN" else not found
        want = _key(self.name, self.value or "")
        if op == "BETWEEN":
            return want <= have <= _key(self.name, self.high or "")
        return _COMPARE[op](have, want)


_COMPARE: dict[str, Callable[[Key, Key], bool]] = {
    "EQ": lambda a, b: a == b,
    "NEQ": lambda a, b: a != b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class SearchQuery:
    groups: tuple[tuple[_Filter, ...], ...]
    sort: tuple[str, bool] | None  # (property, descending)
    text: str | None
    properties: tuple[str, ...]
    limit: int
    offset: int

    @property
    def signature(self) -> tuple[object, ...]:
        """What determines the full result list (not the page): a cache key."""
        return (self.groups, self.sort, self.text)

    def matches(self, record: Mapping[str, Any]) -> bool:
        props = record["properties"]
        if self.text and not any(
            self.text in str(v).lower() for v in (props.get("dealname"), record["id"]) if v
        ):
            return False
        if not self.groups:
            return True
        return any(all(f.matches(props) for f in group) for group in self.groups)

    def run(self, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """All matches in result order (sorted, ties and unsorted results by numeric id)."""
        found = sorted((r for r in records if self.matches(r)), key=lambda r: int(r["id"]))
        if self.sort is not None:
            name, descending = self.sort

            def by(record: Mapping[str, Any]) -> tuple[int, Key]:
                raw = record["properties"].get(name)
                # Records without the value come last either way, as in HubSpot.
                if not _present(raw):
                    return (1, (0, 0))
                key = _key(name, str(raw))
                return (0, key)

            present = [r for r in found if _present(r["properties"].get(name))]
            absent = [r for r in found if not _present(r["properties"].get(name))]
            present.sort(key=by, reverse=descending)
            found = present + absent
        return found


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_filter(raw: object) -> _Filter:
    if not isinstance(raw, Mapping) or not raw.get("propertyName"):
        raise SearchError("Each filter needs a propertyName and an operator.")
    operator = str(raw.get("operator") or "EQ").upper()
    if operator not in _OPERATORS:
        raise SearchError(f"Unknown filter operator {operator}.")
    values = raw.get("values") or ()
    if operator in ("IN", "NOT_IN") and not values:
        raise SearchError(f"Operator {operator} needs a non-empty 'values' list.")
    needs_value = operator not in ("IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY")
    if needs_value and raw.get("value") is None:
        raise SearchError(f"Operator {operator} needs a 'value'.")
    if operator == "BETWEEN" and raw.get("highValue") is None:
        raise SearchError("Operator BETWEEN needs a 'highValue'.")
    return _Filter(
        name=str(raw["propertyName"]),
        operator=operator,
        value=None if raw.get("value") is None else _text(raw["value"]),
        high=None if raw.get("highValue") is None else _text(raw["highValue"]),
        values=tuple(_text(v) for v in values),
    )


def _parse_sort(sorts: object) -> tuple[str, bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise SearchError("'sorts' must be a list.")
    first = sorts[0]
    # The SDK types sorts as strings ("-name" = descending), the docs as objects: take both.
    if isinstance(first, str):
        return (first[1:], True) if first.startswith("-") else (first, False)
    if isinstance(first, Mapping) and first.get("propertyName"):
        direction = str(first.get("direction") or "ASCENDING").upper()
        return str(first["propertyName"]), direction == "DESCENDING"
    raise SearchError("Each sort needs a propertyName.")


def parse_search(body: object, cap: int) -> SearchQuery:
    """A validated search request; SearchError (400) for anything HubSpot would refuse."""
    if not isinstance(body, Mapping):
        raise SearchError("The search request body must be a JSON object.")
    groups_raw = body.get("filterGroups") or []
    if len(groups_raw) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups ({len(groups_raw)}); the limit is 5.")
    groups = []
    for group in groups_raw:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise SearchError("Each filter group needs a 'filters' list.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(f"Too many filters in a group ({len(filters)}); the limit is 10.")
        groups.append(tuple(_parse_filter(f) for f in filters))
    total = sum(len(g) for g in groups)
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters ({total}); the limit is 25 across all groups.")
    try:
        limit = int(body.get("limit") or 10)
        offset = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise SearchError("'limit' and 'after' must be integers.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    if offset < 0:
        raise SearchError("'after' must not be negative.")
    if offset >= cap:
        raise SearchError(
            f"Search results are limited to {cap} records per query; "
            f"narrow the filters instead of paging to {offset}."
        )
    query = body.get("query")
    return SearchQuery(
        groups=tuple(groups),
        sort=_parse_sort(body.get("sorts")),
        text=str(query).lower() if query else None,
        properties=tuple(str(p) for p in body.get("properties") or ()),
        limit=limit,
        offset=offset,
    )
