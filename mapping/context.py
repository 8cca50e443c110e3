"""What a mapper needs to know about one system instance: stage maps, stages, owners, fields.

A `MappingContext` is built once per instance and run (the engine fills `owners` and
`native_stages` from the connector) and then shared by every record of that instance, so its
lookups are precomputed indexes rather than scans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple
from zoneinfo import ZoneInfo

from mapping.funnel import DEFAULT_FUNNEL, Funnel, FunnelStage
from mapping.owners import canonical_email, local_part

__all__ = [
    "MappingContext",
    "NativePipelineStages",
    "NativeStage",
    "pipeline_funnel_key",
    "stage_map_key",
    "stages_written",
]


@dataclass(frozen=True, slots=True)
class NativeStage:
    """A stage as the CRM defines it (for Salesforce an OpportunityStage row)."""

    id: str  # HubSpot stage id, Pipedrive stage id as a decimal string, Salesforce ApiName
    label: str  # what users see; Salesforce Opportunities store the id (ApiName) in StageName
    order: int
    probability: Decimal | None  # 0..1
    is_closed: bool = False
    is_won: bool = False


class NativePipelineStages(NamedTuple):
    """One discovered pipeline: (id, label, stages in pipeline order), and the id the CRM
    writes on a deal to put it there where that is not `id` (a Salesforce record type's
    RecordTypeId; its pipeline id is its DeveloperName). `active` False: the CRM keeps the deals
    already there but takes no new one (a deactivated Salesforce record type), so it is read
    like any other and never chosen for a copy."""

    id: str
    label: str
    stages: tuple[NativeStage, ...]
    native_id: str | None = None
    active: bool = True


def stage_map_key(instance: str, pipeline: str) -> str:
    """The config key mapping an instance's native stages of `pipeline`: where a reason that a
    stage is not mapped tells the user to map it."""
    return f"systems.{instance}.stage_map.{pipeline}"


def pipeline_funnel_key(instance: str, pipeline: str) -> str:
    """The config key naming the funnel an instance's `pipeline` follows."""
    return f"systems.{instance}.pipeline_funnels.{pipeline}"


def _empty() -> dict[str, str]:
    return {}


def stages_written(
    mapping: Mapping[str, str], chosen: Mapping[str, str], order: Sequence[str]
) -> dict[str, str]:
    """Funnel key -> the native stage of one pipeline a deal moved to that key is written in.

    `mapping`: the pipeline's stage map (native -> key); `chosen`: its `stage_write` (key ->
    native), honoured only while the map gives that native stage the key (written elsewhere, the
    deal would read back as another stage); `order`: the pipeline's native stage ids. Absent a
    choice, the first mapped native stage in pipeline order, then undiscovered ones by id, so the
    pick never depends on dict order.
    """
    keys = {key: native for key, native in chosen.items() if mapping.get(native) == key}
    rank = {native: i for i, native in enumerate(order)}
    for native, key in sorted(mapping.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])):
        keys.setdefault(key, native)
    return keys


