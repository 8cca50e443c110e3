"""HubSpot's deal pipelines (with their stages) and owners, as the connector reads them.

- pipelines: GET /crm/pipelines/{version}/deals; a pipeline or stage marked `archived` is left out,
  the rest ordered by `displayOrder`. A stage's `metadata` holds `isClosed` and `probability`
  as strings; the built-in won stage is `closedwon`.
- owners: the owners API lists active owners or archived (deactivated) ones, one or the other
  (`archived`, default false), 100 a page by `paging.next.after`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import NativePipeline
from connectors.hubspot_wire import next_after
from mapping.context import NativeStage

__all__ = ["pipelines_from_body", "read_owners"]

Call = Callable[[str, Callable[..., Any]], Any]  # (operation, request) -> body
Get = Callable[[Mapping[str, object]], Callable[..., Any]]  # query parameters -> request


def _order(raw: Any) -> tuple[int, str]:
    order = raw.get("displayOrder")
    return (order if isinstance(order, int) else 1 << 30, str(raw["id"]))


def _stage(raw: dict[str, Any]) -> NativeStage:
    metadata = raw.get("metadata") or {}
    closed = str(metadata.get("isClosed", "false")).lower() == "true"
    try:
        probability: Decimal | None = Decimal(str(metadata["probability"]))
    except (KeyError, InvalidOperation):
        probability = None
    won = (closed and probability == 1) or raw["id"] == "closedwon"
    return NativeStage(
        id=str(raw["id"]),
        label=str(raw.get("label") or raw["id"]),
        order=_order(raw)[0],
        probability=probability,
        is_closed=closed or won,
        is_won=won,
    )


def pipelines_from_body(body: dict[str, Any]) -> list[NativePipeline]:
    """Live pipelines in displayOrder, each with its live stages in displayOrder."""
    pipelines = []
    for raw in sorted(body.get("results") or [], key=_order):
        if raw.get("archived"):
            continue
        stages = sorted((s for s in raw.get("stages") or [] if not s.get("archived")), key=_order)
        pipelines.append(
            NativePipeline(
                str(raw["id"]), str(raw.get("label") or raw["id"]), tuple(_stage(s) for s in stages)
            )
        )
    return pipelines


def read_owners(call: Call, get: Get) -> list[dict[str, Any]]:
    """Active owners, then archived (deactivated) ones: the owners API lists one or the
    other (`archived` = "return only results that have been archived", default false), and
    deals keep a deactivated owner's id, as Salesforce's inactive Users and Pipedrive's
    inactive users do. An archived owner whose email an active owner has (a user removed
    and added again) is left out, so that email never resolves to the deactivated id."""
    owners: list[dict[str, Any]] = []
    active: set[str] = set()
    for archived in (False, True):
        after: str | None = None
        while True:
            body = call("owners", get({"limit": 100, "after": after, "archived": archived}))
            for owner in body.get("results") or []:
                email = str(owner.get("email") or "").strip().lower()
                if not archived:
                    active.add(email)
                elif email and email in active:
                    continue
                owners.append(owner)
            after = next_after(body)
            if not after:
                break
    return owners
