"""The HTTP side of the sandbox: one real server per emulated CRM.

An emulator (salesforce.py, hubspot.py, pipedrive.py) is plain request -> response logic over
in-memory data; this module gives it a socket, TLS, routing, request statistics, fault
injection, rate-limit windows and the `/__sandbox/` control endpoints. Handlers run under the
emulator's lock, so a read never sees half a write.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from connectors.sandbox.faults import Faults, FaultSpecError, FaultState, parse_faults

__all__ = [
    "Emulator",
    "Route",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "json_body",
]

CONTROL_PREFIX = "/__sandbox/"


class BadRequest(Exception):
    """Raised by a handler to answer 400 with the system's error shape."""


@dataclass(frozen=True)
class SandboxRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)  # from the route template

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a repeated (or comma-separated) query parameter."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null", parse_float=Decimal)
        except ValueError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None


@dataclass
class SandboxResponse:
    status: int
    body: Any = None  # JSON-able (Decimal allowed) or bytes
    headers: dict[str, str] = field(default_factory=dict)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        # A JSON number, as the real APIs send: integral values without a fraction.
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_body(body: Any) -> bytes:
    # orjson: encoding big pages is most of a list request's cost (18x faster than json here).
    try:
        return orjson.dumps(body, default=_default)
    except orjson.JSONEncodeError:  # an integer past 64 bits, which JSON allows and orjson not
        return json.dumps(body, default=_default, separators=(",", ":")).encode()


