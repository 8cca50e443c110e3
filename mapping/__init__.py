"""The canonical sales model and the pure native <-> canonical mapping functions."""

from __future__ import annotations

from mapping.codec import deal_fingerprint, deal_from_json, deal_to_json
from mapping.context import MappingContext, NativePipelineStages, NativeStage
from mapping.funnel import DEFAULT_FUNNEL, Funnel, FunnelError, FunnelStage, Phase
from mapping.history import with_stage_history
from mapping.hubspot import (
    create_for_hubspot,
    deal_from_hubspot,
    owner_from_hubspot,
    pipelines_from_hubspot,
    update_for_hubspot,
)
from mapping.kinds import KindMapping
from mapping.model import (
    CANONICAL_FIELDS,
    CurrencyMismatch,
    Deal,
    DealStatus,
    MappingError,
    Money,
    Owner,
    Ref,
    StageChange,
    format_utc,
    money_or_none,
    parse_money,
)
from mapping.pipedrive import (
    PD_FIELD_CRMSYNC_ID,
    PD_FIELD_HUBSPOT_ID,
    PD_FIELD_SALESFORCE_ID,
    create_for_pipedrive,
    deal_from_pipedrive,
    owner_from_pipedrive,
    pipelines_from_pipedrive,
    stage_history_from_pipedrive_flow,
    update_for_pipedrive,
)
from mapping.salesforce import (
    create_for_salesforce,
    deal_from_salesforce,
    owner_from_salesforce,
    pipelines_from_salesforce,
    stage_history_from_salesforce,
    update_for_salesforce,
)
from mapping.stages import (
    Coverage,
    Proposal,
    WriteProposal,
    coverage,
    propose_stage_map,
    propose_stage_write,
    stage_map_from_proposals,
)
from mapping.writes import NativeValues

__all__ = [
    "CANONICAL_FIELDS",
    "DEFAULT_FUNNEL",
    "PD_FIELD_CRMSYNC_ID",
    "PD_FIELD_HUBSPOT_ID",
    "PD_FIELD_SALESFORCE_ID",
    "Coverage",
    "CurrencyMismatch",
    "Deal",
    "DealStatus",
    "Funnel",
    "FunnelError",
    "FunnelStage",
    "KindMapping",
    "MappingContext",
    "MappingError",
    "Money",
    "NativePipelineStages",
    "NativeStage",
    "NativeValues",
    "Owner",
    "Phase",
    "Proposal",
    "Ref",
    "StageChange",
    "WriteProposal",
    "coverage",
    "create_for_hubspot",
    "create_for_pipedrive",
    "create_for_salesforce",
    "deal_fingerprint",
    "deal_from_hubspot",
    "deal_from_json",
    "deal_from_pipedrive",
    "deal_from_salesforce",
    "deal_to_json",
    "format_utc",
    "money_or_none",
    "owner_from_hubspot",
    "owner_from_pipedrive",
    "owner_from_salesforce",
    "parse_money",
    "pipelines_from_hubspot",
    "pipelines_from_pipedrive",
    "pipelines_from_salesforce",
    "propose_stage_map",
    "propose_stage_write",
    "stage_history_from_pipedrive_flow",
    "stage_history_from_salesforce",
    "stage_map_from_proposals",
    "update_for_hubspot",
    "update_for_pipedrive",
    "update_for_salesforce",
    "with_stage_history",
]
