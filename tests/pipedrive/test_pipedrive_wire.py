"""Error classification and secret redaction of the Pipedrive plumbing (pure functions)."""

from __future__ import annotations

import requests
import responses
from pipedrive import exceptions

from connectors.http import FailureKind
from connectors.pipedrive_wire import SessionClient, classify, redact


def _response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


def test_api_token_in_any_url_text_is_redacted_even_when_unknown():
    text = "Max retries exceeded with url: /v1/deals?start=0&api_token=abc123&limit=500"
    assert (
        redact(text) == "Max retries exceeded with url: /v1/deals?start=0&api_token=***&limit=500"
    )
    assert "s3cr3t" not in redact("token s3cr3t in a header", ["s3cr3t"])


def test_status_codes_map_to_retry_or_typed_failures():
    def kind(status: int, message: str = "x", headers: dict[str, str] | None = None):
        error = exceptions.BaseError(message, _response(status, headers))
        return classify(error)

    assert kind(401).kind is FailureKind.AUTH
    assert kind(403).kind is FailureKind.PERMISSION
    limited = kind(429, "Request over limit", {"Retry-After": "0.5"})
    assert (limited.kind, limited.retry_after) == (FailureKind.RATE_LIMITED, 0.5)
    assert kind(429, "Daily API token budget exceeded").kind is FailureKind.EXHAUSTED
    assert kind(502).kind is FailureKind.TRANSIENT
    assert kind(404, "Deal not found").message == "Deal not found"
    assert kind(400).kind is FailureKind.FATAL


def test_connection_errors_are_transient_and_carry_no_token():
    error = requests.ConnectionError("url: /v1/users?api_token=tok-1 refused")
    failure = classify(error, ["tok-1"])
    assert failure.kind is FailureKind.TRANSIENT and "tok-1" not in failure.message
    cut = requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)")
    assert classify(cut).kind is FailureKind.TRANSIENT


@responses.activate
def test_the_api_token_travels_in_the_x_api_token_header_never_in_a_url():
    """A URL reaches logs (urllib3 at DEBUG, proxies, error texts): the token stays out of it."""
    base = "https://pd.example"
    responses.get(f"{base}/api/v2/deals", json={"success": True, "data": []})
    responses.get(f"{base}/v1/users", json={"success": True, "data": []})
    client = SessionClient(base, requests.Session(), 5.0, lambda headers: None)
    client.set_api_token("tok-123")
    client._get(f"{base}/api/v2/deals", params={"limit": 1})
    client.users.get_all_users()
    for call in responses.calls:
        assert call.request.headers["x-api-token"] == "tok-123"
        assert "tok-123" not in str(call.request.url)
        assert "Authorization" not in call.request.headers


@responses.activate
def test_an_access_token_travels_as_a_bearer_header():
    base = "https://pd.example"
    responses.get(f"{base}/api/v2/deals", json={"success": True, "data": []})
    client = SessionClient(base, requests.Session(), 5.0, lambda headers: None)
    client.set_access_token("oauth-456")
    client._get(f"{base}/api/v2/deals")
    [call] = responses.calls
    assert call.request.headers["Authorization"] == "Bearer oauth-456"
    assert "oauth-456" not in str(call.request.url) and "x-api-token" not in call.request.headers
