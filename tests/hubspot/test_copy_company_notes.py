"""What a HubSpot copy that gets no company says of it, through the connector against the
emulator: a name longer than a company's `name` can hold is never searched for (one such
name in a search would risk the lookup of every other name of the run), and a copy HubSpot
refuses says it was sent without a company and why, not that it was created without one."""

from __future__ import annotations

from connectors.base import NativeCreate
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox

STAGE = {"dealstage": "appointmentscheduled"}


def _copies(*accounts: str) -> list[NativeCreate]:
    return [
        NativeCreate(f"copy-{n}", {"dealname": f"Copy {n}", **STAGE}, account)
        for n, account in enumerate(accounts)
    ]


def _add_company(sandbox: Sandbox, name: str) -> str:
    em = sandbox.servers["hubspot"].emulator
    with em.lock:
        return str(em.store.add_company(name))


def test_a_name_longer_than_a_company_can_bear_is_never_searched_and_its_copy_says_why(
    connector: HubSpotConnector, sandbox: Sandbox
) -> None:
    known = _add_company(sandbox, "Short Name Ltd")
    long = "x" * 65_537
    made = connector.create_deals(_copies("Short Name Ltd", long))
    assert [r.ok for r in made] == [True, True]
    assert made[0].note is None
    assert made[1].note == (
        f"no company can be named {'x' * 40 + '...'!r} (over 65536 characters): "
        "created without a company"
    )
    assert connector.calls().get("find companies") == 1
    em = sandbox.servers["hubspot"].emulator
    with em.lock:
        companies = [dict(em.store.companies_of.of.get(str(r.id)) or {}) for r in made]
    assert list(companies[0]) == [known] and companies[1] == {}


def test_a_refused_copy_says_it_was_sent_without_a_company_and_why(
    connector: HubSpotConnector, sandbox: Sandbox
) -> None:
    sandbox.servers["hubspot"].faults.set(Faults(rate_limit=10_000, record_fail=1.0))
    [refused] = connector.create_deals(_copies("Nobody Inc"))
    assert not refused.ok and refused.error is not None
    assert refused.error.endswith(" (no company: none is named 'Nobody Inc')"), refused.error
    assert "created" not in refused.error
