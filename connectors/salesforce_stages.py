"""Salesforce stages as pipelines: the org's OpportunityStage rows (one pipeline, `default`)
and, in an org with Opportunity record types, each record type's business process, whose
stage values the UI API's picklist read gives (one call per record type).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from simple_salesforce import Salesforce

from connectors.base import NativePipeline
from connectors.errors import ApiError, PermissionDenied
from connectors.salesforce_soql import rest_get
from mapping.context import NativeStage

__all__ = ["read_pipelines", "record_type_stages"]

STAGE_VALUES = "ui-api/object-info/Opportunity/picklist-values/{}/StageName"
# How the UI API might refuse a deactivated record type's stage values (none is documented).
_UNANSWERED = frozenset({400, 403, 404})
STAGE_FIELDS = (
    "Id, ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, "
    "ForecastCategoryName, SortOrder"
)
_log = logging.getLogger("crmsync.salesforce")

Query = Callable[[str, str], Iterator[dict[str, Any]]]
Call = Callable[[str, Callable[[Salesforce], Any]], Any]


def read_pipelines(
    system: str, query: Query, call: Call, describe: Callable[[], Mapping[str, Any]]
) -> list[NativePipeline]:
    """The org's pipelines: `default` with every stage, then one per record type (`query` and
    `call` are the connector's counted reads, `describe` its kept Opportunity describe)."""
    rows = query("pipelines", f"SELECT {STAGE_FIELDS} FROM OpportunityStage ORDER BY SortOrder")
    stages = tuple(_stage(row, order) for order, row in enumerate(rows))
    pipelines = [NativePipeline("default", "Opportunities", stages)]
    # The describe is the one the deal read makes anyway: an org without record types
    # costs no call more; one with them, one call per record type. A deactivated one is
    # read too (its describe info says `active: false`; the UI API still gives its stages):
    # Salesforce keeps its Opportunities, which only its process's stages map.
    for info in describe().get("recordTypeInfos") or []:
        if info.get("master"):
            continue
        record_type = str(info["recordTypeId"])
        path = STAGE_VALUES.format(quote(record_type, safe=""))
        try:
            answer = call("pipelines", rest_get(path))
        except (ApiError, PermissionDenied) as exc:
            if info.get("active") is not False or exc.status not in _UNANSWERED:
                raise
            # No document says whether, or how, the UI API refuses a deactivated record
            # type: where it does, its deals read as before it was read at all (`default`).
            _log.warning(
                "%s: deactivated record type %s: its stage values were not answered (%s); "
                "its deals are read under the default pipeline's stages",
                system, info.get("developerName") or record_type, exc.message,
            )  # fmt: skip
            continue
        allowed = [str(v["value"]) for v in answer.get("values") or []]
        pipelines.append(
            NativePipeline(
                str(info.get("developerName") or record_type),
                str(info.get("name") or info.get("developerName") or record_type),
                record_type_stages(stages, allowed),
                native_id=record_type,
                active=info.get("active") is not False,
            )
        )
    return pipelines


def record_type_stages(
    stages: Sequence[NativeStage], allowed: Sequence[str]
) -> tuple[NativeStage, ...]:
    """The stages a record type's sales process allows, in the org's SortOrder, numbered anew."""
    kept = set(allowed)
    return tuple(
        replace(stage, order=order) for order, stage in enumerate(s for s in stages if s.id in kept)
    )


def _stage(row: Mapping[str, Any], order: int) -> NativeStage:
    probability = row.get("DefaultProbability")
    return NativeStage(
        id=str(row["ApiName"]),
        label=str(row.get("MasterLabel") or row["ApiName"]),
        order=order,
        probability=None if probability is None else Decimal(str(probability)) / 100,
        is_closed=bool(row.get("IsClosed")),
        is_won=bool(row.get("IsWon")),
    )
