"""The one SOAP call the Salesforce emulator answers: getUserInfo() on the partner endpoint
(`POST /services/Soap/u/{version}`), which the REST API has no counterpart of.

As in Salesforce, the session goes in the envelope's SessionHeader, not in an Authorization
header; every refusal is a SOAP fault (HTTP 500) naming its exception code, the shape
simple-salesforce reads a failed SOAP login in (`sf:exceptionCode`, `sf:exceptionMessage`).
A GetUserInfoResult says `organizationMultiCurrency`, and `orgDefaultCurrencyIsoCode` only
where that is false (nil in a multi-currency org, whose users have personal currencies).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

__all__ = ["operation_of", "session_of", "soap_fault", "user_info_answer"]

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PARTNER = "urn:partner.soap.sforce.com"
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
    f'xmlns="{_PARTNER}" {_XSI}><soapenv:Body>'
)
# A fault's faultcode and faultstring are unqualified (SOAP 1.1): no default namespace there.
_FAULT_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
    f'xmlns:sf="urn:fault.partner.soap.sforce.com" {_XSI}><soapenv:Body>'
)
_TAIL = "</soapenv:Body></soapenv:Envelope>"


def _parsed(body: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def session_of(body: bytes) -> str | None:
    """The sessionId of the envelope's SessionHeader, if it has one."""
    root = _parsed(body)
    found = None if root is None else root.find(f".//{{{_PARTNER}}}sessionId")
    return None if found is None else (found.text or "").strip()


def operation_of(body: bytes) -> str | None:
    """The local name of the call the envelope's Body holds (`getUserInfo`)."""
    root = _parsed(body)
    call = None if root is None else root.find(f"{{{_SOAP_ENV}}}Body/*")
    return None if call is None else call.tag.rpartition("}")[2]


def user_info_answer(
    *, user_id: str, user_name: str, multi_currency: bool, org_currency: str, personal: str
) -> bytes:
    """A getUserInfoResponse; the currency fields as Salesforce fills them for each kind of
    org (the user's own currency only in a multi-currency one)."""
    fields = [
        ("organizationId", "00D000000000000AAA"),
        ("organizationMultiCurrency", "true" if multi_currency else "false"),
        ("organizationName", "crmsync sandbox"),
        ("orgDefaultCurrencyIsoCode", None if multi_currency else org_currency),
        ("userDefaultCurrencyIsoCode", personal if multi_currency else None),
        ("userId", user_id),
        ("userName", user_name),
    ]
    result = "".join(
        f'<{name} xsi:nil="true"/>' if value is None else f"<{name}>{escape(value)}</{name}>"
        for name, value in fields
    )
    answer = f"<getUserInfoResponse><result>{result}</result></getUserInfoResponse>"
    return f"{_HEAD}{answer}{_TAIL}".encode()


def soap_fault(code: str, message: str) -> bytes:
    """A fault as the partner API sends one: `sf:<code>` with the code's own message."""
    text = escape(f"{code}: {message}")
    return (
        f"{_FAULT_HEAD}<soapenv:Fault><faultcode>sf:{escape(code)}</faultcode>"
        f"<faultstring>{text}</faultstring><detail>"
        '<sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
        f"<sf:exceptionCode>{escape(code)}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:UnexpectedErrorFault></detail></soapenv:Fault>{_TAIL}"
    ).encode()
