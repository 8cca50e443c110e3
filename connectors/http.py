"""The one retry, pacing and counting policy every connector call goes through.

Connectors never sleep or loop on errors themselves: they wrap each API call in
`CallPolicy.call`, which counts it, paces it under the system's rate limit, retries 429 / 5xx /
connection errors with capped exponential backoff and jitter (honouring Retry-After), renews an
expired session once, and turns everything else into a typed ConnectorError.
"""

from __future__ import annotations

import collections
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connectors.base import ConnectorSettings, PushResult
from connectors.credentials import redact, secret_values
from connectors.errors import (
    ApiError,
    AuthError,
    BudgetExhausted,
    ConnectorError,
    PermissionDenied,
    RateLimitExhausted,
)

__all__ = [
    "CallPolicy",
    "Failure",
    "FailureKind",
    "Pacer",
    "connection_failed",
    "connection_failure",
]

T = TypeVar("T")


class FailureKind(Enum):
    TRANSIENT = "transient"  # 5xx, connection reset: retry with backoff
    RATE_LIMITED = "rate_limited"  # 429: retry after Retry-After / backoff
    EXPIRED_SESSION = "expired_session"  # renew once, then repeat the call
    AUTH = "auth"
    PERMISSION = "permission"
    EXHAUSTED = "exhausted"  # daily allowance gone: retrying is pointless
    FATAL = "fatal"


_RETRYABLE = (FailureKind.TRANSIENT, FailureKind.RATE_LIMITED)
_ERROR_TYPES: dict[FailureKind, type[ConnectorError]] = {
    FailureKind.AUTH: AuthError,
    FailureKind.EXPIRED_SESSION: AuthError,
    FailureKind.PERMISSION: PermissionDenied,
    FailureKind.EXHAUSTED: RateLimitExhausted,
    FailureKind.RATE_LIMITED: RateLimitExhausted,
}


@dataclass(frozen=True)
class Failure:
    """How a connector classifies one exception of its client library."""

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None


