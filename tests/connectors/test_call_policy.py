"""The one retry / pacing / counting policy, driven with plain callables and a fake clock."""

from __future__ import annotations

import time

import pytest

from connectors.errors import ApiError, AuthError, BudgetExhausted, RateLimitExhausted
from connectors.http import CallPolicy, Failure, FailureKind, Pacer


class Flaky(Exception):
    def __init__(self, kind: FailureKind, retry_after: float | None = None) -> None:
        super().__init__(kind.value)
        self.kind, self.retry_after = kind, retry_after


def classify(exc: BaseException) -> Failure:
    assert isinstance(exc, Flaky)
    return Failure(exc.kind, f"boom: {exc.kind.value}", 500, exc.retry_after)


def sequence(*outcomes: object):  # type: ignore[no-untyped-def]
    items = list(outcomes)

    def call() -> object:
        item = items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return call


def policy(**kw: object) -> tuple[CallPolicy, list[float]]:
    slept: list[float] = []
    return CallPolicy("hs", classify, sleep=slept.append, **kw), slept  # type: ignore[arg-type]


def test_transient_failures_are_retried_and_counted() -> None:
    p, slept = policy(backoff_base=0.5)
    call = sequence(Flaky(FailureKind.TRANSIENT), Flaky(FailureKind.TRANSIENT), "ok")
    assert p.call("list deals", call) == "ok"
    assert p.counts() == {"list deals": 3}
    assert p.retries() == {"list deals": 2}
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0  # capped exponential with jitter


def test_retry_after_is_honoured() -> None:
    p, slept = policy()
    assert p.call("search", sequence(Flaky(FailureKind.RATE_LIMITED, 7.0), "ok")) == "ok"
    assert slept == [7.0]


def test_giving_up_raises_a_typed_error_naming_system_and_operation() -> None:
    p, _ = policy(max_attempts=3)
    with pytest.raises(RateLimitExhausted) as err:
        p.call("search", sequence(*[Flaky(FailureKind.RATE_LIMITED)] * 3))
    assert str(err.value) == "hs: search: boom: rate_limited (gave up after 3 attempts)"


def test_non_retryable_errors_fail_fast() -> None:
    p, slept = policy()
    with pytest.raises(AuthError):
        p.call("check", sequence(Flaky(FailureKind.AUTH)))
    with pytest.raises(ApiError):
        p.call("read", sequence(Flaky(FailureKind.FATAL)))
    assert slept == [] and p.counts() == {"check": 1, "read": 1}


def test_an_expired_session_is_renewed_once_and_the_call_repeated() -> None:
    p, _ = policy()
    renewed: list[bool] = []
    call = sequence(Flaky(FailureKind.EXPIRED_SESSION), "ok")
    assert p.call("query", call, renew_session=lambda: renewed.append(True)) == "ok"
    assert renewed == [True]
    with pytest.raises(AuthError):  # a second expiry in a row is not renewed again
        p.call(
            "query",
            sequence(*[Flaky(FailureKind.EXPIRED_SESSION)] * 2),
            renew_session=lambda: renewed.append(True),
        )


def test_the_call_budget_stops_cleanly_before_the_next_call() -> None:
    p, _ = policy(budget=2)
    p.call("a", lambda: 1)
    p.call("b", lambda: 2)
    with pytest.raises(BudgetExhausted, match="call budget of 2 calls"):
        p.call("c", lambda: 3)
    assert p.total == 2


