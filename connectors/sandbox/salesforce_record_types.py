"""The Salesforce emulator's Opportunity record types and the sales process each one follows.

A record type (SObject `RecordType`, SobjectType "Opportunity") names a business process, and the
process a subset of the StageName picklist: a write giving an Opportunity a stage its record
type's process does not hold is refused. Salesforce keeps a process's stages in metadata (the
Metadata API's BusinessProcess `values`), not in a queryable field; the dataset gives them on the
`BusinessProcess` row under `Values` (stage API names), which only the emulator reads. A
dataset without record types has none of this: every stage is open to every Opportunity.

A deactivated record type (`IsActive` false) is as in Salesforce: the records that have it keep
it and its process, the describe lists it with `active` and `available` false, the UI API still
gives its stage values (a Lightning edit page of such a record reads them there), and a write
giving it to a record, a create included, is refused like an unknown one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MASTER_RECORD_TYPE", "RecordTypes"]

# The id Salesforce gives the master record type in every org (describe's recordTypeInfos, the
# UI API): what an Opportunity without a RecordTypeId follows.
MASTER_RECORD_TYPE = "012000000000000AAA"


class RecordTypes:
    """The Opportunity record types of the dataset, and the stages each one allows."""

    def __init__(
        self, record_types: Sequence[Mapping[str, Any]], processes: Sequence[Mapping[str, Any]]
    ) -> None:
        self.rows = [
            r for r in record_types if r.get("SobjectType", "Opportunity") == "Opportunity"
        ]
        values = {str(p["Id"]): [str(v) for v in p.get("Values") or []] for p in processes}
        self._allowed = {
            str(r["Id"]): frozenset(values.get(str(r.get("BusinessProcessId")), ()))
            for r in self.rows
        }
        self._active = frozenset(str(r["Id"]) for r in self.rows if r.get("IsActive") is not False)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def known(self, record_type_id: str) -> bool:
        return record_type_id in self._allowed

    def active(self, record_type_id: str) -> bool:
        """Whether a new record may take the record type: a deactivated one stays on the
        records that have it, and its stages still come from the UI API, but none is given it."""
        return record_type_id in self._active

    def allows(self, record_type_id: str | None, stage: str) -> bool:
        """Whether an Opportunity of the record type may hold `stage` (master: every stage)."""
        if not record_type_id or record_type_id == MASTER_RECORD_TYPE:
            return True
        allowed = self._allowed.get(record_type_id)
        return allowed is None or stage in allowed

    def describe_infos(self) -> list[dict[str, Any]]:
        """describe's `recordTypeInfos`: the master record type, then the dataset's."""
        infos = [_info(MASTER_RECORD_TYPE, "Master", "Master", active=True, master=True)]
        for row in self.rows:
            infos.append(
                _info(
                    str(row["Id"]),
                    str(row.get("DeveloperName") or row["Id"]),
                    str(row.get("Name") or row.get("DeveloperName") or row["Id"]),
                    active=row.get("IsActive") is not False,
                    master=False,
                )
            )
        return infos

    def picklist_values(
        self, record_type_id: str, stages: Sequence[Mapping[str, Any]], url: str
    ) -> dict[str, Any] | None:
        """The UI API's Picklist Values of StageName for a record type (stages in SortOrder),
        or None for a record type the org does not have."""
        if record_type_id != MASTER_RECORD_TYPE and record_type_id not in self._allowed:
            return None
        ordered = sorted(stages, key=lambda s: s.get("SortOrder") or 0)
        values = [
            {
                "attributes": {
                    "closed": bool(s.get("IsClosed")),
                    "won": bool(s.get("IsWon")),
                    "defaultProbability": s.get("DefaultProbability"),
                    "forecastCategoryName": s.get("ForecastCategoryName"),
                },
                "label": s.get("MasterLabel") or s["ApiName"],
                "validFor": [],
                "value": s["ApiName"],
            }
            for s in ordered
            if s.get("IsActive", True) and self.allows(record_type_id, str(s["ApiName"]))
        ]
        return {"controllerValues": {}, "defaultValue": None, "url": url, "values": values}


def _info(rid: str, developer: str, name: str, *, active: bool, master: bool) -> dict[str, Any]:
    return {
        "active": active,
        "available": active,
        "defaultRecordTypeMapping": master,
        "developerName": developer,
        "master": master,
        "name": name,
        "recordTypeId": rid,
        "urls": {"layout": f"/services/data/v59.0/sobjects/Opportunity/describe/layouts/{rid}"},
    }
