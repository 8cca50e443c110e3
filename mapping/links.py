"""Cross-system id fields and the crmsync link marker, read from and written to native records.

Which native field holds which other instance's id comes from the config
(`external_ids`, `link_field`; see CONTRIBUTING.md), so this is the same for every system once
the record's flat field mapping is at hand (HubSpot `properties`, the record itself elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mapping.context import MappingContext
from mapping.model import Deal
from mapping.salesforce_ids import case_safe_id
from mapping.values import text_or_none

__all__ = ["api_id", "link_fields_for_create", "read_links"]

# kind -> the id its API gives for an id of it as a person may have copied it
_API_FORM: Mapping[str, Callable[[str], str]] = {"salesforce": case_safe_id}


def api_id(kind: str, native_id: str) -> str:
    """A deal id of a CRM of `kind` in the form its API gives, the form refs and the store
    hold (a Salesforce id as its screens and reports show it, 15 characters, is not)."""
    return _API_FORM.get(kind, str)(native_id)


def read_links(fields: Mapping[str, Any], ctx: MappingContext) -> tuple[dict[str, str], str | None]:
    """(other instance -> id there, link marker) from the configured fields; blanks are absent.
    An id is read in the form its own CRM's API gives, which is the form a deal's ref holds."""
    external: dict[str, str] = {}
    for instance, native_field in ctx.external_ids.items():
        value = text_or_none(fields.get(native_field))
        if value is not None:
            external[instance] = api_id(ctx.id_kinds.get(instance, ""), value)
    link_id = text_or_none(fields.get(ctx.link_field)) if ctx.link_field else None
    return external, link_id


def link_fields_for_create(deal: Deal, ctx: MappingContext, link_id: str) -> dict[str, str]:
    """Native fields a created copy of `deal` carries: the link marker and ids pointing back.

    The source deal's own id goes into the field naming its instance; ids the source knows of
    other instances are copied as well, so the new record is linked to the whole entity.
    """
    known = {**deal.external_ids, deal.ref.system: deal.ref.id}
    fields = {
        native_field: known[instance]
        for instance, native_field in ctx.external_ids.items()
        if instance in known and instance != ctx.instance
    }
    if ctx.link_field:
        fields[ctx.link_field] = link_id
    return fields
