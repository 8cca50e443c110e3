"""A third party's connector kind `toycrm`, as a plugin package would ship it: a CRM kept in a
JSON file (the path in $TOYCRM_FILE; the file holds the api_key it accepts), and its mapping
built from crmsync's public mapping helpers. Installed by tests/e2e/test_plugin_kind.py.

Its records: {"id", "title", "pipeline", "stage" (a stage id; won and lost are stages),
"amount" (decimal text or null), "currency", "close" (YYYY-MM-DD or null), "owner" (a user id),
"probability" (0..1 text or null), "created", "modified" (ISO 8601 UTC), and the fields the
config names as external_ids and link_field}.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from connectors.base import ConnectorSettings, NativeCreate, NativeUpdate, PushResult
from connectors.errors import AuthError
from mapping import Deal, DealStatus, MappingContext, MappingError, NativeStage, Owner, Ref
from mapping.context import NativePipelineStages
from mapping.kinds import KindMapping
from mapping.links import link_fields_for_create, read_links
from mapping.model import money_or_none
from mapping.values import field_errors, parse_date, parse_decimal, parse_timestamp, text_or_none
from mapping.writes import NativeValues, create_stage, owner_id_for_change, resolve_stage_change

_CLOSED = {"won": DealStatus.WON, "lost": DealStatus.LOST}


def deal_from_toy(record: Mapping[str, Any], ctx: MappingContext) -> Deal:
    rid = str(record["id"])

    def read(field: str, parse: Any) -> Any:
        with field_errors(ctx.instance, rid, field):
            return parse(record.get(field))

    pipeline, stage = str(record["pipeline"]), str(record["stage"])
    external, link_id = read_links(record, ctx)
    with field_errors(ctx.instance, rid, "amount"):
        value = money_or_none(record.get("amount"), record.get("currency") or "USD")
    probability = read("probability", parse_decimal)
    return Deal(
        ref=Ref(ctx.instance, rid),
        name=str(record["title"]),
        pipeline=pipeline,
        stage=ctx.funnel_stage(pipeline, stage),
        native_stage=stage,
        status=_CLOSED.get(stage, DealStatus.OPEN),
        value=value,
        close_date=read("close", parse_date),
        owner_email=ctx.owner_email(text_or_none(record.get("owner"))),
        probability=probability,
        created_at=read("created", parse_timestamp),
        updated_at=read("modified", parse_timestamp),
        external_ids=external,
        link_id=link_id,
    )


def owner_from_toy(record: Mapping[str, Any], instance: str) -> Owner:
    return Owner(instance, str(record["id"]), str(record["email"]).lower(), record.get("name"))


def update_for_toy(
    deal: Deal, changes: Mapping[str, Any], ctx: MappingContext, native: NativeValues | None
) -> dict[str, Any]:
    target = resolve_stage_change(deal, changes, ctx, status_in_stage=True, native=native)
    fields: dict[str, Any] = {}
    if target.native_stage is not None:
        fields["stage"] = target.native_stage
    for key, value in changes.items():
        if key in ("stage", "status"):
            continue
        if key == "name":
            fields["title"] = str(value)
        elif key == "amount":
            fields["amount"] = None if value is None else str(value)
        elif key == "currency":
            fields["currency"] = value
        elif key == "close_date":
            fields["close"] = value.isoformat() if isinstance(value, date) else None
        elif key == "owner_email":
            fields["owner"] = owner_id_for_change(deal, ctx, value)
        elif key == "probability":
            fields["probability"] = None if value is None else str(value)
        else:
            raise MappingError(deal.system, deal.id, key, "not a writable canonical field")
    return fields


def create_for_toy(deal: Deal, ctx: MappingContext, link_id: str) -> dict[str, Any]:
    pipeline, stage = create_stage(deal, ctx, None)
    return {
        "title": deal.name,
        "pipeline": pipeline,
        "stage": stage,
        "amount": str(deal.value.amount) if deal.value else None,
        "currency": deal.value.currency if deal.value else None,
        "close": deal.close_date.isoformat() if deal.close_date else None,
        "owner": owner_id_for_change(deal, ctx, deal.owner_email),
        "probability": None if deal.probability is None else str(deal.probability),
        **link_fields_for_create(deal, ctx, link_id),
    }


class ToyCrm:
    """The Connector protocol over the JSON file; every call reads or writes it whole."""

    kind = "toycrm"
    mapping = KindMapping(
        deal_from_toy,
        owner_from_toy,
        update_for_toy,
        create_for_toy,
        {"title": "name", "close": "close_date", "modified": "updated_at"},
        status_in_stage=True,
    )

    def __init__(self, settings: ConnectorSettings) -> None:
        self.system = settings.instance
        self._key = settings.credentials.values["api_key"]  # type: ignore[union-attr]
        self._file = Path(os.environ["TOYCRM_FILE"])
        self._calls: Counter[str] = Counter()
        self._cursor: str | None = None

    def _load(self, operation: str) -> dict[str, Any]:
        self._calls[operation] += 1
        data: dict[str, Any] = json.loads(self._file.read_text())
        if data["api_key"] != self._key:
            raise AuthError(self.system, operation, "api_key refused")
        return data

    def _save(self, data: Mapping[str, Any]) -> None:
        self._file.write_text(json.dumps(data, indent=1))

    def check(self) -> None:
        self._load("check")

    def pipelines(self) -> list[NativePipelineStages]:
        return [
            NativePipelineStages(
                p["id"],
                p["label"],
                tuple(
                    NativeStage(s, s.title(), n, None, s in _CLOSED, s == "won")
                    for n, s in enumerate(p["stages"])
                ),
            )
            for p in self._load("pipelines")["pipelines"]
        ]

    def owners(self) -> list[dict[str, Any]]:
        return list(self._load("owners")["owners"])

    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        for record in self._load("deals")["deals"]:
            modified = record["modified"]
            if since is None or datetime.fromisoformat(modified) >= since:
                self._cursor = max(self._cursor or modified, modified)
                yield record

    def deleted_deals(self, since: datetime) -> Iterator[str]:
        return iter(())

    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [d for d in self._load("read_deals")["deals"] if d["id"] in ids]

    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]:
        deals = self._load("find_created")["deals"]
        return {d["crmsync_id"]: d["id"] for d in deals if d.get("crmsync_id") in link_ids}

    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]:
        data = self._load("update_deals")
        by_id = {d["id"]: d for d in data["deals"]}
        results = []
        for update in updates:
            record = by_id.get(update.id)
            if record is None:
                results.append(PushResult(update.id, False, "no such deal", "NOT_FOUND"))
                continue
            record.update(update.fields, modified=_now())
            results.append(PushResult(update.id, True))
        self._save(data)
        return results

    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]:
        data = self._load("create_deals")
        results = []
        for create in creates:
            rid = f"T{len(data['deals']) + 1}"
            stamps = {"created": _now(), "modified": _now()}
            data["deals"].append({**create.fields, "id": rid, **stamps})
            results.append(PushResult(rid, True, link_id=create.link_id))
        self._save(data)
        return results

    def calls(self) -> dict[str, int]:
        return dict(self._calls)

    def cursor(self) -> str | None:
        return self._cursor

    def close(self) -> None:
        pass


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