@dataclass(frozen=True)
class MappingContext:
    instance: str
    kind: str
    funnels: Mapping[str, Funnel] = field(default_factory=lambda: {"default": DEFAULT_FUNNEL})
    pipeline_funnels: Mapping[str, str] = field(default_factory=_empty)
    stage_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # pipeline -> funnel key -> the native stage a deal moved to that key is written in, where
    # several native stages map to the key (`systems.<name>.stage_write`)
    stage_write: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    default_currency: str = "USD"
    external_ids: Mapping[str, str] = field(default_factory=_empty)  # other instance -> field
    # other instance -> its kind, for the ids of it this instance's fields hold (as people
    # enter them there: a Salesforce id in the 15-character form its screens show)
    id_kinds: Mapping[str, str] = field(default_factory=_empty)
    link_field: str | None = None
    owners: Mapping[str, str] = field(default_factory=_empty)  # native owner id -> email
    # email -> the email it stands for (`owners.aliases`, lower-case): one person known by
    # other emails in other CRMs is one owner, so the CRM's emails are read through this
    owner_aliases: Mapping[str, str] = field(default_factory=_empty)
    inactive_owners: frozenset[str] = frozenset()  # native ids of deactivated owners
    native_stages: Mapping[str, Sequence[NativeStage]] = field(default_factory=dict)
    # pipeline id -> the label the CRM shows (read with the pipelines), for people reading plans
    pipeline_labels: Mapping[str, str] = field(default_factory=_empty)
    # pipeline id -> the id the CRM writes on a deal to put it there, where that differs (a
    # Salesforce record type's pipeline is its DeveloperName, a deal holds its RecordTypeId)
    pipeline_native_ids: Mapping[str, str] = field(default_factory=_empty)
    # Pipelines whose deals are read but where the CRM takes no new deal (NativePipelineStages
    # `active` False): a copy is never created there.
    retired_pipelines: frozenset[str] = frozenset()
    # Where the CRM's users pick dates (an IANA name): a HubSpot close date is an instant, and
    # the day it falls on there is the day they picked and see.
    timezone: str = "UTC"

    # -- funnels and stages -------------------------------------------------------------------

    def funnel_for(self, pipeline: str) -> Funnel:
        name = self.pipeline_funnels.get(pipeline, "default")
        try:
            return self.funnels[name]
        except KeyError:
            raise KeyError(f"pipeline {pipeline!r} uses unknown funnel {name!r}") from None

    def funnel_stage(self, pipeline: str, native_stage_id: str) -> str | None:
        """The funnel key a native stage is mapped to; None when the map does not say."""
        return self.stage_map.get(pipeline, {}).get(native_stage_id)

    def native_stage_for(self, pipeline: str, funnel_key: str) -> str | None:
        """The native stage id a deal moved to a funnel key is written in: the one `stage_write`
        names, else the first mapped one in pipeline order (`stages_written`)."""
        return self._reverse_map.get(pipeline, {}).get(funnel_key)

    def native_stage(self, pipeline: str, native_stage_id: str) -> NativeStage | None:
        return self._stage_index.get(pipeline, {}).get(native_stage_id)

    def native_stage_by_label(self, pipeline: str, label: str) -> NativeStage | None:
        return self._label_index.get(pipeline, {}).get(label)

    def pipeline_label(self, pipeline: str) -> str | None:
        """The label the CRM shows for a pipeline id; None when it was not read."""
        return self.pipeline_labels.get(pipeline)

    def pipeline_native_id(self, pipeline: str) -> str | None:
        """The id a deal holds to be in `pipeline` where it is not the pipeline id itself."""
        return self.pipeline_native_ids.get(pipeline)

    def pipeline_of_native_id(self, native_id: str) -> str | None:
        return next((p for p, n in self.pipeline_native_ids.items() if n == native_id), None)

    def pipeline_of_stage(self, native_stage_id: str) -> str | None:
        """The pipeline holding a stage id (Pipedrive stage ids are unique across pipelines)."""
        return self._stage_pipeline.get(native_stage_id)

    def closed_native_stage(self, pipeline: str, won: bool) -> str | None:
        """The native stage that expresses won (or lost) in a pipeline: the funnel's won stage
        or first lost stage the stage map gives one (`native_stage_for`); None when it gives none.

        Not the pipeline's own closed stage, as the CRM flags it, outside the map: written
        there, the deal reads back in no funnel stage (an unmapped stage crmsync put it in), and
        in a funnel of several lost stages as the first of them, not the one decided."""
        funnel = self.funnel_for(pipeline)
        keys = [funnel.won_stage.key] if won else [s.key for s in funnel.lost_stages]
        for key in keys:
            native = self.native_stage_for(pipeline, key)
            if native is not None:
                return native
        return None

    def key_for_status(self, pipeline: str, status: str) -> str | None:
        """The funnel key a closed status stands for (won stage, first lost stage); open: None."""
        funnel = self.funnel_for(pipeline)
        if status == "won":
            return funnel.won_stage.key
        if status == "lost":
            return funnel.lost_stages[0].key
        return None

    def funnel_stage_def(self, pipeline: str, funnel_key: str) -> FunnelStage | None:
        funnel = self.funnel_for(pipeline)
        return funnel.stage(funnel_key) if funnel_key in funnel else None

    def takes_new_deals(self, pipeline: str) -> bool:
        return pipeline not in self.retired_pipelines

    def pipelines_for_funnel(self, funnel_name: str) -> list[str]:
        """Discovered pipelines (in discovery order) whose funnel is `funnel_name`."""
        return [
            p for p in self.native_stages if self.pipeline_funnels.get(p, "default") == funnel_name
        ]

    # -- owners -------------------------------------------------------------------------------

    def canonical_email(self, email: str) -> str:
        """A CRM's owner email as owners are matched: lower-cased, an alias replaced by the
        email it stands for."""
        return canonical_email(email, self.owner_aliases)

    def owner_email(self, owner_id: str | None) -> str | None:
        if owner_id is None:
            return None
        email = self.owners.get(owner_id)
        return self.canonical_email(email) if email else None

    def owner_id_for(self, email: str) -> str | None:
        """The native id of the user whose (canonical) email is `email`."""
        return self._owner_ids.get(self.canonical_email(email))

    def owners_named_like(self, email: str) -> Sequence[tuple[str, str]]:
        """(email, native id) of the users whose email has `email`'s local part (at another
        domain, unless a user holds `email` itself), sorted by email: the likely same person
        where `email` has no user (an acquired company's logins). Users whose email
        `owners.aliases` names already are left out: an alias of them would be refused, or
        would take them from the person they stand for."""
        name = local_part(email)
        return self._owners_by_local_part.get(name, ()) if name else ()

    # -- indexes ------------------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _reverse_map(self) -> dict[str, dict[str, str]]:
        return {
            pipeline: stages_written(
                mapping,
                self.stage_write.get(pipeline, {}),
                [s.id for s in self.native_stages.get(pipeline, ())],
            )
            for pipeline, mapping in self.stage_map.items()
        }

    @cached_property
    def _stage_index(self) -> dict[str, dict[str, NativeStage]]:
        return {p: {s.id: s for s in stages} for p, stages in self.native_stages.items()}

    @cached_property
    def _label_index(self) -> dict[str, dict[str, NativeStage]]:
        index: dict[str, dict[str, NativeStage]] = {}
        for pipeline, stages in self.native_stages.items():
            labels: dict[str, NativeStage] = {}
            for stage in stages:
                labels.setdefault(stage.label, stage)
            index[pipeline] = labels
        return index

    @cached_property
    def _stage_pipeline(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for pipeline, stages in self.native_stages.items():
            for stage in stages:
                index.setdefault(stage.id, pipeline)
        return index

    @cached_property
    def _owners_by_local_part(self) -> dict[str, tuple[tuple[str, str], ...]]:
        named = set(self.owner_aliases) | set(self.owner_aliases.values())
        index: dict[str, list[tuple[str, str]]] = {}
        for owner_id, raw in self.owners.items():
            email = raw.strip().lower()
            name = local_part(email)
            if name and email not in named:
                index.setdefault(name, []).append((email, owner_id))
        return {name: tuple(sorted(owners)) for name, owners in index.items()}

    @cached_property
    def _owner_ids(self) -> dict[str, str]:
        # Sorted so that two native users sharing one email resolve to the same id every run,
        # an active one before a deactivated one, and one holding the email itself before one
        # holding an alias of it.
        index: dict[str, str] = {}
        ordered = sorted(
            ((i, e.strip().lower()) for i, e in self.owners.items() if e),
            key=lambda o: (o[0] in self.inactive_owners, o[1] in self.owner_aliases, o[0]),
        )
        for owner_id, email in ordered:
            index.setdefault(self.owner_aliases.get(email, email), owner_id)
        return index
