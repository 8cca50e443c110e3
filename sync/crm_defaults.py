"""What a CRM says of the defaults an instance's config must match: the zone its users pick
dates in (HubSpot's portal: a close date is a day there) and the currency of its deals that name
none (HubSpot's portal, a single-currency Salesforce org). `init` writes them into a config
that names none, `check` compares them with the config's; both read them here, so a default
that cannot be read (a token without the scope: pulls never need it) or that no config here
can hold is worded the same way by both.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import known_zone
from connectors.base import CompanyCurrency, Connector, TellsCompanyCurrency
from connectors.errors import ConnectorError
from mapping.currencies import ISO_4217
from sync.errors import terminal_safe

__all__ = ["ZONE_WHERE", "Told", "currency_names", "told_currency", "told_zone"]

ZONE_WHERE = "HubSpot's Settings > Account Defaults"


@dataclass(frozen=True, slots=True)
class Told:
    """What a CRM said of one default: `value`, one a config can hold (None: it says none, or
    see `why`); `why`, why there is none to take (it could not be read, or `named` one no config
    here can hold: an unknown zone or currency code, shown as written); `where` a person sets
    it."""

    value: str | None
    where: str
    why: str | None = None
    named: bool = False


def told_zone(connector: object) -> Told:
    """The zone a CRM says its users pick dates in (HubSpot's portal), if it says one."""
    read = getattr(connector, "portal_timezone", None)
    if read is None:
        return Told(None, ZONE_WHERE)
    try:
        zone = str(read())
    except ConnectorError as exc:
        why = f"could not read the portal's time zone ({terminal_safe(exc.message)})"
        return Told(None, ZONE_WHERE, why)
    if known_zone(zone) is None:  # a name newer than this tz database: no value to ask for
        why = f"the portal's time zone {terminal_safe(zone)} is in no tz database here"
        return Told(None, ZONE_WHERE, why, named=True)
    return Told(zone, ZONE_WHERE)


def told_currency(connector: Connector) -> Told:
    """The company currency a CRM says (see `_company_currency`), if it says one."""
    names = currency_names(connector)
    if names is None:
        return Told(None, "")
    try:
        return Told(_company_currency(connector), names.where)
    except ConnectorError as exc:
        why = f"could not read {names.what} ({terminal_safe(exc.message)})"
        return Told(None, names.where, why)
    except ValueError as exc:  # names the currency, as written
        return Told(None, names.where, str(exc), named=True)


def currency_names(connector: object) -> CompanyCurrency | None:
    """How the CRM of `connector` names its company currency, if it has one to read."""
    return connector.company_currency_names if isinstance(connector, TellsCompanyCurrency) else None


def _company_currency(connector: Connector) -> str | None:
    """The one currency a CRM says its deals without a currency of their own are in (HubSpot's
    portal, a single-currency Salesforce org); None where it says none (a multi-currency org's
    records each name theirs). ConnectorError where it cannot be read (a HubSpot token may lack
    the scope: pulls never need it), ValueError where it is no ISO 4217 code (no config could
    hold it)."""
    if not isinstance(connector, TellsCompanyCurrency):
        return None
    names = connector.company_currency_names
    told = connector.company_currency()
    if told is None:
        return None
    currency = str(told).strip()
    if currency not in ISO_4217:
        raise ValueError(f"{names.what} {terminal_safe(currency)!r} is no ISO 4217 code")
    return currency
