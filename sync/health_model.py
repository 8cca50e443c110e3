"""The inputs and the result of a pipeline health report: frozen values, no behaviour.

`sync.health.build_health(HealthInputs) -> HealthReport` computes one from the other;
`sync.report_render` turns a report into a table, JSON, CSV or HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from config import Policy
from mapping.funnel import Funnel
from mapping.model import Deal, Ref
from sync.conversion import ConvertedAmount, ConvertedForecast, ConvertedSize, ConvertedStage
from sync.diff_result import Mismatch

__all__ = [
    "AcrossFunnels",
    "Consolidated",
    "Conversion",
    "Converted",
    "CopiesCounted",
    "CopyChoice",
    "CrossSystem",
    "DataQuality",
    "DealFlag",
    "DealSize",
    "DeletedRow",
    "DropOff",
    "FieldCompleteness",
    "Forecast",
    "ForecastMonth",
    "FunnelFigures",
    "HealthInputs",
    "HealthReport",
    "InstanceQuality",
    "Method",
    "MismatchRow",
    "PairMatch",
    "PastDue",
    "ReportFilters",
    "SalesCycle",
    "StageFigure",
    "StageTime",
    "Stale",
    "StepConversion",
    "SyncInfo",
    "SystemFigures",
    "ThresholdResult",
    "TimeInStage",
    "UnmappedStageFigure",
    "WinRate",
]

# How a history-dependent figure was obtained: from the CRM's recorded stage changes, derived
# from the current stage alone (weaker), or not computable from the data at hand.
Method = Literal["stage_history", "current_stage_only", "not_available"]
Amounts = Mapping[str, Decimal]  # currency -> amount; never summed across currencies


@dataclass(frozen=True, slots=True)
class HealthInputs:
    deals: Mapping[str, Sequence[Deal]]  # instance -> canonical deals
    funnels: Mapping[str, Funnel]
    now: datetime  # aware UTC, injected: the pure code never reads the clock
    entities: Sequence[Mapping[str, Ref]] = ()  # matched groups: instance -> ref of one deal
    plan: Mapping[str, Any] | None = None  # the `reconcile --format json` plan
    # Every field on which a matched deal's copies disagree, as the plan's diff found them,
    # with the copies it plans no change into (a read-only instance's, ...) and why
    mismatched: Sequence[Mismatch] = ()
    since: date | None = None
    until: date | None = None  # inclusive, as `since` (a day in `timezone`)
    # `report --funnel` / `--system`: only these funnels' / instances' deals (empty: all)
    only_funnels: tuple[str, ...] = ()
    only_systems: tuple[str, ...] = ()
    stale_days: int = 30
    report_currency: str | None = None
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # 1 <key> = N report currency
    thresholds: Mapping[str, Decimal] = field(default_factory=dict)
    sync_status: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    dead_letters: Sequence[Mapping[str, Any]] = ()
    mapping_errors: Sequence[Mapping[str, str]] = ()
    # the applies' account notes, newest first (`ApplyReport.account_notes`, with their run)
    account_notes: Sequence[Mapping[str, Any]] = ()
    instance_urls: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # (kind, url)
    consolidation_order: Sequence[str] = ()  # which copy of a matched deal represents it
    # field -> the reconcile policy that also picks which copy's value counts where the copies
    # of a matched deal disagree (`sync.consolidate`), and `status`, whose policy says whether a
    # deal closed in one CRM since its copies agreed counts so; a field not listed: `conflict`
    policies: Mapping[str, Policy] = field(default_factory=dict)
    # ref of a matched copy -> its entity's base (the values its copies last agreed on, as
    # reconcile stores them): a value changed since then counts, as reconcile spreads it
    bases: Mapping[Ref, Mapping[str, Any]] = field(default_factory=dict)
    timezone: str = "UTC"  # IANA name: where the report's days begin (today, --since, ...)
    # instance -> pipeline -> native stage -> funnel stage (the stage maps): the stage a lost
    # deal was lost in, where its CRM keeps it there (Pipedrive)
    stage_maps: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    # open deals archived in Pipedrive: in no figure (not in `deals`), but a matched one is
    # still held by its CRM, and counts as matched in the matching pairs
    archived_open: frozenset[Ref] = frozenset()
    # instance -> "pipeline/native stage" -> the name its CRM shows ("Sales / On Hold"), as
    # its last pull read them (`sync.stage_names`): a deal in an unmapped stage is named so
    stage_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageFigure:
    key: str
    label: str
    count: int
    amount: Amounts
    weighted: Amounts
    without_amount: int
    converted: ConvertedStage | None = None  # with report.currency and report.rates


@dataclass(frozen=True, slots=True)
class UnmappedStageFigure:
    """The deals of a funnel in one native stage no stage row holds (the stage map lacks it):
    the funnel counts them, and a stage table that did not would add up short."""

    system: str  # the instance whose native stage it is
    pipeline: str
    native_stage: str | None
    name: str  # as its CRM shows it ("Sales / On Hold"), else its ids ("1/10")
    count: int
    amount: Amounts
    weighted: Amounts  # as the stage rows weigh deals; an open one at its own probability only
    without_amount: int


@dataclass(frozen=True, slots=True)
class StepConversion:
    from_stage: str
    to_stage: str
    reached_from: int
    reached_to: int
    rate: Decimal | None


@dataclass(frozen=True, slots=True)
class Conversion:
    method: Method
    deals: int  # deals the step conversions cover
    history_deals: int  # of which from real stage history
    excluded_unknown: int  # lost deals without history: where they dropped out is unknown
    steps: tuple[StepConversion, ...]
    entered: int  # deals with a mapped stage (the lead -> won cohort)
    won: int
    lead_to_won: Decimal | None


@dataclass(frozen=True, slots=True)
class WinRate:
    won: int
    lost: int
    rate: Decimal | None  # won / (won + lost)


@dataclass(frozen=True, slots=True)
class DealSize:
    currency: str
    count: int
    average: Decimal
    median: Decimal


@dataclass(frozen=True, slots=True)
class SalesCycle:
    method: Method
    deals: int
    median_days: Decimal | None
    p90_days: Decimal | None
    sources: Mapping[str, int]  # where the won date came from -> deals
    # the average a deck asks for ("average sales cycle"); last, so the JSON only gains a key
    mean_days: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StageTime:
    stage: str
    median_days: Decimal | None  # over completed stints
    stints: int
    stalled: int  # open deals in this stage for more than stale_days (from history)


@dataclass(frozen=True, slots=True)
class TimeInStage:
    method: Method
    deals: int
    stages: tuple[StageTime, ...]
    bottleneck: tuple[str, ...]  # stages with the longest median time
    most_stalled: tuple[str, ...]  # stages holding the most stalled deals


@dataclass(frozen=True, slots=True)
class DropOff:
    method: Method
    deals: int  # lost deals whose last open stage is known
    unknown: int  # lost deals without history and without an open native stage
    by_stage: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class DealFlag:
    system: str
    id: str
    name: str
    days: int
    basis: str  # which timestamp the age was measured from


@dataclass(frozen=True, slots=True)
class Stale:
    method: Method
    open_deals: int
    count: int
    by_basis: Mapping[str, int]  # stage_history | stage_entered_at | updated_at -> deals
    deals: tuple[DealFlag, ...]  # the oldest first, at most LISTED_DEALS


@dataclass(frozen=True, slots=True)
class PastDue:
    count: int
    amount: Amounts
    deals: tuple[DealFlag, ...]  # the most overdue first, at most LISTED_DEALS
    converted: ConvertedAmount | None = None  # with report.currency and report.rates


@dataclass(frozen=True, slots=True)
class ForecastMonth:
    month: str  # YYYY-MM
    currency: str
    deals: int
    weighted: Decimal
    committed: Decimal
    committed_deals: int


@dataclass(frozen=True, slots=True)
class Forecast:
    rule: str
    months: tuple[ForecastMonth, ...]
    no_close_date: int
    without_amount: int
    past_due: int  # open deals whose close date is before today: in no month
    converted: ConvertedForecast | None = None  # with report.currency and report.rates


@dataclass(frozen=True, slots=True)
class FunnelFigures:
    funnel: str
    deals: int
    open: int
    won: int
    lost: int
    unmapped_stage: int  # deals whose native stage maps to no stage of this funnel
    stages: tuple[StageFigure, ...]
    conversion: Conversion
    win_rate: WinRate
    won_size: tuple[DealSize, ...]
    sales_cycle: SalesCycle
    time_in_stage: TimeInStage
    drop_off: DropOff
    stale: Stale
    past_due: PastDue
    forecast: Forecast
    # the deals counted in `deals` that no stage row holds (`unmapped_stage` of them), per
    # native stage; last, so the JSON only gains a key
    unmapped_stages: tuple[UnmappedStageFigure, ...] = ()
    won_size_converted: ConvertedSize | None = None  # with report.currency and report.rates


@dataclass(frozen=True, slots=True)
class SystemFigures:
    instance: str
    deals: int
    funnels: Mapping[str, FunnelFigures]


@dataclass(frozen=True, slots=True)
class Converted:
    report_currency: str
    note: str
    open_amount: Decimal
    weighted: Decimal
    won_amount: Decimal
    rates_used: Mapping[str, Decimal]
    not_converted: Mapping[str, int]  # currency without a rate -> deals left out


@dataclass(frozen=True, slots=True)
class CopyChoice:
    """For one field, how the matched deals whose copies disagree on it were counted."""

    field: str
    policy: str  # as a plan's reasons name it: "source_of_truth: salesforce", "conflict"
    disagreed: int  # matched deals whose counted copies hold different values
    by_policy: int  # of which the policy picked the copy that counts
    by_order: int  # of which the policy could not decide: the first instance's copy counts
    # of which the policy could not decide and the stage policy picked another copy than the
    # first instance's: that copy's value counts, with its stage (0 for the stage itself)
    with_stage: int = 0
    # of which only one copy (or copies agreeing) changed the value since the copies last
    # agreed: that value counts, as reconcile spreads it whatever the policy (source of truth
    # aside); before the policy speaks, as in reconcile. Also those where no copy changed it
    # and only copies the base marks as left out differ: the agreed value counts
    by_change: int = 0
    # of `by_change`, those last ones: no copy changed the value since it was recorded, and the
    # copies that differ never held it (no push target, unable to hold it, or an apply stopped
    # before it wrote them). A first `reconcile --dry-run` records such a value too: there is
    # nothing to write where every copy crmsync may write holds it (`sync.diff`)
    by_agreed_value: int = 0


@dataclass(frozen=True, slots=True)
class AcrossFunnels:
    """The matched deals (of those counted) whose live copies follow different funnels, and
    the funnel each counted in (`sync.consolidate`): their CRMs file them under different
    product lines, which only the CRMs (or the config) can settle (`fix`)."""

    deals: int = 0
    counted_in: Mapping[str, int] = field(default_factory=dict)  # funnel -> deals, by name
    # of which copies follow several named funnels: the stage policy chose among all copies
    by_stage_policy: int = 0
    fix: str = ""


@dataclass(frozen=True, slots=True)
class CopiesCounted:
    rule: str
    order: tuple[str, ...]  # the instances in config order: whose copy counts by default
    fields: tuple[CopyChoice, ...]
    across_funnels: AcrossFunnels = field(default_factory=AcrossFunnels)


@dataclass(frozen=True, slots=True)
class Consolidated:
    deals: int
    copies_merged: int  # matched copies not counted again
    open: int
    won: int
    lost: int
    open_amount: Amounts
    weighted: Amounts
    won_amount: Amounts
    win_rate: WinRate
    stale: int
    past_due: int
    forecast: Forecast
    converted: Converted | None
    copies_counted: CopiesCounted


@dataclass(frozen=True, slots=True)
class FieldCompleteness:
    field: str
    filled: int
    total: int
    share: Decimal | None


@dataclass(frozen=True, slots=True)
class InstanceQuality:
    instance: str
    deals: int
    completeness: tuple[FieldCompleteness, ...]
    unmapped_stages: Mapping[str, int]  # native stage -> deals
    mapping_errors: int
    duplicates: int
    # "pipeline/native stage" of `unmapped_stages` -> the name its CRM shows, for people
    unmapped_stage_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataQuality:
    instances: Mapping[str, InstanceQuality]
    mapping_errors: tuple[Mapping[str, str], ...]
    duplicates: tuple[Mapping[str, Any], ...]
    # copies an apply created without an account, with its note, while they still have none
    copies_without_account: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class PairMatch:
    a: str
    b: str
    matched: int
    only_a: int
    only_b: int


@dataclass(frozen=True, slots=True)
class MismatchRow:
    entity: str
    kind: str  # change | conflict | kept (a copy no change is planned into: the reason says why)
    field: str
    system: str
    id: str
    value_from: str | None
    value_to: str | None
    reason: str
    url: str | None


@dataclass(frozen=True, slots=True)
class DeletedRow:
    entity: str
    deleted_system: str
    deleted_id: str
    live: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class SyncInfo:
    instance: str
    last_success: datetime | None
    age_hours: Decimal | None
    api_calls: int


@dataclass(frozen=True, slots=True)
class CrossSystem:
    plan_available: bool
    entities: int
    pairs: tuple[PairMatch, ...]
    unmatched_by_system: Mapping[str, int]  # from the plan, deals in the report only
    ambiguous: int
    mismatched_entities: int
    mismatches_by_field: Mapping[str, int]  # field -> entities
    mismatches: tuple[MismatchRow, ...]
    conflicts: int
    deleted: tuple[DeletedRow, ...]
    dead_letters: tuple[Mapping[str, Any], ...]
    dead_letters_by_system: Mapping[str, int]
    plan_errors: int
    sync: tuple[SyncInfo, ...]


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    name: str
    value: Decimal | None  # None: not computable from this data, never breached
    limit: Decimal
    comparison: str  # ">=" (a min_ threshold) or "<=": the value must satisfy `value cmp limit`
    breached: bool


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """What a report was narrowed to (`report --funnel/--system/--since/--until`); empty
    lists and nulls: everything."""

    funnels: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def active(self) -> bool:
        return bool(self.funnels or self.systems or self.since or self.until)

    def describe(self) -> str:
        """One clause for a title line ("" without filters)."""
        parts = []
        if self.funnels:
            parts.append("funnels " + ", ".join(self.funnels))
        if self.systems:
            parts.append("systems " + ", ".join(self.systems))
        if self.since and self.until:
            parts.append(f"created or updated {self.since} to {self.until}")
        elif self.since:
            parts.append(f"created or updated since {self.since}")
        elif self.until:
            parts.append(f"created or updated up to {self.until}")
        return "; ".join(parts)

    def title(self, base: str) -> str:
        """`base` with the filters, so a deck's slide says what it leaves out."""
        return f"{base} — {self.describe()}" if self.active() else base


@dataclass(frozen=True, slots=True)
class HealthReport:
    generated_at: datetime
    since: date | None
    stale_days: int
    report_currency: str | None
    thresholds: tuple[ThresholdResult, ...]  # breached first
    breached: tuple[ThresholdResult, ...]
    systems: Mapping[str, SystemFigures]
    funnels: Mapping[str, FunnelFigures]  # per funnel over all instances, matched deals once
    consolidated: Consolidated
    data_quality: DataQuality
    cross_system: CrossSystem
    timezone: str  # where the report's days begin; datetimes are still given in UTC
    # last, so the JSON's earlier keys keep their order (a contract)
    filters: ReportFilters = field(default_factory=lambda: ReportFilters())
