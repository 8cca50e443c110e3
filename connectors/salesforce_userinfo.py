"""The org's currency, from the SOAP API's getUserInfo() (the REST API has no call telling it).

Its GetUserInfoResult says `organizationMultiCurrency` and, only where that is false,
`orgDefaultCurrencyIsoCode`: the currency of every amount in a single-currency org, whose
records carry no CurrencyIsoCode (SOAP API Developer Guide, getUserInfoResult:
https://developer.salesforce.com/docs/platform/api/guide/sforce-api-calls-getuserinfo-getuserinforesult.html).
It tells the logged-in user about itself, so any API user may call it. The REST candidates are
not it: CurrencyType (with `IsCorporate`) exists in multi-currency orgs only (Object Reference,
CurrencyType), and no Salesforce document confirms an Organization field naming the currency.

The call goes to the partner endpoint simple-salesforce logs in at (`/services/Soap/u/{version}`,
`urn:partner.soap.sforce.com`); a refusal is a SOAP fault (HTTP 500) whose `sf:exceptionCode`
names it, turned here into simple-salesforce's exceptions so the call policy classifies it as
it does a REST error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

__all__ = ["OrgCurrency", "parse_user_info", "user_info"]

SOAP_NS = "urn:partner.soap.sforce.com"
_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# Faults that are refusals of this API user or org, not of the request: a 403 to the policy.
_REFUSALS = frozenset(
    {"REQUEST_LIMIT_EXCEEDED", "API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED",
     "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY"}
)  # fmt: skip
_ENVELOPE = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{_ENVELOPE_NS}" xmlns:urn="{SOAP_NS}">'
    "<soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId>"
    "</urn:SessionHeader></soapenv:Header>"
    "<soapenv:Body><urn:getUserInfo/></soapenv:Body></soapenv:Envelope>"
)


@dataclass(frozen=True)
class OrgCurrency:
    multi_currency: bool
    default_code: str | None  # orgDefaultCurrencyIsoCode: set in a single-currency org only


def user_info(sf: Salesforce) -> OrgCurrency:
    """One getUserInfo() request on the session of `sf`."""
    url = f"https://{sf.sf_instance}/services/Soap/u/{sf.sf_version}"
    response = sf.session.post(
        url,
        data=_ENVELOPE.format(session=escape(sf.session_id)).encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
    )
    if response.status_code != 200:
        raise _fault(url, response.status_code, response.content)
    try:
        return parse_user_info(response.content)
    except ValueError as exc:  # a proxy's page, or an answer changed: said, not crashed on
        body = _content("BAD_ANSWER", str(exc))
        raise SalesforceError(url, response.status_code, "getUserInfo", body) from None


def parse_user_info(content: bytes) -> OrgCurrency:
    """The currency fields of a getUserInfoResponse; ValueError where it is none."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise ValueError(f"the answer is no XML ({exc})") from None
    result = root.find(f".//{{{SOAP_NS}}}getUserInfoResponse/{{{SOAP_NS}}}result")
    if result is None:
        raise ValueError("the answer holds no getUserInfoResponse")
    multi = result.find(f"{{{SOAP_NS}}}organizationMultiCurrency")
    if multi is None or (multi.text or "").strip() not in ("true", "false"):
        raise ValueError("the answer names no organizationMultiCurrency")
    code = result.find(f"{{{SOAP_NS}}}orgDefaultCurrencyIsoCode")
    text = None if code is None or code.get(_NIL) == "true" else (code.text or "").strip()
    return OrgCurrency((multi.text or "").strip() == "true", text or None)


def _content(code: str, message: str) -> Any:
    """An error as REST gives it, which the call policy reads codes and messages from (typed
    Any: simple-salesforce annotates `content` as bytes, yet gives its exceptions the parsed
    JSON body, util.py `exception_handler`)."""
    return [{"errorCode": code, "message": message}]


def _fault(url: str, status: int, content: bytes) -> SalesforceError:
    code = message = None
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        root = None
    if root is not None:
        fault = root.find(f".//{{{_ENVELOPE_NS}}}Fault")
        if fault is not None:
            code = (fault.findtext("{*}faultcode") or "").rpartition(":")[2] or None
            message = fault.findtext(".//{*}exceptionMessage") or fault.findtext("{*}faultstring")
    if code is None:  # no SOAP fault: a proxy or an outage, classified by its status
        return SalesforceGeneralError(url, status, "getUserInfo", _content("HTTP", str(status)))
    body = _content(code, message or code)
    if code == "INVALID_SESSION_ID":
        return SalesforceExpiredSession(url, 401, "getUserInfo", body)
    if code in _REFUSALS:
        return SalesforceRefusedRequest(url, 403, "getUserInfo", body)
    if code == "SERVER_UNAVAILABLE" or status > 500:  # passes: tried again, as a REST 503
        return SalesforceGeneralError(url, max(status, 503), "getUserInfo", body)
    return SalesforceMalformedRequest(url, 400, "getUserInfo", body)
