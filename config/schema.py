"""The config file's shape: strict, frozen pydantic sections (unknown keys are errors).

Only self-contained rules live here (types, ranges, cron, time zones, durations, currencies).
Rules that relate one part of the file to another (a stage map naming a funnel's stage, a policy
naming an instance) live in `config.references`, where each problem gets its exact key path.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from config.base import NOT_TRUE_OR_FALSE, FrozenMap, Name, Real, Section, Whole
from config.credentials import (
    Credentials,
    HubSpotCredentials,
    PipedriveCredentials,
    PluginCredentials,
    SalesforceCredentials,
)
from config.cron import crontab_fields
from config.paths import contained_path, sqlite_file
from mapping.currencies import ISO_4217
from mapping.funnel import Phase

__all__ = [
    "BUILTIN_KINDS",
    "Document",
    "FunnelDef",
    "LimitsConfig",
    "MatchingConfig",
    "OwnersConfig",
    "PoliciesConfig",
    "PolicyDef",
    "PushConfig",
    "ReportConfig",
    "ScheduleEntry",
    "StageDef",
    "SystemConfig",
    "parse_duration",
]

BUILTIN_KINDS = ("salesforce", "hubspot", "pipedrive")
MATCH_KEYS = ("name", "owner_email", "close_month", "close_date", "amount", "account")
JOBS = ("reconcile", "reconcile-dry-run", "report")
# The names crmsync's own commands record runs and take locks under: an entry of one of these
# names would share them (a `reconcile` entry would wait on its own reconcile lock for ever,
# a killed `report` entry's run could not be told from a live `crmsync report`, and a `links`
# run would count as a `links` entry's missed firing served).
RESERVED_ENTRY_NAMES = (
    *("apply", "dead-letters", "demo", "links", "pull", "push", "reconcile", "report"),
    *("rollback",),
)
Probability = Annotated[Decimal, NOT_TRUE_OR_FALSE, Field(ge=0, le=1)]


def plugin_kinds() -> tuple[str, ...]:
    """Connector kinds added by other packages through the `crmsync.connectors` entry points."""
    names = {ep.name for ep in entry_points(group="crmsync.connectors")}
    return tuple(sorted(names - set(BUILTIN_KINDS)))


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise PydanticCustomError(
            "currency",
            "unknown currency '{value}' (expected an ISO 4217 code such as USD, EUR)",
            {"value": value},
        )
    return value


Currency = Annotated[str, AfterValidator(_currency)]


def known_zone(name: str) -> ZoneInfo | None:
    """The zone an IANA name names, or None: not in this machine's tz database, malformed, or
    a region's folder ("America", which ZoneInfo answers with an OSError)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _timezone(value: str) -> str:
    if known_zone(value) is None:
        raise PydanticCustomError(
            "timezone",
            "unknown time zone '{value}' (expected an IANA name such as UTC, Europe/Berlin)",
            {"value": value},
        )
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]  # an IANA name


def _not_a_boolean(value: object) -> object:
    """A YAML `true` is no id, though pydantic would read it as 1."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "organization_id", "must be a Pipedrive organization id, a whole number"
        )
    return value


OrganizationId = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1)]


# --- funnels ---------------------------------------------------------------------------------


class StageDef(Section):
    key: Name
    label: str | None = None  # default: the key, capitalised
    phase: Phase
    probability: Probability
    closed: bool = False
    won: bool = False


class FunnelDef(Section):
    stages: tuple[StageDef, ...]


# --- systems ---------------------------------------------------------------------------------


class RateLimit(Section):
    requests: Whole = Field(ge=1)
    per_seconds: Real = Field(gt=0, le=86400, allow_inf_nan=False)  # a day: the longest wait


class _SystemBase(Section):
    kind: str
    base_url: str | None = None  # override, e.g. the local sandbox
    ca_file: Path | None = None  # TLS CA bundle; relative to the config file's directory
    instance_url: str | None = None  # for links in reports
    currency: Currency = "USD"  # for single-currency orgs and deals without a currency
    pipeline_funnels: FrozenMap[Name, Name] = Field(default_factory=dict)
    stage_map: FrozenMap[Name, FrozenMap[Name, Name]] = Field(default_factory=dict)
    # pipeline -> funnel key -> native stage: where a deal moved to that key is written, when
    # several native stages map to it (default: the first of them in pipeline order)
    stage_write: FrozenMap[Name, FrozenMap[Name, Name]] = Field(default_factory=dict)
    external_ids: FrozenMap[Name, Name] = Field(default_factory=dict)
    link_field: Name | None = None
    call_budget: Whole | None = Field(default=None, ge=1)
    rate_limit: RateLimit | None = None
    credentials: Credentials  # narrowed per kind below

    @field_validator("base_url", "instance_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PydanticCustomError(
                "url", "invalid URL (expected https://HOST[:PORT], e.g. https://127.0.0.1:8443)"
            )
        return value.rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _resolve_ca_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = value if value.is_absolute() or base is None else Path(base) / value
        if base is not None and not _is_file(path):
            what = "a directory, not a PEM file" if path.is_dir() else "file not found"
            detail = {"what": what, "path": str(path)}
            raise PydanticCustomError("ca_file", "{what}: {path}", detail)
        return path

    def secret(self, name: str) -> str:
        """A credential's plain value, for the connector only; never log or print it."""
        return self.credentials.secret(name)

    @property
    def auth_mode(self) -> str:
        return self.credentials.mode


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, or holding a NUL byte
        return False


