"""The Connector protocol the engine talks to, and the plain data it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from connectors.credentials import Credentials
from mapping.context import NativePipelineStages

if TYPE_CHECKING:  # account_names builds on this module's PushResult
    from connectors.account_names import AccountMatch

__all__ = [
    "NOT_FOUND",
    "UNCONFIRMED",
    "CompanyCurrency",
    "Connector",
    "ConnectorSettings",
    "DeletesDeals",
    "NativeCreate",
    "NativePipeline",
    "NativeUpdate",
    "PushResult",
    "ReadsWithoutAccounts",
    "TellsCompanyCurrency",
    "change_time",
    "deals_to_check",
    "expect_accounts",
    "found_accounts",
    "lookup_lag",
]


T = TypeVar("T")

# The code of a delete's PushResult when the record is missing or already deleted, whatever
# the CRM calls it (ENTITY_IS_DELETED, a 404, ...): rollback treats both alike.
NOT_FOUND: Final = "NOT_FOUND"

# A pipeline with its stages in order: (id, label, stages). The mapping package owns the type
# because stage maps and proposals are built from it.
NativePipeline = NativePipelineStages


@dataclass(frozen=True)
class CompanyCurrency:
    """How a CRM names the one currency its deals without a currency of their own are in
    (`TellsCompanyCurrency`): messages say `{owner} {name}` ("the portal's company currency"),
    the amounts of `{deals}`, and where a person sets it (`where`)."""

    owner: str
    name: str
    deals: str
    where: str

    @property
    def what(self) -> str:
        return f"{self.owner} {self.name}"


@dataclass(frozen=True)
class NativeUpdate:
    id: str
    fields: Mapping[str, Any]  # native field -> value, as mapping.update_for_<kind> returns


@dataclass(frozen=True)
class NativeCreate:
    link_id: str  # our idempotency marker, stored in the record's link field
    fields: Mapping[str, Any]
    # The name of the account (company) the copy belongs to, for a CRM that files deals under
    # one (Pipedrive's organizations, Salesforce's Accounts); None: the connector's default
    # (Pipedrive's `create_org_id`, no Account in Salesforce).
    account: str | None = None

    @property
    def organization(self) -> str | None:
        """`account` under the name it had when only Pipedrive filed copies by it."""
        return self.account


# A PushResult.code for a write the CRM neither confirmed nor refused: it may have landed. A
# create so answered is in doubt, for the next apply to look up by its link marker.
UNCONFIRMED = "UNCONFIRMED"


@dataclass(frozen=True)
class PushResult:
    id: str | None  # the record id (for a create: the new id, None if it failed)
    ok: bool
    error: str | None = None  # the API's own reason, for failed records
    code: str | None = None  # the API's error code/category
    link_id: str | None = None  # for creates
    # For a record written, something its reviewer should know: how it was written differs
    # from the plan (a copy filed under `create_org_id`, or created without an Account, as
    # several organizations or Accounts bear its name).
    note: str | None = None


@dataclass(frozen=True)
class ConnectorSettings:
    """What a connector needs to know; built by the engine from the config."""

    instance: str
    credentials: Credentials
    base_url: str | None = None  # override (sandbox); None = the vendor's default
    # The instance's own URL (report links); the API host of a Salesforce session id, which
    # works against its own org only, when base_url does not say another.
    instance_url: str | None = None
    ca_file: Path | None = None
    extra_fields: tuple[str, ...] = ()  # native fields to read besides the standard ones
    link_field: str | None = None
    call_budget: int | None = None
    rate_limit: tuple[int, float] | None = None  # (requests, per seconds) pacing override
    timeout: float = 60.0
    options: Mapping[str, Any] = field(default_factory=dict)
    # `systems.<name>.currency`: what a single-currency org's amounts are in (the one code a
    # Salesforce create may leave out there).
    currency: str = "USD"


@runtime_checkable
class Connector(Protocol):
    """What the engine needs of a CRM. Optional: `deletions_kept` (a timedelta), how long the
    CRM still lists a deleted deal to `deleted_deals`; a pull whose cursor is older than that
    reads everything instead, as only a full listing then shows which deals are gone. And
    `changed_accounts(since) -> {account id: name or None}`, the accounts changed since (a
    rename modifies the account, not its deals): an incremental pull gives the stored deals
    naming one of them (`extra.account_id`) its name."""

    system: str  # the instance name
    kind: str  # "salesforce" | "hubspot" | "pipedrive" | a plugin's kind

    def check(self) -> None: ...
    def pipelines(self) -> list[NativePipeline]: ...
    def owners(self) -> list[dict[str, Any]]: ...
    def deals(self, since: datetime | None = None) -> Iterator[dict[str, Any]]: ...
    def deleted_deals(self, since: datetime) -> Iterator[str]: ...
    def read_deals(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...
    def find_created(self, link_ids: Sequence[str]) -> dict[str, str]: ...
    def update_deals(self, updates: Sequence[NativeUpdate]) -> list[PushResult]: ...
    def create_deals(self, creates: Sequence[NativeCreate]) -> list[PushResult]: ...
    def calls(self) -> dict[str, int]: ...
    def cursor(self) -> str | None: ...
    def close(self) -> None: ...


def lookup_lag(connector: object) -> timedelta:
    """How long a record the CRM stored may stay out of its reads and `find_created` (an
    optional `lookup_lag` of the connector: HubSpot's search index lags its writes); else none."""
    lag = getattr(connector, "lookup_lag", None)
    return lag if isinstance(lag, timedelta) else timedelta(0)


def expect_accounts(connector: object, names: Iterable[str]) -> None:
    """Tell a connector that files copies under their account (an optional `expect_accounts`:
    Pipedrive's organizations, Salesforce's Accounts, HubSpot's companies) every account name
    a run's creates will name, before the first batch is journaled: it looks them up together,
    the cheapest way for their number (Salesforce and HubSpot at once, so a ConnectorError it
    raises means no copy was sent)."""
    expect = getattr(connector, "expect_accounts", None)
    if callable(expect):
        expect(names)


def found_accounts(connector: object, names: Iterable[str]) -> dict[str, AccountMatch] | None:
    """name_key -> what a connector that files copies under their account (an optional
    `found_accounts`) finds of each of `names`, `found` naming every account bearing it; it
    makes none, and names it looked up already (an apply's `expect_accounts`) cost no call.
    None: the connector files no copy by account name. A ConnectorError: the lookup failed."""
    find = getattr(connector, "found_accounts", None)
    return find(list(names)) if callable(find) else None


@runtime_checkable
class TellsCompanyCurrency(Protocol):
    """A connector whose CRM keeps one currency for the deals that name none of their own,
    and says it: `company_currency()` (None where it keeps none), `company_currency_names`
    for messages. `check` and `init` read it; pulls never do."""

    company_currency_names: CompanyCurrency

    def company_currency(self) -> str | None: ...


@runtime_checkable
class DeletesDeals(Protocol):
    """A connector that can move deals to its CRM's recycle bin (rollback, and the deletes
    `push.propagate_deletes` spreads).

    Kept apart from `Connector` so that plugin connectors without deletes keep working; the
    engine checks `isinstance(connector, DeletesDeals)` before it deletes.

    `delete_deals(ids)` returns one `PushResult` per id, in the order given:
    - `ok=True`: the CRM moved the record to its recycle bin / archive (all three CRMs
      soft-delete: Salesforce's recycle bin, HubSpot's archive, Pipedrive's deleted status);
    - `ok=False, code="NOT_FOUND"`: the record does not exist or is already deleted, with the
      CRM's own message as `error` where the API gives one;
    - `ok=False` with the API's own `error` and `code`: any other refusal of that record.
    A failure of the whole call (auth, 5xx after the retries, a daily limit) raises the
    connector's typed `ConnectorError`, as `update_deals` / `create_deals` do. A call retried
    after its answer was lost may report NOT_FOUND for records the lost attempt deleted: they
    are in the recycle bin either way, which is all rollback needs.
    """

    def delete_deals(self, ids: Sequence[str]) -> list[PushResult]: ...


@runtime_checkable
class ReadsWithoutAccounts(Protocol):
    """A connector whose `read_deals` spends calls on the deals' account names (Pipedrive: a v2
    deal names its organization by id only, its name is one more read), and that can re-read
    deals without them.

    The re-read before a write (sync.connect.read_now: updates, propagated deletes, settling
    writes in doubt) only checks the deals against the plan: deleted, archived, the diff fields
    (name, stage, status, amount, currency, close date, owner, probability), the pipeline and
    native stage. No account is compared, written back to the store or the bases, nor used by
    a create (a copy's organization comes from the plan). Kept apart from `Connector`, as
    `DeletesDeals` is, so that plugin connectors keep working; `deals_to_check` picks it.
    """

    def read_deals_without_accounts(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...


def deals_to_check(connector: Connector, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The deals of `ids` as a write's checks read them: without their account names where
    the connector can leave them out (`ReadsWithoutAccounts`), else `read_deals`."""
    if isinstance(connector, ReadsWithoutAccounts):
        return connector.read_deals_without_accounts(ids)
    return connector.read_deals(ids)


def change_time(parse: Callable[[str], T], value: object) -> T | None:
    """A record's change time as a pull's cursor reads it, or None when it is no time: a
    malformed one is that record's mapping error (the mapper reports it), never the pull's."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse(value)
    except (ValueError, OverflowError, OSError):  # OverflowError, OSError: out of range
        return None
