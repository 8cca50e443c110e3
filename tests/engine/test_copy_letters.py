"""Which dead letters of copies a plan makes stale: a copy's letter is of all the create
carries (source, values, landing, organization), and one journaled before the digest held the
landing and organization is compared by its source and values alone. Pure: no store, no CRM."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mapping.model import Ref
from sync.copy_digest import create_digest, values_digest
from sync.diff_result import Create, DiffResult
from sync.plan import plan_create
from sync.stale_letters import stale_failures
from sync.store_failures import TriedCopy
from sync.store_records import FailureRecord

ENTITY, SOURCE = "E1", Ref("salesforce", "006000000000001AAA")
LANDS = {"pipeline": "1", "native_stage": "3", "native_stage_label": "Proposal"}
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
LETTER = FailureRecord("pipedrive", ENTITY, "", "organization refused", 1, WHEN, WHEN, True)


def _create(name: str = "Deal 1", lands: Mapping[str, str] = LANDS) -> Create:
    return Create(ENTITY, "pipedrive", SOURCE, {"name": name, "amount": None}, target=lands)


def _as_planned(account: str) -> Any:
    """`as_planned` where the source's account is `account` (the organization's name)."""

    def planned(create: Create) -> Mapping[str, Any]:
        return {
            **plan_create(create),
            "organization": {"by": "account", "name": account, "id": None},
        }

    return planned


def _stale(refused: TriedCopy, create: Create, account: str) -> bool:
    diffed = DiffResult((), (), (), (), (create,), {})
    copies = {("pipedrive", ENTITY): refused}
    return bool(stale_failures([LETTER], {}, diffed, set(), {}, copies, _as_planned(account)))


def _refused(carried: Mapping[str, Any]) -> TriedCopy:
    return TriedCopy(SOURCE, None, create_digest(carried))


def test_a_copy_refused_under_one_account_is_another_copy_under_a_corrected_one() -> None:
    refused = _refused(_as_planned("Refused Holdings")(_create()))
    assert _stale(refused, _create(), "Corrected Holdings")
    assert not _stale(refused, _create(), "Refused Holdings")


def test_a_copy_landing_in_another_stage_is_another_copy() -> None:
    refused = _refused(_as_planned("Acme")(_create()))
    assert _stale(refused, _create(lands={**LANDS, "native_stage": "4"}), "Acme")


def test_a_renamed_stage_label_leaves_the_same_copy() -> None:
    """Labels are for the people reading the plan; the CRM gets the ids."""
    refused = _refused(_as_planned("Acme")(_create()))
    assert not _stale(refused, _create(lands={**LANDS, "native_stage_label": "Offer"}), "Acme")


def test_a_copy_refused_before_its_organization_was_journaled_waits_for_a_release() -> None:
    """Journaled by an older crmsync (source and values only): an upgrade tries none of these
    letters again at once; only other values make another copy of them."""
    legacy = TriedCopy(SOURCE, values_digest(plan_create(_create())))
    assert not _stale(legacy, _create(), "Corrected Holdings")
    assert _stale(legacy, _create(name="Deal 1 (corrected)"), "Corrected Holdings")