# A Salesforce field's API name: these go into SOQL as names, where no quoting applies.
_SOQL_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _soql_field(name: str) -> str:
    if not _SOQL_FIELD.fullmatch(name):
        raise PydanticCustomError(
            "soql_field",
            "'{name}' is not a Salesforce field API name (letters, digits and _, such as "
            "Crmsync_Id__c)",
            {"name": name[:60]},
        )
    return name


SoqlField = Annotated[Name, AfterValidator(_soql_field)]


class SalesforceSystem(_SystemBase):
    kind: Literal["salesforce"]
    credentials: SalesforceCredentials
    external_ids: FrozenMap[Name, SoqlField] = Field(default_factory=dict)
    link_field: SoqlField | None = None


class HubSpotSystem(_SystemBase):
    kind: Literal["hubspot"]
    credentials: HubSpotCredentials
    # The portal's time zone (Settings > Account Defaults): HubSpot keeps a close date as an
    # instant, and the day it shows is the one that instant falls on there.
    timezone: TimeZone = "UTC"


class PipedriveSystem(_SystemBase):
    kind: Literal["pipedrive"]
    credentials: PipedriveCredentials
    # The organization a deal crmsync creates here is linked to: Pipedrive refuses a deal
    # linked to no person or organization, and a copy carries neither.
    create_org_id: OrganizationId | None = None
    # Which organization a copy goes to: `account`, the one named as the source deal's account
    # (found by name, else made), `create_org_id` for a source without one; `create_org_id`,
    # that one for every copy (crmsync before 2026-11).
    create_org_by: Literal["account", "create_org_id"] = "account"


class PluginSystem(_SystemBase):
    credentials: PluginCredentials


def _system_tag(value: Any) -> str | None:
    if isinstance(value, PluginSystem):  # serialising a validated model
        return "~plugin"
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    if kind in BUILTIN_KINDS:
        return f"~{kind}"
    if isinstance(kind, str) and kind in plugin_kinds():
        return "~plugin"
    return None


SystemConfig = Annotated[
    Annotated[SalesforceSystem, Tag("~salesforce")]
    | Annotated[HubSpotSystem, Tag("~hubspot")]
    | Annotated[PipedriveSystem, Tag("~pipedrive")]
    | Annotated[PluginSystem, Tag("~plugin")],
    Discriminator(
        _system_tag,
        custom_error_type="system_kind",
        custom_error_message="unknown or missing kind",
    ),
]


# --- owners ----------------------------------------------------------------------------------

# Enough to catch a slip (a name, a missing domain), not RFC 5322: the CRMs say what they take.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value.strip()):
        raise PydanticCustomError(
            "email", "'{value}' is not an email address", {"value": value[:60]}
        )
    return value.strip()


Email = Annotated[str, AfterValidator(_email)]


class OwnersConfig(Section):
    # A CRM's email -> the email the same person has in the others (`config.references` refuses
    # an alias of an alias). Kept as written here; `Config.owner_aliases` lower-cases them.
    aliases: FrozenMap[Email, Email] = Field(default_factory=dict)


# --- matching, policies, push, limits --------------------------------------------------------


class FuzzyConfig(Section):
    enabled: bool = False
    threshold: Real = Field(default=92, ge=0, le=100)


