"""What the audit log records as a field write's before-value, and how a rollback reads it.

The before-value is the canonical value the write replaced, as a plan spells it. Where that
value leaves a native choice open, the entry records the native value too, read from the
record just before the write, so that a rollback puts back exactly what was there:
`{"value": "qualified", "pipeline": "default", "native_stage": "qualifiedtobuy"}` for a stage
(several native stages may map to one funnel stage), `{"value": null, "native_currency": "EUR"}`
for the currency of a deal without an amount (no canonical currency, but the CRM's currency
field holds a code). Entries written before crmsync recorded native values hold the plain
value; they roll back by the canonical value alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping import Deal, NativeValues
from sync.plan import Change, decode_value, encode_value

__all__ = ["audited_before", "restorable"]


def audited_before(change: Change, deal: Deal) -> Any:
    """The before-value to journal and audit for `change`, `deal` as read before the write."""
    value = encode_value(change.from_value)
    if change.field == "stage":
        return {"value": value, "pipeline": deal.pipeline, "native_stage": deal.native_stage}
    if change.field == "currency" and value is None and "native_currency" in deal.extra:
        return {"value": value, "native_currency": deal.extra["native_currency"]}
    return value


def restorable(field: str, before: Any) -> tuple[Any, NativeValues | None]:
    """An audited before-value -> (the canonical value, the native values to put back or None
    when the entry has none); ValueError when it is neither form."""
    if not isinstance(before, Mapping):
        return decode_value(field, before), None
    if "value" not in before:
        raise ValueError(f"no 'value' in the audited before-value of {field}")
    native = NativeValues(
        _text(before, "pipeline"), _text(before, "native_stage"), _text(before, "native_currency")
    )
    return decode_value(field, before["value"]), None if native == NativeValues() else native


def _text(before: Mapping[str, Any], key: str) -> str | None:
    value = before.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"audited {key} must be a string, not {type(value).__name__}")
    return value
