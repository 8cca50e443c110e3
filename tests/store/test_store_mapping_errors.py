"""The data gaps: every record a CRM holds that cannot be mapped, until it is fixed or deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync.store import DealRow, SecretInPayload, Store

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _deal(deal_id: str) -> DealRow:
    return (deal_id, "fp", T0, False, {"id": deal_id, "name": f"Deal {deal_id}"})


def _error(deal_id: str, field: str = "value", reason: str = "not a number") -> dict[str, str]:
    return {"system": "pipedrive", "id": deal_id, "field": field, "reason": reason}


def test_a_mapping_error_stays_until_the_record_maps_again(store: Store) -> None:
    store.save_deals("pipedrive", [_deal("1")], "c1", gaps=[_error("3")], replace_gaps=True)
    store.save_deals("pipedrive", [_deal("2")], "c2")  # an incremental pull that skipped 3
    store.save_deals("pipedrive", [], "c3", gaps=[_error("4", "currency", "unknown 'XXX'")])
    assert store.mapping_errors() == [_error("3"), _error("4", "currency", "unknown 'XXX'")]
    store.save_deals("pipedrive", [_deal("3")], "c4")  # fixed in the CRM: it maps now
    assert store.mapping_errors() == [_error("4", "currency", "unknown 'XXX'")]


def test_a_record_deleted_in_its_crm_leaves_the_mapping_errors(store: Store) -> None:
    store.save_deals("pipedrive", [_deal("1")], gaps=[_error("3"), _error("5")])
    store.mark_deleted("pipedrive", ["3"])
    assert store.mapping_errors() == [_error("5")]


def test_a_record_keeps_only_its_latest_mapping_error(store: Store) -> None:
    store.save_deals("pipedrive", [], gaps=[_error("3")])
    store.save_deals("pipedrive", [], gaps=[_error("3", "currency", "unknown 'XXX'")])
    assert store.mapping_errors() == [_error("3", "currency", "unknown 'XXX'")]


def test_a_full_pull_replaces_only_its_own_instance_set(store: Store) -> None:
    hubspot = {"system": "hubspot", "id": "9", "field": "amount", "reason": "bad"}
    store.save_deals("hubspot", [], gaps=[hubspot])
    store.save_deals("pipedrive", [], gaps=[_error("3"), _error("4")])
    store.save_deals("pipedrive", [_deal("3")], "c9", gaps=[_error("7")], replace_gaps=True)
    assert store.mapping_errors() == [hubspot, _error("7")]
    assert store.mapping_errors(["pipedrive"]) == [_error("7")]
    store.save_deals("pipedrive", [], "c10", replace_gaps=True)  # a full pull, all clean
    assert store.mapping_errors() == [hubspot]


def test_a_mapping_error_holding_a_credential_key_is_refused(store: Store) -> None:
    leaky = {**_error("3"), "api_token": "abc"}
    with pytest.raises(SecretInPayload):
        store.save_deals("pipedrive", [], "c1", gaps=[leaky])
    assert store.mapping_errors() == [] and store.cursor("pipedrive") is None