class MatchingConfig(Section):
    keys: tuple[Literal[MATCH_KEYS], ...] = ("name", "owner_email", "close_month")  # type: ignore[valid-type]
    fuzzy: FuzzyConfig = FuzzyConfig()

    @field_validator("keys")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_duplicates(value)


class SourceOfTruth(Section):
    source_of_truth: Name


class Priority(Section):
    priority: tuple[Name, ...] = Field(min_length=1)

    @field_validator("priority")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_duplicates(value)


def _policy_tag(value: Any) -> str | None:
    if isinstance(value, SourceOfTruth):  # serialising a validated model
        return "~source_of_truth"
    if isinstance(value, Priority):
        return "~priority"
    if isinstance(value, str):
        return "~named"
    if isinstance(value, dict):
        if "source_of_truth" in value:
            return "~source_of_truth"
        if "priority" in value:
            return "~priority"
    return None


PolicyDef = Annotated[
    Annotated[Literal["conflict", "newest", "never"], Tag("~named")]
    | Annotated[SourceOfTruth, Tag("~source_of_truth")]
    | Annotated[Priority, Tag("~priority")],
    Discriminator(
        _policy_tag,
        custom_error_type="policy",
        custom_error_message="expected conflict, newest, never, {source_of_truth: INSTANCE} "
        "or {priority: [INSTANCE, ...]}",
    ),
]