Handler = Callable[[SandboxRequest], SandboxResponse]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/deals/{id}": also the key of the request statistics
    handler: Handler
    # What a call spends of the daily budget (`daily_limit`): Pipedrive's token cost per
    # operation (`x-token-cost`); one call elsewhere.
    cost: int = 1

    def compile(self) -> re.Pattern[str]:
        pattern = re.sub(
            r"\{(\w+)\}",
            r"(?P<\1>[^/]+)",
            re.escape(self.template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        return re.compile(pattern + "/?$")


class Emulator(Protocol):
    """What a CRM emulator provides; the server does the rest."""

    system: str
    rate_limit: int  # requests per rate_window seconds (the real API's default)
    rate_window: float
    lock: threading.RLock
    fault_state: FaultState

    def routes(self) -> list[Route]: ...
    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None: ...
    def error(self, status: int, code: str, message: str) -> SandboxResponse: ...
    def too_many_requests(self, retry_after: float) -> SandboxResponse: ...
    def limit_headers(self, used: int, limit: int, window: float) -> dict[str, str]: ...
    def daily_limit_exceeded(self) -> SandboxResponse: ...
    def session_expired(self) -> SandboxResponse | None: ...
    def dump(self) -> dict[str, Any]: ...
    def reset(self) -> None: ...
    def purge_deleted(self) -> int: ...  # the CRM's recycle bin emptied; returns how many
    # deals taken back out of the recycle bin, as a person restores them; returns those restored
    def restore_deleted(self, ids: Sequence[str]) -> list[str]: ...


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[str] = collections.Counter()

    def add(self, key: str, status: int) -> None:
        with self._lock:
            self.requests[key] += 1
            self.statuses[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self.requests.values()),
                "requests": dict(sorted(self.requests.items())),
                "statuses": dict(sorted(self.statuses.items())),
            }


class _Window:
    """A rolling request window, as the CRMs count their burst limits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamps: collections.deque[float] = collections.deque()

    def hit(self, limit: int, window: float) -> tuple[bool, int, float]:
        """Record a request; (allowed, used in window, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            while self._stamps and self._stamps[0] <= now - window:
                self._stamps.popleft()
            if len(self._stamps) >= limit:
                return False, len(self._stamps), self._stamps[0] + window - now
            self._stamps.append(now)
            return True, len(self._stamps), 0.0


class SandboxServer:
    """One emulator behind a real HTTP(S) server on 127.0.0.1, served from a thread."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        port: int = 0,
        faults: Faults | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.emulator = emulator
        self.faults = FaultState(faults)
        # Per-record write failures are decided by the emulator, so it sees the live faults.
        emulator.fault_state = self.faults
        self.stats = _Stats()
        self._window = _Window()
        self._search_window = _Window()  # `search_rate_limit`'s own count
        self._routes = [(r, r.compile()) for r in emulator.routes()]
        self._httpd = _HTTPServer(("127.0.0.1", port), _make_handler(self))
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self.emulator.system}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, request: SandboxRequest) -> tuple[SandboxResponse, str, bool]:
        """(response, stats key, drop the connection mid-response?)"""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request), f"{request.method} {request.path}", False
        for route, pattern in self._routes:
            match = pattern.match(request.path)
            if match and route.method == request.method:
                key = f"{route.method} {route.template}"
                request = SandboxRequest(
                    request.method,
                    request.path,
                    request.query,
                    request.headers,
                    request.body,
                    match.groupdict(),
                )
                return self._api(route, request), key, self._should_drop()
        em = self.emulator
        return (
            em.error(404, "NOT_FOUND", f"no such endpoint {request.method} {request.path}"),
            (f"{request.method} <unknown>"),
            False,
        )

    def _should_drop(self) -> bool:
        return self.faults.draw(self.faults.faults.drop)

    def _api(self, route: Route, request: SandboxRequest) -> SandboxResponse:
        response = self._answer(route, request)
        # every answer: a batch write's 200 or 207 quotes its refusals per record
        if self.faults.faults.echo_credentials:
            response.body = _echoed(response.body, _credentials_of(request))
        return response

    def _answer(self, route: Route, request: SandboxRequest) -> SandboxResponse:
        em, state = self.emulator, self.faults
        faults = state.faults
        delay = faults.latency_ms + (
            faults.latency_spike_ms if state.draw(faults.latency_spike_rate) else 0.0
        )
        if delay:
            time.sleep(delay / 1000)
        denied = em.authenticate(request)
        if denied is not None:
            return denied
        calls = state.count_call(route.cost)
        if faults.expire_after is not None and calls > faults.expire_after:
            expired = em.session_expired()
            if expired is not None:
                return expired
        if faults.daily_limit is not None and calls > faults.daily_limit:
            return em.daily_limit_exceeded()
        limit = faults.rate_limit or em.rate_limit
        window = faults.rate_window or em.rate_window
        allowed, used, wait = self._window.hit(limit, window)
        if faults.enforce_rate_limit and not allowed:
            # An emulator may answer its real window limit unlike an injected 429 (HubSpot's
            # ten-second 429 carries no Retry-After); by default both are the same.
            exceeded = getattr(em, "window_exceeded", em.too_many_requests)
            return _with(exceeded(max(wait, 0.001)), em.limit_headers(used, limit, window))
        if faults.search_rate_limit and route.template.endswith("/search"):
            searched, _, free = self._search_window.hit(faults.search_rate_limit, window)
            if not searched:
                return _with(
                    em.too_many_requests(max(free, 0.001)), em.limit_headers(used, limit, window)
                )
        if state.take_burst() or state.draw(faults.rate429):
            return em.too_many_requests(faults.retry_after)
        if state.draw(faults.error5xx):
            status = state.choice([500, 502, 503])
            return em.error(status, "SERVER_UNAVAILABLE", "injected server error, try again")
        try:
            with em.lock:
                response = route.handler(request)
        except BadRequest as exc:
            response = em.error(400, "MALFORMED_REQUEST", str(exc))
        return _with(response, em.limit_headers(used, limit, window))

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        em = self.emulator
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        if name == "stats" and request.method == "GET":
            return SandboxResponse(200, self.stats.snapshot())
        if name == "stats" and request.method == "DELETE":
            self.stats.clear()
            return SandboxResponse(204)
        if name == "dump" and request.method == "GET":
            with em.lock:
                return SandboxResponse(200, {em.system: em.dump()})
        if name == "reset" and request.method == "POST":
            with em.lock:
                em.reset()
            self.stats.clear()
            self.faults.set(Faults())
            return SandboxResponse(204)
        if name == "purge" and request.method == "POST":
            with em.lock:
                return SandboxResponse(200, {"purged": em.purge_deleted()})
        if name == "restore" and request.method == "POST":
            try:
                ids = (request.json() or {}).get("ids")
            except (BadRequest, AttributeError) as exc:
                return SandboxResponse(400, {"error": str(exc)})
            if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
                return SandboxResponse(400, {"error": 'expected {"ids": [deal id, ...]}'})
            with em.lock:
                return SandboxResponse(200, {"restored": em.restore_deleted([str(i) for i in ids])})
        if name == "faults" and request.method == "GET":
            return SandboxResponse(200, self.faults.faults.to_json())
        if name == "faults" and request.method in ("POST", "PUT"):
            try:
                body = request.json() or {}
                base = self.faults.faults if request.method == "POST" else Faults()
                self.faults.set(parse_faults(body, base))
            except (FaultSpecError, BadRequest, AttributeError) as exc:
                return SandboxResponse(400, {"error": str(exc)})
            return SandboxResponse(200, self.faults.faults.to_json())
        return SandboxResponse(404, {"error": f"no control endpoint {request.method} {name}"})


def _credentials_of(request: SandboxRequest) -> str:
    """Everything secret the request carried, as a careless server would quote it."""
    # x-api-token: Pipedrive's token header, the only place its API v2 takes the token
    parts = [request.headers.get("authorization", ""), request.headers.get("x-api-token", "")]
    parts += [f"api_token={t}" for t in request.query.get("api_token", [])]
    if b"password=" in request.body or b"client_secret=" in request.body:
        parts.append(request.body.decode("utf-8", "replace"))
    return " ".join(p for p in parts if p)


def _echoed(body: Any, credentials: str) -> Any:
    """The error body with the request's credentials appended to each message text."""
    if isinstance(body, list):
        return [_echoed(item, credentials) for item in body]
    if isinstance(body, dict):
        return {
            k: f"{v} (request: {credentials})"
            if k in ("message", "error") and isinstance(v, str)
            else _echoed(v, credentials)
            for k, v in body.items()
        }
    return body


def _with(response: SandboxResponse, headers: dict[str, str]) -> SandboxResponse:
    for key, value in headers.items():
        response.headers.setdefault(key, value)
    return response


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish (or the TLS handshake of a probe) are not worth a traceback.
        pass


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per keep-alive request).
        disable_nagle_algorithm = True
        server_version = f"crmsync-sandbox-{server.emulator.system}"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = SandboxRequest(
                self.command,
                parts.path,
                parse_qs(parts.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            try:
                response, key, drop = server.dispatch(request)
            except Exception as exc:  # an emulator bug must still answer in the API's shape
                response = server.emulator.error(500, "UNKNOWN_EXCEPTION", f"sandbox: {exc}")
                key, drop = f"{request.method} <error>", False
            if not request.path.startswith(CONTROL_PREFIX):  # stats count API requests only
                server.stats.add(key, response.status)
            payload = (
                response.body
                if isinstance(response.body, bytes)
                else (b"" if response.body is None else json_body(response.body))
            )
            self.send_response(response.status)
            if not isinstance(response.body, bytes) and response.body is not None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if drop and payload:
                # Cut the connection half-way through the body, as a flaky proxy would.
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return _Handler
