"""What maps one kind of CRM: its pure native <-> canonical functions and its write quirks.

The engine dispatches on a deal's kind through one `KindMapping` (sync.connect.kind_mapping):
the built-in three are `BUILTIN_MAPPINGS`; a plugin's connector class gives its own as its
`mapping` attribute, built from the helpers of this package (mapping.values, mapping.links,
mapping.writes, MappingContext).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from mapping import hubspot, pipedrive, salesforce
from mapping.context import MappingContext
from mapping.model import Deal, MappingError, Owner
from mapping.versions import MAPPER_VERSIONS
from mapping.writes import NativeValues

__all__ = [
    "BUILTIN_MAPPINGS",
    "CreateFor",
    "DealFrom",
    "KindMapping",
    "OwnerFrom",
    "UpdateFor",
]

# (native deal record, context) -> Deal; raises MappingError for a record it cannot map.
DealFrom = Callable[[Mapping[str, Any], MappingContext], Deal]
# (native owner record, instance name) -> Owner.
OwnerFrom = Callable[[Mapping[str, Any], str], Owner]
# (deal, canonical changes {key: new value}, context, exact native values or None) -> the
# native update payload (connectors.base.NativeUpdate.fields); MappingError if it can't be.
UpdateFor = Callable[[Deal, Mapping[str, Any], MappingContext, NativeValues | None], dict[str, Any]]
# (deal to copy, context, link id for the link marker) -> the native create payload
# (connectors.base.NativeCreate.fields); MappingError if the CRM cannot hold the copy.
CreateFor = Callable[[Deal, MappingContext, str], dict[str, Any]]


@dataclass(frozen=True)
class KindMapping:
    """The pure mapping functions of one CRM kind, and how its CRM ties fields to the stage."""

    deal: DealFrom
    owner: OwnerFrom
    update: UpdateFor
    create: CreateFor
    # native field -> canonical key, so that a mapping error names the canonical key
    native_fields: Mapping[str, str] = field(default_factory=dict)
    # Won and lost are written as a closed stage (Salesforce, HubSpot), not as a field apart.
    status_in_stage: bool = False
    # The CRM sets the probability from the stage whenever the stage changes (Salesforce).
    probability_in_stage: bool = False
    # Won and lost are a status beside the stage (Pipedrive): its pipelines have no closed
    # stages, and the funnel's closed stages need none in the stage map.
    closes_by_status: bool = False
    # Goes up when the same record maps to another canonical deal: the first pull after reads
    # every deal of the kind again (mapping.versions says why); the built-in kinds' are there.
    version: int = 1

    def error(self, exc: MappingError) -> dict[str, str]:
        """A mapping error as plans and reports list it: `field` a canonical key where the
        native field has one, the native field kept at the head of the reason."""
        error = exc.as_dict()
        canonical = self.native_fields.get(exc.field)
        if canonical is not None and canonical != exc.field:
            error.update(field=canonical, reason=f"{exc.field}: {exc.reason}")
        return error

    @cached_property  # asked per record written
    def fields_with_stage(self) -> frozenset[str]:
        """The fields this kind's CRM ties to the stage: each goes only with its stage."""
        tied = {"status": self.status_in_stage, "probability": self.probability_in_stage}
        return frozenset(name for name, is_tied in tied.items() if is_tied)


BUILTIN_MAPPINGS: Mapping[str, KindMapping] = MappingProxyType(
    {
        "salesforce": KindMapping(
            salesforce.deal_from_salesforce,
            salesforce.owner_from_salesforce,
            salesforce.update_for_salesforce,
            salesforce.create_for_salesforce,
            salesforce.NATIVE_FIELDS,
            status_in_stage=salesforce.STATUS_IN_STAGE,
            probability_in_stage=salesforce.PROBABILITY_IN_STAGE,
            version=MAPPER_VERSIONS["salesforce"],
        ),
        "hubspot": KindMapping(
            hubspot.deal_from_hubspot,
            hubspot.owner_from_hubspot,
            hubspot.update_for_hubspot,
            hubspot.create_for_hubspot,
            hubspot.NATIVE_FIELDS,
            status_in_stage=hubspot.STATUS_IN_STAGE,
            probability_in_stage=hubspot.PROBABILITY_IN_STAGE,
            version=MAPPER_VERSIONS["hubspot"],
        ),
        "pipedrive": KindMapping(
            pipedrive.deal_from_pipedrive,
            pipedrive.owner_from_pipedrive,
            pipedrive.update_for_pipedrive,
            pipedrive.create_for_pipedrive,
            pipedrive.NATIVE_FIELDS,
            status_in_stage=pipedrive.STATUS_IN_STAGE,
            probability_in_stage=pipedrive.PROBABILITY_IN_STAGE,
            version=MAPPER_VERSIONS["pipedrive"],
            closes_by_status=True,
        ),
    }
)
