"""Fault injection for the sandbox: latency, 429s, 5xx, dropped connections, expiry, bad records.

A fault spec is a comma-separated list, e.g. `latency=50ms,rate429=0.1,error5xx=0.05,seed=7`,
accepted by `crmsync sandbox serve --faults` and `POST /__sandbox/faults` (as JSON). Faults are
drawn from one seeded RNG per server so a failing test replays.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["FaultSpecError", "FaultState", "Faults", "parse_faults"]


class FaultSpecError(ValueError):
    """A --faults spec that cannot be parsed."""


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0  # added to every API response
    latency_spike_rate: float = 0.0  # share of requests that get latency_spike_ms on top
    latency_spike_ms: float = 1000.0
    rate429: float = 0.0  # share of API requests answered 429 (with Retry-After)
    burst429: int = 0  # the next N API requests are answered 429
    retry_after: float = 1.0  # seconds, sent in Retry-After
    error5xx: float = 0.0  # share answered 500/502/503
    drop: float = 0.0  # share whose connection is cut mid-response
    enforce_rate_limit: bool = False  # emulate the system's real rolling-window limit
    rate_limit: int | None = None  # requests per window, overrides the system default
    rate_window: float | None = None  # seconds, overrides the system default
    # Requests to a `/search` endpoint per rate window, on top of the general limit and
    # whatever `enforce_rate_limit` says: Pipedrive's "Search 10" per rolling 2 s (API-NOTES
    # §3). A fault, not the default, so tests that search freely are not slowed.
    search_rate_limit: int | None = None
    expire_after: int | None = None  # Salesforce: session expires after N API calls
    # API calls (Pipedrive: token costs) per "day"; past it the system's daily-limit error
    daily_limit: int | None = None
    record_fail: float = 0.0  # share of records failing inside batch writes
    # these record ids always fail inside writes; Pipedrive: an organization of one of these
    # names is refused its POST
    fail_ids: tuple[str, ...] = ()
    # Salesforce: these record ids (or a create's link marker) are held by another
    # transaction for their first `locked_writes` writes, each answered UNABLE_TO_LOCK_ROW in
    # its SaveResult, as Salesforce answers a record (or its parent Account) another write or
    # a bulk load has locked; a later write goes through.
    locked_ids: tuple[str, ...] = ()
    locked_writes: int = 1
    # Salesforce: every queryMore answers INVALID_QUERY_LOCATOR, as when other clients of the
    # API user open ten cursors between each two pages of a read (its cursor is released).
    cursors_released: bool = False
    # Salesforce: the UI API refuses the stage values of a deactivated record type, as it
    # might: no document says whether it answers them (off: it does), nor how it refuses:
    # `retired_record_types_status` 404 NOT_FOUND, 400 INVALID_ID_FIELD or 403
    # INSUFFICIENT_ACCESS (a record type not available to the user).
    retired_record_types_unanswered: bool = False
    # Salesforce: sObjects the API user's profile gives no read of: a query FROM one is refused
    # INVALID_TYPE ("sObject type 'Account' is not supported."), as Salesforce answers a user
    # who may not see the object.
    hidden_sobjects: tuple[str, ...] = ()
    # Salesforce: sObjects a query FROM one of which runs past Salesforce's time limit: it is
    # answered 400 QUERY_TIMEOUT ("Your query request was running for too long."), as
    # Salesforce answers a query that is not selective enough for a large object.
    timed_out_sobjects: tuple[str, ...] = ()
    # Pipedrive: deal ids the API user may not see (visibility groups): API v2's lists leave
    # them out (`ids` too: "not visible, they are not included") and a read or edit by id
    # answers 403, as Pipedrive answers a deal that is not visible (changelog 2023-01-23).
    hidden_deals: tuple[str, ...] = ()
    retired_record_types_status: int = 404
    # Pipedrive: POST /v1/deals (and /api/v2/deals) refuses a deal linked to no person_id or
    # org_id (400), as Pipedrive has since 2021-09-30 (changelog "Breaking bug fix in POST
    # /deals endpoint").
    # On, as the real API; off only to test what a party-less create does elsewhere.
    deal_needs_party: bool = True
    # Pipedrive: the pages past the first of a deal list (v2: any page asked by cursor) or of
    # the recents feed are empty, though they say more follow, as a proxy (or an API) reading
    # `start` as a page number would answer: where a read that steps back to find the deals
    # it read last, or pages on within a second, must not go on for ever.
    pages_past_first_empty: bool = False
    # Pipedrive: PATCH /api/v2/deals/{id} refuses `expected_close_date: null` (400), as the v2
    # spec, which does not mark that field nullable, and v2's strict validation suggest; unverified
    # against the real API, which may clear the date, so off by default.
    close_date_not_nullable: bool = False
    # HubSpot: these ids are left out of a batch update's answer (in neither its results nor
    # its errors, a 207 with no error) and not written, as HubSpot has been reported to answer
    # a batch update naming ids it did not update.
    unanswered_ids: tuple[str, ...] = ()
    # HubSpot: deal properties the portal does not define. A read naming one leaves it out of
    # each record's `properties` ("If a requested property isn't defined, it won't be included
    # in the response", HubSpot's deals reference), where a defined one without a value is
    # null. Pipedrive: custom field keys the account does not define: `GET /api/v2/dealFields`
    # does not list them, and v2 deal reads leave them out of `custom_fields` (unverified: the
    # docs do not say whether a defined field without a value is null there or left out).
    # Reads only: writes naming one are not refused (unverified for both).
    undefined_properties: tuple[str, ...] = ()
    # HubSpot: seconds a write takes to reach the search index; search leaves out a deal
    # changed more recently (HubSpot's search is eventually consistent).
    search_lag: float = 0.0
    # HubSpot: a batch update or create with a record it refuses as invalid (VALIDATION_ERROR,
    # injected ones included) is refused whole, 400 naming that record's error, nothing
    # written; as HubSpot answers a batch with an invalid input. Off: per record in a 207.
    batch_refused_whole: bool = False
    # Error messages quote the credential the request carried (bearer token, api_token query
    # parameter, login form), as some proxies and APIs do: where a leak would show. Per-record
    # refusals inside a batch write's 200 or 207 answer too.
    echo_credentials: bool = False
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fail_ids"] = list(self.fail_ids)
        data["unanswered_ids"] = list(self.unanswered_ids)
        data["locked_ids"] = list(self.locked_ids)
        data["hidden_sobjects"] = list(self.hidden_sobjects)
        data["timed_out_sobjects"] = list(self.timed_out_sobjects)
        data["hidden_deals"] = list(self.hidden_deals)
        data["undefined_properties"] = list(self.undefined_properties)
        return data


_ALIASES = {
    "latency": "latency_ms",
    "ratelimit": "enforce_rate_limit",
    "429": "rate429",
    "echo": "echo_credentials",
}
_SHARES = ("latency_spike_rate", "rate429", "error5xx", "drop", "record_fail")


def _coerce(name: str, raw: object) -> object:
    kind = {f.name: f.type for f in fields(Faults)}[name]
    if isinstance(raw, str):
        text = raw.strip()
        if name in ("latency_ms", "latency_spike_ms") and text.endswith("ms"):
            text = text[:-2]
        elif name in ("latency_ms", "latency_spike_ms") and text.endswith("s"):
            text = str(float(text[:-1]) * 1000)
        raw = text
    if "bool" in str(kind):
        if isinstance(raw, bool):
            return raw
        return str(raw).lower() in ("1", "true", "on", "yes")
    if "tuple" in str(kind):
        if isinstance(raw, (list, tuple)):
            return tuple(str(x) for x in raw)
        return tuple(x for x in str(raw).split("|") if x)
    if "int" in str(kind) and "float" not in str(kind):
        return None if raw in (None, "", "none") else int(str(raw))
    if "float | None" in str(kind):
        return None if raw in (None, "", "none") else float(str(raw))
    return float(str(raw))


def parse_faults(spec: str | dict[str, Any] | None, base: Faults | None = None) -> Faults:
    """Faults from a `k=v,k=v` spec or a JSON object; unknown keys are an error."""
    base = base or Faults()
    if not spec:
        return base
    items: list[tuple[str, object]]
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        items = []
        for part in spec.split(","):
            if not part.strip():
                continue
            name, sep, text = part.partition("=")
            if not sep:
                raise FaultSpecError(f"fault {part.strip()!r}: expected key=value")
            items.append((name.strip(), text))
    known = {f.name for f in fields(Faults)}
    changes: dict[str, object] = {}
    for key, value in items:
        name = _ALIASES.get(str(key), str(key))
        if name not in known:
            raise FaultSpecError(f"unknown fault {key!r} (known: {', '.join(sorted(known))})")
        try:
            changes[name] = _coerce(name, value)
        except ValueError:
            raise FaultSpecError(f"fault {key}: bad value {value!r}") from None
        number = changes[name]
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        if name in _SHARES and not 0 <= number <= 1:
            raise FaultSpecError(f"fault {key}: {value!r} is a share of requests, within 0..1")
        if number < 0:
            raise FaultSpecError(f"fault {key}: {value!r} is negative")
    return replace(base, **changes)  # type: ignore[arg-type]


class FaultState:
    """The live fault settings of one server plus the seeded RNG and counters they draw on."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._burst_left = faults.burst429
            self.api_calls = 0
            self._locked_writes: dict[str, int] = {}

    def draw(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def take_burst(self) -> bool:
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return True
            return False

    def still_locked(self, key: str) -> bool:
        """Whether this write of `key` (a `locked_ids` entry) finds it locked: its first
        `locked_writes` writes do."""
        if key not in self.faults.locked_ids:
            return False
        with self._lock:
            seen = self._locked_writes.get(key, 0)
            self._locked_writes[key] = seen + 1
            return seen < self.faults.locked_writes

    def count_call(self, cost: int = 1) -> int:
        """Count an API call costing `cost` of the daily budget; the budget spent so far."""
        with self._lock:
            self.api_calls += cost
            return self.api_calls

    def choice(self, options: list[int]) -> int:
        with self._lock:
            return self._rng.choice(options)