class Pacer:
    """Keeps a steady run under a rolling-window limit instead of bouncing off 429s.

    It remembers the last `limit` calls and waits before a call that would make `limit` calls
    within `window` seconds as the server counts them; rate-limit headers (remaining, reset)
    tighten it further when another client shares the same quota.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit, self.window = max(1, limit), window
        self._calls: collections.deque[_Call] = collections.deque()
        self._blocked_until = 0.0
        self._latency = 0.0  # recent request duration: the margin of calls still in flight
        self._lock = threading.Lock()
        self._sleep, self._clock = sleep, clock

    def wait(self) -> _Call:
        """Block until a call may start; pass the result to `observe_latency` when it ends."""
        while True:
            with self._lock:
                now = self._clock()
                while self._calls and self._leaves(self._calls[0]) <= now:
                    self._calls.popleft()
                delay = max(0.0, self._blocked_until - now)
                if len(self._calls) >= self.limit:
                    delay = max(delay, self._leaves(self._calls[0]) - now)
                if delay <= 0:
                    call = _Call(now)
                    self._calls.append(call)
                    return call
            self._sleep(delay + 0.002)

    def _leaves(self, call: _Call) -> float:
        """When the server's window no longer holds the call. The server stamps it on arrival,
        up to one request duration after we started it: counting from our start alone lets the
        next call land inside the window of a call that arrived late."""
        took = call.took if call.took is not None else self._latency
        return call.started + took + self.window

    def observe_latency(self, seconds: float, call: _Call | None = None) -> None:
        """A request took `seconds`: its own margin, and (as a decaying maximum) the margin of
        the calls still in flight."""
        with self._lock:
            self._latency = max(self._latency * 0.9, min(seconds, self.window))
            if call is not None:
                call.took = min(seconds, self.window)

    def observe(self, remaining: int | None, reset_seconds: float | None) -> None:
        """Headers say how much of the window is left: when it is gone, pause until a slot
        frees.

        A call of ours in the window frees a slot when it ages out, whoever spent the rest of
        the quota (another client, another crmsync process): waiting for our oldest is enough,
        where a full `reset_seconds` pause (some APIs send the window length, not the time
        left) would idle for up to a whole window. Only a window with no call of ours in it
        blocks until the reset.
        """
        if remaining is not None and remaining <= 0 and reset_seconds:
            with self._lock:
                now = self._clock()
                ours = [leaves for c in self._calls if (leaves := self._leaves(c)) > now]
                frees = min(ours) if ours else now + reset_seconds
                self._blocked_until = max(self._blocked_until, frees)


@dataclass(slots=True)
class _Call:
    started: float
    took: float | None = None  # None while in flight


class CallPolicy:
    """Counts, paces and retries the calls of one connector (thread-safe)."""

    def __init__(
        self,
        system: str,
        classify: Callable[[BaseException], Failure],
        *,
        pacer: Pacer | None = None,
        budget: int | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        secrets: Iterable[str] = (),
    ) -> None:
        self.system = system
        self.classify = classify
        self.pacer = pacer
        self.budget = budget
        self.max_attempts = max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._sleep = sleep
        self._counts: collections.Counter[str] = collections.Counter()
        self._retries: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._secrets = set(secrets)
        # Operations under a limit of their own on top of the connector's (Pipedrive's
        # searches: 10 per 2 s within its general burst limit).
        self._narrower: dict[str, Pacer] = {}

    def pace(self, operations: Iterable[str], pacer: Pacer) -> None:
        """Pace `operations` under `pacer` too, which they alone share, as well as under the
        connector's own pacer: an API's narrower limit for some of its endpoints."""
        for operation in operations:
            self._narrower[operation] = pacer

    def add_secret(self, value: str) -> None:
        """A secret the connector obtained itself (a login's session id): masked from now on."""
        with self._lock:
            self._secrets.add(value)

    def redacted(self, results: Iterable[PushResult]) -> list[PushResult]:
        """Batch write results with their per-record errors masked: a 200 or 207 answer quotes
        its refusals per record, outside any error this policy raises."""
        with self._lock:
            secrets = tuple(self._secrets)
        return [
            replace(r, error=redact(r.error, secrets)) if r.error is not None else r
            for r in results
        ]

    @classmethod
    def for_connector(
        cls,
        settings: ConnectorSettings,
        classify: Callable[[BaseException], Failure],
        default_pace: tuple[int, float],
    ) -> CallPolicy:
        """The policy of one connector: its pacing (config override or the API's default
        limit), the run's call budget and the retry knobs tests may shorten via `options`."""
        limit, window = settings.rate_limit or default_pace
        options = settings.options
        return cls(
            settings.instance,
            classify,
            pacer=Pacer(limit, window),
            budget=settings.call_budget,
            max_attempts=int(options.get("max_attempts", 6)),
            backoff_base=float(options.get("backoff_base", 0.5)),
            secrets=secret_values(settings.credentials),
        )

    # -- counting ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def retries(self) -> dict[str, int]:
        with self._lock:
            return dict(self._retries)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def _spend(self, operation: str) -> None:
        with self._lock:
            if self.budget is not None and sum(self._counts.values()) >= self.budget:
                raise BudgetExhausted(
                    self.system, operation, f"call budget of {self.budget} calls for this run spent"
                )
            self._counts[operation] += 1

    # -- the call ---------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        failure = self.classify(exc) if exc else None
        if failure and failure.retry_after is not None:
            return min(max(failure.retry_after, 0.0), 120.0)
        exp = min(self.backoff_cap, self.backoff_base * 2 ** (state.attempt_number - 1))
        return random.uniform(exp / 2, exp)  # jitter keeps parallel workers from syncing up

    def _retryable(self, exc: BaseException) -> bool:
        return not isinstance(exc, ConnectorError) and self.classify(exc).kind in _RETRYABLE

    def _before_sleep(self, state: RetryCallState) -> None:
        with self._lock:
            self._retries[self._operation_of(state)] += 1

    @staticmethod
    def _operation_of(state: RetryCallState) -> str:
        return str(state.kwargs.get("operation", "call"))

    # Not named `fn`: tenacity's Retrying.__call__ takes `fn` itself.
    def _attempt(self, *, operation: str, request: Callable[[], T]) -> T:
        self._spend(operation)
        pacers = [p for p in (self._narrower.get(operation), self.pacer) if p is not None]
        calls = [(pacer, pacer.wait()) for pacer in pacers]  # the narrower limit first
        started = time.monotonic()
        try:
            return request()
        finally:
            took = time.monotonic() - started
            for pacer, call in calls:
                pacer.observe_latency(took, call)

    def call(
        self,
        operation: str,
        fn: Callable[[], T],
        *,
        renew_session: Callable[[], None] | None = None,
    ) -> T:
        """Run `fn` under the policy; `renew_session` is tried once on an expired session."""
        retrying = Retrying(
            retry=retry_if_exception(self._retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        renewed = False
        while True:
            try:
                return retrying(self._attempt, operation=operation, request=fn)
            except ConnectorError:
                raise
            except Exception as exc:
                failure = self.classify(exc)
                if (
                    failure.kind is FailureKind.EXPIRED_SESSION
                    and renew_session is not None
                    and not renewed
                ):
                    renewed = True
                    renew_session()
                    continue
                error_type = _ERROR_TYPES.get(failure.kind, ApiError)
                if failure.kind in _RETRYABLE:
                    message = f"{failure.message} (gave up after {self.max_attempts} attempts)"
                else:
                    message = failure.message
                # Every connector's errors pass here: an API (or a proxy) that quotes the
                # request's token in its answer must not carry it into a message or the store.
                with self._lock:
                    message = redact(message, self._secrets)
                raise error_type(self.system, operation, message, failure.status) from None


def connection_failed(exc: BaseException) -> Failure:
    """A call that never got an answer: retried, unless TLS refused it (a certificate not
    trusted, a ca_file that holds no certificate), which no retry changes."""
    chain = list(_chain(exc))
    where = next((a for a in map(_address, chain) if a), "the server")
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            why = error.verify_message or error.reason or "certificate verify failed"
            return Failure(
                FailureKind.FATAL,
                f"TLS: the certificate of {where} is not trusted ({why}); if a private CA "
                "signed it, set the instance's ca_file to that CA's PEM file",
            )
        if isinstance(error, ssl.SSLError) and error.library in ("X509", "PEM"):
            return Failure(
                FailureKind.FATAL,
                f"TLS: the instance's ca_file holds no CA certificate ({error.library}: "
                f"{error.reason}); set it to a PEM file",
            )
    return Failure(FailureKind.TRANSIENT, f"connection failed: {connection_failure(exc)}")


def connection_failure(exc: BaseException) -> str:
    """Where a connection that failed went, and why, from any client library's exception.

    The address is only scheme, host and port: a URL's query string may carry a token.
    """
    chain = list(_chain(exc))
    where = next((a for a in map(_address, chain) if a), "the server")
    proxy = _proxy(chain)
    if proxy is not None and any(isinstance(e, ConnectionRefusedError) for e in chain):
        return (
            f"the proxy {proxy} refused the connection to {where} (is the proxy up? HTTPS_PROXY"
            " / HTTP_PROXY in the environment set it; NO_PROXY names the hosts reached without it)"
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return (
            f"{where} refused the connection (is the server up, and the instance's base_url right?)"
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"{where}: host name not found (is the instance's base_url right?)"
    if any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain):
        return f"{where} did not answer in time"
    return f"{where} dropped the connection ({type(chain[-1]).__name__})"


def _proxy(chain: Iterable[BaseException]) -> str | None:
    """The host and port of the proxy a failed call went through (requests' and urllib3's
    ProxyError wrap the connection to it), or None without one."""
    chain = list(chain)
    if not any(type(e).__name__ == "ProxyError" for e in chain):
        return None
    conn = next((c for e in chain if getattr(c := getattr(e, "conn", None), "host", None)), None)
    return f"{conn.host}:{conn.port}" if conn is not None else "(from the environment)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it wraps (args, urllib3's `reason`, causes), each once."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = (getattr(current, "reason", None), current.__cause__, current.__context__)
        todo += [e for e in (*current.args[:1], *wrapped) if isinstance(e, BaseException)]


def _address(exc: BaseException) -> str | None:
    url = getattr(getattr(exc, "request", None), "url", None)  # requests' exceptions
    if isinstance(url, str) and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].rpartition('@')[2]}"
    conn = getattr(exc, "conn", None)  # urllib3's NewConnectionError (its `pool` is deprecated)
    if conn is not None and getattr(conn, "host", None):
        scheme = "https" if "HTTPS" in type(conn).__name__ else "http"
        return f"{scheme}://{conn.host}:{conn.port}"
    pool = getattr(exc, "pool", None)  # urllib3's MaxRetryError
    if pool is not None and getattr(pool, "host", None):
        return f"{pool.scheme}://{pool.host}:{pool.port}"
    return None


def header_int(headers: Mapping[str, str], *names: str) -> int | None:
    """The first of `names` present in `headers` (case-insensitive) as an int."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value is not None:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None