class PoliciesConfig(Section):
    default: PolicyDef = "conflict"
    fields: FrozenMap[str, PolicyDef] = Field(default_factory=dict)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, or a number of seconds; ValueError otherwise."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        seconds: float = value
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match or float(match.group(1)) <= 0:
            raise ValueError(f"invalid duration '{value}' (expected e.g. 90s, 15m, 24h or 7d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # also infinity
        raise ValueError(f"duration '{value}' is too long (at most 999999999 days)") from None


class PushConfig(Section):
    targets: tuple[Name, ...] | None = None  # None: every instance
    max_changes: Whole = Field(default=500, ge=0)
    max_changes_per_system: Whole | None = Field(default=None, ge=0)
    create_missing: bool = False
    # The instances whose deals create_missing copies (None: every one's). Moving off a CRM,
    # only its deals are to be copied, not those of a CRM running alongside.
    create_from: tuple[Name, ...] | None = None
    propagate_deletes: bool = False
    # Write only along links a person or the CRMs vouch for (`crmsync links confirm`, external
    # ids, markers): corrections of entities matched by key or fuzzily wait in the plan's `held`.
    confirmed_only: bool = False
    # A deal moved in one CRM to a pipeline of another product line (a stage of another funnel)
    # moves its copies to their CRM's pipeline of that funnel, chosen as a copy of that funnel
    # would be placed; off, such copies stay where they are and the stage change is an error.
    move_between_pipelines: bool = False
    confirm_above: Whole = Field(default=50, ge=0)
    plan_max_age: timedelta = timedelta(hours=24)
    max_attempts: Whole = Field(default=5, ge=1)

    @field_validator("plan_max_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise PydanticCustomError("duration", str(exc)) from None


class LimitsConfig(Section):
    max_conflicts: Whole | None = Field(default=None, ge=0)
    max_unmatched: Whole | None = Field(default=None, ge=0)


# --- report, schedule ------------------------------------------------------------------------


class Thresholds(Section):
    """Report alarms: a `min_` name is a floor, any other a ceiling; null = not checked."""

    mismatch_rate: Probability | None = Decimal("0.05")
    stale_share: Probability | None = Decimal("0.3")
    min_completeness: Probability | None = Decimal("0.8")
    past_due_share: Probability | None = None
    unmatched_share: Probability | None = None
    min_win_rate: Probability | None = None
    max_conflicts: Annotated[Decimal, Field(ge=0)] | None = None
    max_dead_letters: Annotated[Decimal, Field(ge=0)] | None = None
    max_mapping_errors: Annotated[Decimal, Field(ge=0)] | None = None
    max_sync_age_hours: Annotated[Decimal, Field(gt=0)] | None = None


class ReportConfig(Section):
    stale_days: Whole = Field(default=30, ge=1)
    currency: Currency | None = None  # consolidate amounts into this currency using `rates`
    # bounded, so an amount (at most 1E+100) converted stays within the report's arithmetic
    rates: FrozenMap[
        Currency, Annotated[Decimal, Field(ge=Decimal("1E-12"), le=Decimal("1E+12"))]
    ] = Field(default_factory=dict)
    thresholds: Thresholds = Thresholds()
    # where the report's days begin: today (past due, forecast months), --since, sales cycles
    # from a close date
    timezone: TimeZone = "UTC"


class ScheduleEntry(Section):
    name: Name
    cron: str
    timezone: TimeZone = "UTC"
    job: Literal[JOBS]  # type: ignore[valid-type]
    out: Path | None = None  # reports directory; inside the config file's directory
    misfire_grace_seconds: Whole = Field(default=3600, ge=1, le=1_000_000_000)  # ~31 years
    # reconcile jobs: pull everything, not only what changed (deals a CRM purged before an
    # incremental read could see them leave, any record a read missed)
    full: bool = False
    # how many of its own files an `out:` directory keeps (the newest); None: every one
    keep: Whole | None = Field(default=None, ge=1)
    # report entries: as `crmsync report --funnel/--system` (empty: every funnel / instance)
    funnels: tuple[Name, ...] = ()
    systems: tuple[Name, ...] = ()

    def writes_into(self, config_dir: Path) -> Path | None:
        """Where the entry writes its files: its `out:`, or for a report `reports/` beside the
        config; None for a reconcile entry without `out:`."""
        if self.out is not None:
            return self.out
        return config_dir / "reports" if self.job == "report" else None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_ENTRY_NAMES:
            raise PydanticCustomError(
                "reserved",
                "'{value}' is a name crmsync's own commands run under; name the entry after "
                "what it is for (e.g. nightly-{value})",
                {"value": value},
            )
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger(**crontab_fields(value), timezone="UTC")
        except Exception as exc:  # apscheduler raises ValueError or TypeError by field
            raise PydanticCustomError(
                "cron",
                "invalid cron expression '{value}': {reason} (expected 5 fields: minute hour "
                "day month weekday, e.g. '0 2 * * *')",
                {"value": value, "reason": str(exc).rstrip(".")},
            ) from None
        return value

    @field_validator("out")
    @classmethod
    def _resolve_out(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else contained_path(value, info.context)


# --- the whole file --------------------------------------------------------------------------


class Document(Section):
    version: Literal[1]
    # Paths the config names (SQLite store, schedule outputs) stay in the config's directory
    # unless this is set; read early by `config.paths.path_context`.
    allow_absolute_paths: bool = False
    store: str | None = Field(default=None, repr=False)  # may embed a database password
    funnels: FrozenMap[Name, FunnelDef] = Field(default_factory=dict)
    systems: FrozenMap[Name, SystemConfig] = Field(min_length=1)
    owners: OwnersConfig = OwnersConfig()
    matching: MatchingConfig = MatchingConfig()
    policies: PoliciesConfig = PoliciesConfig()
    push: PushConfig = PushConfig()
    limits: LimitsConfig = LimitsConfig()
    report: ReportConfig = ReportConfig()
    schedule: tuple[ScheduleEntry, ...] = ()

    @field_validator("store")
    @classmethod
    def _store_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.match(r"^(sqlite|postgresql(\+\w+)?)://", value):
            raise PydanticCustomError(
                "store",
                "unsupported store URL (expected sqlite:///FILE or "
                "postgresql+psycopg://USER@HOST/DB)",
            )
        if value is not None:
            _check_store_url(value)
        sqlite = sqlite_file(value) if value is not None else None
        if sqlite is not None:
            contained_path(sqlite[1], info.context)  # the loader resolves it
        return value


def _check_store_url(value: str) -> None:
    """What the store would refuse only when opened, refused here at its line (never quoting
    the URL: it may hold a password)."""
    from sqlalchemy.engine import make_url  # only for a config that names a store

    try:
        url = make_url(value)
    except Exception:
        url = None
    if url is None or "@" in (url.host or "") or not 0 <= (url.port or 0) <= 65535:
        raise PydanticCustomError(
            "store",
            "not a valid store URL (expected sqlite:///FILE or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB; write an '@' in the password "
            "as %40, or take the password from ${VAR})",
        )


def _no_duplicates(values: tuple[str, ...]) -> tuple[str, ...]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise PydanticCustomError("duplicate", "'{value}' is listed twice", {"value": seen[0]})
    return values
