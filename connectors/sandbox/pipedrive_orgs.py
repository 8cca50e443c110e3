"""The organizations of the Pipedrive emulator, and the `org_id` object a deal carries.

A dataset may list them (`pipedrive.organizations`, records as `GET /v1/organizations` returns
them); one that does not (every dataset written before the emulator served organizations) has
them taken from its deals' `org_id` objects, so the deals and the organizations always agree.
Names are matched as Pipedrive's `exact_match` search does: the whole name, case-insensitive.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from operator import itemgetter
from typing import Any

__all__ = ["OrgError", "OrgStore", "check_injected", "search_item"]


class OrgError(ValueError):
    """A write refused with the API's status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_injected(body: Mapping[str, Any], fail_ids: Collection[str]) -> None:
    """Refuse (400) the POST of an organization named one of the `fail_ids` fault's ids."""
    if str(body.get("name") or "").strip() in fail_ids:
        raise OrgError(400, "Injected failure: organization rejected")


def _owner_ref(user: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "name": user.get("name"),
        "email": user.get("email"),
        "has_pic": 0,
        "pic_hash": None,
        "active_flag": bool(user.get("active_flag", True)),
        "value": user["id"],
    }


def search_item(org: Mapping[str, Any]) -> dict[str, Any]:
    """An organization as the organization search (v1 and v2) answers it."""
    owner = org.get("owner_id") or {}
    return {
        "id": org["id"],
        "type": "organization",
        "name": org["name"],
        "address": org.get("address"),
        "visible_to": int(org.get("visible_to") or 3),
        "owner": {"id": owner.get("id")},
        "custom_fields": [],
        "notes": [],
    }


def _owner_id(org: Mapping[str, Any]) -> Any:
    owner = org.get("owner_id")
    return owner.get("value", owner.get("id")) if isinstance(owner, Mapping) else owner


class OrgStore:
    """Organizations by id; records are replaced, never mutated (as deals are)."""

    def __init__(
        self,
        listed: Iterable[Mapping[str, Any]] | None,
        deals: Iterable[Mapping[str, Any]],
        users: Mapping[int, Mapping[str, Any]],
        now: Callable[[], str],
    ) -> None:
        self._users, self._now = users, now
        self.orgs: dict[int, dict[str, Any]] = {}
        if listed is not None:
            self.orgs = {int(o["id"]): dict(o) for o in listed}
        else:
            for deal in deals:
                ref = deal.get("org_id")
                if isinstance(ref, Mapping) and ref.get("value") is not None:
                    self.orgs.setdefault(int(ref["value"]), self._from_ref(ref, deal))

    def _from_ref(self, ref: Mapping[str, Any], deal: Mapping[str, Any]) -> dict[str, Any]:
        owner = self._users.get(int(ref.get("owner_id") or 0))
        stamp = str(deal.get("add_time") or self._now())
        record = self._record(int(ref["value"]), str(ref.get("name") or ""), owner, stamp)
        return {**record, "active_flag": ref.get("active_flag", True)}  # False: deleted

    def _record(
        self, org_id: int, name: str, owner: Mapping[str, Any] | None, stamp: str
    ) -> dict[str, Any]:
        return {
            "id": org_id,
            "name": name,
            "owner_id": _owner_ref(owner) if owner else None,
            "owner_name": owner.get("name") if owner else None,
            "people_count": 0,
            "open_deals_count": 0,
            "address": None,
            "active_flag": True,
            "cc_email": None,
            "label": None,
            "visible_to": "3",
            "add_time": stamp,
            "update_time": stamp,
        }

    def ref(self, org_id: Any) -> dict[str, Any] | None:
        """The `org_id` object of a deal linked to `org_id` (None: no organization); an
        unknown id is refused, as a deal cannot belong to an organization that does not exist."""
        if org_id is None or org_id == "":
            return None
        if isinstance(org_id, Mapping):  # a deal record's own object, written back as read
            org_id = org_id.get("value")
        try:
            number = int(str(org_id))
        except ValueError:
            raise OrgError(400, f"Invalid org_id: {org_id!r}") from None
        org = self.orgs.get(number)
        if org is None:
            raise OrgError(400, f"Organization with id {number} was not found")
        return {
            "name": org["name"],
            "people_count": org.get("people_count", 0),
            "owner_id": _owner_id(org),
            "address": org.get("address"),
            "active_flag": org.get("active_flag", True),
            "cc_email": org.get("cc_email"),
            "value": number,
        }

    def listing(self, sort: str = "") -> list[dict[str, Any]]:
        """Every organization, by id or by `sort` ("field ASC|DESC" items joined by ", " over
        `id` and `update_time`, as the deal lists take it)."""
        orgs = [self.orgs[i] for i in sorted(self.orgs)]
        for item in reversed([part.split() for part in sort.split(", ")] if sort else []):
            field, direction = item  # stable sorts, the last key first
            orgs.sort(key=itemgetter(field), reverse=direction == "DESC")
        return orgs

    def rename(self, org_id: int, name: str) -> dict[str, Any]:
        """An organization renamed, as a person does on its page: the organization is
        updated now (`update_time`); its deals are not (they name it by id)."""
        org = {**self.orgs[int(org_id)], "name": name, "update_time": self._now()}
        self.orgs[int(org_id)] = org
        return org

    def named(self, term: str) -> list[int]:
        """Ids of the organizations whose whole name is `term`, case-insensitive."""
        wanted = term.casefold()
        return sorted(i for i, o in self.orgs.items() if str(o["name"]).casefold() == wanted)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "").strip()
        if not name:
            raise OrgError(400, "Name must be given")
        owner = None
        if body.get("owner_id") is not None:
            owner = self._users.get(int(body["owner_id"]))
            if owner is None:
                raise OrgError(400, f"User with id {body['owner_id']} was not found")
        else:  # "When omitted, the authorized user ID will be used" (v1 spec)
            owner = next((u for u in self._users.values() if u.get("is_you")), None)
        org_id = max(self.orgs, default=0) + 1
        org = self._record(org_id, name, owner, self._now())
        self.orgs[org_id] = org
        return org