def test_the_pacer_keeps_a_window_under_its_limit() -> None:
    slept: list[float] = []
    pacer = Pacer(3, 1.0, sleep=lambda s: (slept.append(s), time.sleep(s)))  # type: ignore[func-returns-value]
    started = time.monotonic()
    for _ in range(4):
        pacer.wait()
    assert time.monotonic() - started >= 0.99  # the 4th call waited for the window
    assert slept


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_call_that_reached_the_server_late_keeps_its_place_in_the_window_that_long() -> None:
    clock = _Clock()
    pacer = Pacer(2, 1.0, sleep=clock.advance, clock=clock)
    first = pacer.wait()
    clock.advance(0.4)  # the server stamped the first call up to 0.4 s after we started it
    pacer.observe_latency(0.4, first)
    second = pacer.wait()
    pacer.observe_latency(0.0, second)
    clock.advance(0.7)  # 1.1 s after the first call started, 0.7 s after the server saw it
    pacer.wait()
    assert clock.now >= 1.4  # a third call sooner would be the server's third in one window


def test_operations_under_a_narrower_limit_wait_for_it_and_the_others_do_not() -> None:
    clock = _Clock()
    general = Pacer(100, 2.0, sleep=clock.advance, clock=clock)
    calls = CallPolicy("pd", classify, pacer=general, sleep=clock.advance)
    calls.pace(["find organization"], Pacer(10, 2.0, sleep=clock.advance, clock=clock))
    for _ in range(20):
        calls.call("read deal", lambda: None)
    assert clock.now == 0.0  # far under the general limit
    for _ in range(10):
        calls.call("find organization", lambda: None)
    assert clock.now == 0.0
    calls.call("find organization", lambda: None)  # the 11th search in 2 s
    assert clock.now >= 2.0


class _Slept(Exception):
    pass


def test_a_quota_others_share_pauses_only_until_our_oldest_call_ages_out() -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise _Slept  # the first pause is the one under test

    pacer = Pacer(100, 10.0, sleep=sleep)
    pacer.wait()  # our one call in the window; another client spent the other 99
    pacer.observe(remaining=0, reset_seconds=60.0)  # HubSpot sends the window length
    with pytest.raises(_Slept):
        pacer.wait()
    assert 9.9 < slept[0] <= 10.01  # until our call is 10 s old, not a whole 60 s


def test_headers_saying_the_quota_is_gone_pause_until_the_reset() -> None:
    slept: list[float] = []
    pacer = Pacer(100, 10.0, sleep=lambda s: slept.append(s))
    pacer.observe(remaining=0, reset_seconds=0.05)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.06 and not slept:
        pacer.wait()
    assert slept and 0 < slept[0] <= 0.06


def test_a_message_quoting_a_secret_is_masked_whichever_connector_classified_it() -> None:
    """A plugin's classify need not know the secrets: the policy masks them, the configured
    ones and those a login obtained later, also URL-encoded."""

    def quoting(exc: BaseException) -> Failure:
        return Failure(FailureKind.FATAL, f"bad request: {exc}", 400)

    p = CallPolicy("zoho", quoting, secrets=["tok en/1"])
    p.add_secret("session-0042")
    basic = "Basic Y3Jtc3luYzp3cm9uZy1zZWNyZXQ="  # base64 of key:secret, no secret's form
    for echoed in ("tok en/1", "tok+en%2F1", "tok%20en%2F1", "session-0042", basic[6:]):
        with pytest.raises(ApiError) as err:
            p.call("deals", sequence(ValueError(f"Bearer {echoed}")))
        assert str(err.value) == "zoho: deals: bad request: Bearer ***"
    with pytest.raises(ApiError) as err:
        p.call("deals", sequence(ValueError(f"echo: Authorization: {basic}")))
    assert str(err.value) == "zoho: deals: bad request: echo: Authorization: Basic ***"


def test_the_word_after_basic_in_an_ordinary_message_is_not_masked() -> None:
    """Only `user:password` in base64 is a Basic credential."""
    policy = CallPolicy("zoho", lambda exc: Failure(FailureKind.FATAL, str(exc), 400))
    for message in ("Basic validation failed", "Basic plan: upgrade", "basic QUJDREVGR0g="):
        with pytest.raises(ApiError) as err:
            policy.call("deals", sequence(ValueError(message)))
        assert str(err.value) == f"zoho: deals: {message}"
