"""Parsing and formatting of native scalar values shared by the per-system mappers.

Every parser raises ValueError with a short reason; the mappers turn that into a MappingError
naming the record and field (see `field_errors`). Blank means None or an all-space string:
HubSpot sends "" for an empty property, the others send null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any

from mapping.model import MappingError, bounded_decimal, format_decimal

__all__ = [
    "field_errors",
    "format_iso_date",
    "is_blank",
    "json_number",
    "native_object",
    "parse_date",
    "parse_decimal",
    "parse_flag",
    "parse_timestamp",
    "text_or_none",
]


class field_errors:  # lower-case: used like a function, `with field_errors(...):`
    """Re-raise a value problem inside the block as MappingError(system, id, field, reason).

    A plain class rather than @contextmanager: it runs for every field of every record, and
    the generator machinery was a fifth of the mapping time.
    """

    __slots__ = ("field", "record_id", "system")

    def __init__(self, system: str, record_id: str, field: str) -> None:
        self.system, self.record_id, self.field = system, record_id, field

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, (ValueError, TypeError, ArithmeticError)) and not isinstance(
            exc, MappingError
        ):
            raise MappingError(self.system, self.record_id, self.field, str(exc)) from None


def native_object(
    value: object, system: str, record_id: str = "?", field: str = "record"
) -> Mapping[str, Any]:
    """`value` as a mapping; a hostile or broken API answer may put anything in its place."""
    if not isinstance(value, Mapping):
        reason = f"expected an object, not {type(value).__name__}"
        raise MappingError(system, record_id, field, reason)
    return value


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text_or_none(value: object) -> str | None:
    """A non-blank native value as a stripped string (ids may arrive as numbers)."""
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric id field (Pipedrive) must not become "123.0"
    return str(value).strip()


def _epoch_ms(text: str) -> datetime:
    return datetime.fromtimestamp(int(text) / 1000, UTC)


def parse_timestamp(value: object) -> datetime | None:
    """Aware UTC datetime from ISO 8601 (offset, `Z` or `+0000`), epoch millis, or naive text.

    Naive text is Pipedrive's "YYYY-MM-DD HH:MM:SS", documented as UTC; Salesforce and
    HubSpot always carry an offset, so reading naive text as UTC never shifts their instants.
    """
    if is_blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"timestamp must be text, not {type(value).__name__}")
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return _epoch_ms(text)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"invalid timestamp {text[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: object) -> date | None:
    """A calendar date from "YYYY-MM-DD", or the UTC date of a timestamp (HubSpot's closedate,
    an instant shown in the portal's zone, has its own reader: mapping.hubspot)."""
    if is_blank(value):
        return None
    if isinstance(value, str) and len(value.strip()) == 10 and not value.strip().isdigit():
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"invalid date {value.strip()!r}") from None
    stamp = parse_timestamp(value)
    return stamp.date() if stamp else None


def parse_decimal(value: object) -> Decimal | None:
    """Decimal from a native number: str, int, Decimal, or float via its shortest repr."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {value!r}")
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"expected a number, not {type(value).__name__}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return bounded_decimal(result)


def parse_flag(value: object) -> bool | None:
    """HubSpot's "true"/"false" strings and real booleans; blank is unknown (None)."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"expected true or false, not {text[:20]!r}")


def json_number(value: Decimal) -> float | int | str:
    """A Decimal as a JSON-able number without losing a digit.

    An integral value becomes an int; otherwise a float when the float's shortest repr reads
    back as the same decimal (json.dumps then writes exactly these digits, e.g. 1500.5);
    anything else (more digits than a double holds) stays a decimal string. Never a silently
    rounded float. (Salesforce and Pipedrive clients read numbers back as doubles, so their
    writers refuse such a value: `mapping.writes.number_read_back_whole`.)
    """
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        return as_float
    return format_decimal(value)


def format_iso_date(value: date) -> str:
    return value.isoformat()
