"""The org's currency, from the SOAP getUserInfo() call, against the TLS sandbox: a
single-currency org's Opportunities carry no CurrencyIsoCode, so every amount is in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.credentials import SalesforcePassword
from connectors.errors import ApiError, AuthError, RateLimitExhausted
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from connectors.sandbox.salesforce import SANDBOX_USERNAME
from tests.connectors import contract
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import dataset

USER_INFO = "POST /services/Soap/u/{version}"


@pytest.fixture
def single() -> Iterator[Sandbox]:
    """A single-currency org (no CurrencyIsoCode) whose currency is EUR."""
    data = dataset(5, 0, currency=False)
    data["salesforce"]["userInfo"] = {"orgDefaultCurrencyIsoCode": "EUR"}
    with start_sandbox(data, systems=["salesforce"], faults=FAST) as running:
        yield running


def test_a_single_currency_org_tells_its_currency_in_one_call(single: Sandbox) -> None:
    connector = SalesforceConnector(settings_for(single))
    try:
        assert connector.company_currency() == "EUR"
    finally:
        connector.close()
    server = single.servers["salesforce"]
    describe = "GET /services/data/{version}/sobjects/Opportunity/describe"
    assert server.stats.snapshot()["requests"] == {describe: 1, USER_INFO: 1}
    assert server.emulator.dump()["userInfo"] == {"orgDefaultCurrencyIsoCode": "EUR"}
    assert connector.calls() == {"describe": 1, "user info": 1}


def test_a_multi_currency_org_tells_no_company_currency_without_a_call_more(
    connector: SalesforceConnector,
) -> None:
    """Each record names its own there: the describe `check` and `init` read anyway shows
    CurrencyIsoCode, so getUserInfo is not asked."""
    connector.pipelines()
    before = connector.calls()
    assert connector.company_currency() is None
    assert connector.calls() == before and "user info" not in before


def test_an_org_turned_multi_currency_since_its_describe_tells_no_currency(
    single: Sandbox,
) -> None:
    """An admin enabling multi-currency after the describe was read: the org's own answer
    (organizationMultiCurrency) wins, and no currency is named."""
    connector = SalesforceConnector(settings_for(single))
    try:
        connector.pipelines()  # the describe: no CurrencyIsoCode yet
        store = single.servers["salesforce"].emulator.store
        with single.servers["salesforce"].emulator.lock:
            store.schemas["Opportunity"]["CurrencyIsoCode"] = "picklist"
        assert connector.company_currency() is None
    finally:
        connector.close()
    assert connector.calls()["user info"] == 1


def test_an_expired_session_is_renewed_for_the_soap_call_too(single: Sandbox) -> None:
    """SOAP refuses an expired session with a fault (HTTP 500, sf:INVALID_SESSION_ID), not a
    REST 401: it is still a session to renew, not a failed check."""
    token = single.tokens["salesforce"]
    credentials = SalesforcePassword(SANDBOX_USERNAME, token)
    connector = SalesforceConnector(settings_for(single, credentials=credentials))
    try:
        contract.set_faults(single, "salesforce", Faults(rate_limit=10_000, expire_after=2))
        connector.check()
        assert connector.company_currency() == "EUR"
    finally:
        connector.close()
    assert connector.calls()["login"] == 2 and connector.calls()["user info"] == 2


def test_a_session_id_the_org_no_longer_takes_is_an_auth_error(single: Sandbox) -> None:
    connector = SalesforceConnector(settings_for(single))
    try:
        connector.pipelines()
        contract.set_faults(single, "salesforce", Faults(rate_limit=10_000, expire_after=0))
        with pytest.raises(AuthError, match="provide a fresh session id"):
            connector.company_currency()
    finally:
        connector.close()


def test_the_daily_cap_refuses_the_soap_call_as_it_does_rest(single: Sandbox) -> None:
    connector = SalesforceConnector(settings_for(single))
    try:
        connector.pipelines()
        contract.set_faults(single, "salesforce", Faults(rate_limit=10_000, daily_limit=0))
        with pytest.raises(RateLimitExhausted, match="TotalRequests"):
            connector.company_currency()
    finally:
        connector.close()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((200, b"<html><body>Down for maintenance</body></html>"), "no getUserInfoResponse"),
        ((200, b"Down for maintenance"), "the answer is no XML"),
        ((503, b"Service Unavailable"), "HTTP: 503"),  # tried again, then given up on
    ],
)
def test_an_answer_that_is_no_user_info_is_an_api_error_naming_it(
    single: Sandbox, answer: tuple[int, bytes], said: str
) -> None:
    """A proxy's page or an outage in front of the SOAP endpoint: said, not crashed on."""
    single.servers["salesforce"].emulator.user_info_answer = answer
    connector = SalesforceConnector(settings_for(single))
    try:
        with pytest.raises(ApiError, match=said) as caught:
            connector.company_currency()
    finally:
        connector.close()
    assert caught.value.operation == "user info"
