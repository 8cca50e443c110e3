"""Links from a report to a deal in its own CRM's web UI, built from the instance's base URL."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["record_url"]


def record_url(kind: str, base_url: str, record_id: str) -> str | None:
    """The web address of one deal, or None when the kind or URL is unknown or not http(s).

    HubSpot takes either a portal id (-> app.hubspot.com) or a base URL of its own."""
    safe_id = quote(record_id, safe="")
    parts = urlsplit(base_url.strip().rstrip("/"))
    # A base_url may log in to a proxy (`https://user:password@host`, or a token in its query):
    # a link never carries it, and a query would end up inside the record's path anyway.
    netloc = parts.netloc.rpartition("@")[2]
    base = urlunsplit(parts._replace(netloc=netloc, query="", fragment="")).rstrip("/")
    if kind == "hubspot" and base.isdigit():
        return f"https://app.hubspot.com/contacts/{base}/deal/{safe_id}"
    # Only web addresses: a `javascript:` base must never become a clickable link.
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        return None
    if kind == "salesforce":
        return f"{base}/lightning/r/Opportunity/{safe_id}/view"
    if kind in ("hubspot", "pipedrive"):
        return f"{base}/deal/{safe_id}"
    return None
