"""`crmsync check`'s findings on the defaults a CRM tells (a HubSpot portal's time zone and
company currency, a single-currency Salesforce org's currency) against the configured ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from config import known_zone
from sync.crm_defaults import Told, currency_names, told_currency, told_zone
from sync.errors import UsageError, terminal_safe

__all__ = ["company_currency", "portal_zone", "same_zone"]


def same_zone(one: str, other: str, now: datetime) -> bool:
    """Whether two zone names keep the same clocks from `now` on (HubSpot may name a portal's
    zone by an old alias, US/Eastern for America/New_York): the same offset at midnight and noon
    UTC of each day of the next two years."""
    if one == other:
        return True
    zones = known_zone(one), known_zone(other)
    if zones[0] is None or zones[1] is None:
        return False
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    moments = (start + timedelta(hours=12 * n) for n in range(2 * 731))
    return all(
        m.astimezone(zones[0]).utcoffset() == m.astimezone(zones[1]).utcoffset() for m in moments
    )


def portal_zone(name: str, system: Any, connector: Any) -> tuple[list[str], int | None]:
    """A CRM that says which zone its users pick dates in (HubSpot) against the configured one:
    a close date is read and written as its day there, so another zone puts it a day off."""
    configured = getattr(system, "timezone", None)
    if configured is None:
        return [], None
    told = told_zone(connector)
    if told.why is not None:  # a zone no tz database here knows: one keeping its clocks
        fits = "keeps the clocks of" if told.named else "is"
        return _unsure(name, "timezone", configured, told, fits), None
    if told.value is None or same_zone(told.value, configured, datetime.now(UTC)):
        return [], None
    portal = terminal_safe(told.value)  # the CRM's text, shown as written
    return [
        f"problem: {name}: the portal's time zone is {portal}, systems.{name}.timezone is "
        f"{configured}: close dates would be read and written a day off; set `timezone: "
        f"{portal}`"
    ], UsageError.exit_code


def company_currency(name: str, system: Any, connector: Any) -> tuple[list[str], int | None]:
    """A CRM that says its company currency (HubSpot's portal, a single-currency Salesforce
    org) against the configured one: a deal that names no currency of its own is in the
    company's, and is read in the configured one (USD where the config names none), so another
    one mislabels its amount."""
    names = currency_names(connector)
    if names is None:
        return [], None
    configured = str(system.currency)
    told = told_currency(connector)
    if told.why is not None:  # no finding either way: say it was not told
        return _unsure(name, "currency", configured, told), None
    if told.value is None or told.value == configured.upper():
        return [], None
    return [
        f"problem: {name}: {names.what} is {told.value}, systems.{name}.currency is "
        f"{configured}: amounts of {names.deals} would be read as {configured}; set "
        f"`currency: {told.value}`"
    ], UsageError.exit_code


def _unsure(name: str, key: str, configured: str, told: Told, fits: str = "is") -> list[str]:
    """The warning of a default the CRM told none to compare (`told.why` says why)."""
    return [
        f"warning: {name}: {told.why}; make sure systems.{name}.{key} ({configured}) {fits} the "
        f"one in {told.where}"
    ]
